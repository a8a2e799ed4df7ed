// Capture's metrics as a port: the service and the producer report what happened, and either the
// Prometheus adapter below records it or, in tests and tools that need no metrics, the no-op one.
// Metric names are declared once here (the alarm catalog and dashboards refer to them).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface PutRequestFigures {
  records: number;
  events: number;
  bytes: number;
  seconds: number;
}

/** The keys a hot-workspace evaluation found hot, with their share of one shard's write limit. */
export interface HotKeysReport {
  workspaces: readonly { key: string; utilization: number }[];
  shards: readonly { key: string; utilization: number }[];
  maxWorkspaceUtilization: number;
}

export interface CaptureMetrics {
  eventCaptured(table: string, op: string): void;
  /** Updates decoded without a changed-columns message. */
  changedUnknown(updates: number): void;
  deadLettered(reason: string): void;
  putCompleted(figures: PutRequestFigures): void;
  /** Records Kinesis did not take and that will be sent again, by error code. */
  putRetried(code: string, records: number): void;
  bufferedEvents(events: number): void;
  /** Every event of a transaction is on Kinesis (or in the DLQ), `lagSeconds` after its commit. */
  transactionDelivered(lagSeconds: number): void;
  /** The slot was confirmed at `lsn`; `lagBytes` behind the server's last reported WAL end. */
  slotConfirmed(lsn: bigint, lagBytes: bigint, idle: boolean): void;
  retainedWal(bytes: number): void;
  sessionRestarted(): void;
  /** A workspace or shard stopped being hot: its per-key series goes. */
  keyCooled(scope: 'workspace' | 'shard', key: string): void;
  hotKeys(report: HotKeysReport): void;
}

export const noopCaptureMetrics: CaptureMetrics = {
  eventCaptured() {},
  changedUnknown() {},
  deadLettered() {},
  putCompleted() {},
  putRetried() {},
  bufferedEvents() {},
  transactionDelivered() {},
  slotConfirmed() {},
  retainedWal() {},
  sessionRestarted() {},
  keyCooled() {},
  hotKeys() {},
};

export const CAPTURE_METRICS = {
  events: 'taskflow_capture_events_total',
  changedUnknown: 'taskflow_capture_updates_changed_unknown_total',
  deadLetters: 'taskflow_capture_dead_letters_total',
  batchRecords: 'taskflow_capture_batch_records',
  batchEvents: 'taskflow_capture_batch_events',
  batchBytes: 'taskflow_capture_batch_bytes',
  putLatency: 'taskflow_capture_put_latency_seconds',
  putRetries: 'taskflow_capture_put_retries_total',
  commitToAck: 'taskflow_capture_commit_to_kinesis_seconds',
  acknowledgedLsn: 'taskflow_capture_acknowledged_lsn',
  lagBytes: 'taskflow_capture_replication_lag_bytes',
  lagSeconds: 'taskflow_capture_replication_lag_seconds',
  retainedWal: 'taskflow_capture_slot_retained_wal_bytes',
  buffered: 'taskflow_capture_buffered_events',
  reconnects: 'taskflow_capture_reconnects_total',
  hotWorkspaces: 'taskflow_capture_hot_workspaces',
  workspaceShardUtilization: 'taskflow_capture_workspace_shard_utilization',
  shardUtilization: 'taskflow_capture_shard_utilization',
  maxWorkspaceShardUtilization: 'taskflow_capture_max_workspace_shard_utilization',
} as const;

export function prometheusCaptureMetrics(registry: Registry): CaptureMetrics {
  const registers = [registry];
  const m = CAPTURE_METRICS;
  const events = new Counter({ name: m.events, help: 'Change events captured, by table and op', labelNames: ['table', 'op'] as const, registers });
  const changedUnknown = new Counter({ name: m.changedUnknown, help: 'Updates decoded without a changed-columns message, as every update of a table not opted in (their data.changed lists every column of after)', registers });
  const deadLetters = new Counter({ name: m.deadLetters, help: 'Changes put in the dead-letter store, by reason', labelNames: ['reason'] as const, registers });
  const batchRecords = new Histogram({ name: m.batchRecords, help: 'Kinesis records per PutRecords request', buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500], registers });
  const batchEvents = new Histogram({ name: m.batchEvents, help: 'Events per PutRecords request', buckets: [1, 5, 10, 50, 100, 500, 1000, 5000, 20000], registers });
  const batchBytes = new Histogram({ name: m.batchBytes, help: 'Bytes per PutRecords request', buckets: [1e3, 1e4, 1e5, 5e5, 1e6, 2.5e6, 5.3e6], registers });
  const putLatency = new Histogram({ name: m.putLatency, help: 'PutRecords round trip', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers });
  const putRetries = new Counter({ name: m.putRetries, help: 'Records (or whole requests) that Kinesis did not accept and that will be retried, by error code', labelNames: ['code'] as const, registers });
  const commitToAck = new Histogram({
    name: m.commitToAck,
    help: 'Commit time to Kinesis acknowledgement of the whole transaction',
    buckets: [0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 5, 30],
    registers,
  });
  const acknowledgedLsn = new Gauge({ name: m.acknowledgedLsn, help: 'LSN the slot was last confirmed at (as a number)', registers });
  const lagBytes = new Gauge({ name: m.lagBytes, help: "Server's WAL position (last keepalive) minus the confirmed LSN", registers });
  const lagSeconds = new Gauge({ name: m.lagSeconds, help: 'Now minus the commit time of the last transaction Kinesis acknowledged (0 when idle)', registers });
  const retainedWal = new Gauge({ name: m.retainedWal, help: 'WAL the slot keeps on the server (pg_current_wal_lsn - restart_lsn)', registers });
  const buffered = new Gauge({ name: m.buffered, help: 'Events waiting for Kinesis', registers });
  const reconnects = new Counter({ name: m.reconnects, help: 'Replication sessions restarted after an error', registers });
  // Hot workspaces (hot-workspaces.ts). The per-key gauges hold only keys currently hot and lose
  // a series when it cools, so their cardinality is the number of hot keys, not of workspaces.
  const hotWorkspaces = new Gauge({ name: m.hotWorkspaces, help: "Workspaces at or over the hot threshold of their shard's write limit", registers });
  const workspaceShardUtilization = new Gauge({
    name: m.workspaceShardUtilization,
    help: "A hot workspace's share of one shard's write limit (max of records/s ÷ 1000 and bytes/s ÷ 1 MiB); a lower bound of its shard's; only hot workspaces have a series",
    labelNames: ['workspace'] as const,
    registers,
  });
  const shardUtilization = new Gauge({
    name: m.shardUtilization,
    help: "A hot shard's write utilization from this capture's records (a lower bound when other captures write to the stream); only hot shards have a series",
    labelNames: ['shard'] as const,
    registers,
  });
  // A gauge, not a histogram: it answers "how close is the busiest workspace" before anything is
  // hot, max_over_time() gives the peak of any period, and a histogram of per-second maxima would
  // add a dozen series for a distribution no alert reads.
  const maxWorkspaceShardUtilization = new Gauge({ name: m.maxWorkspaceShardUtilization, help: "Highest utilization of any workspace (hot or not) over the last window, as a share of one shard's write limit", registers });
  // Every event counts: its labelled child is looked up once per (table, op), not hashed from the labels each time.
  const eventCounters = new Map<string, ReturnType<typeof events.labels>>();
  return {
    eventCaptured(table, op) {
      const key = `${table} ${op}`;
      let child = eventCounters.get(key);
      if (!child) eventCounters.set(key, (child = events.labels(table, op)));
      child.inc();
    },
    changedUnknown: (n) => changedUnknown.inc(n),
    deadLettered: (reason) => deadLetters.inc({ reason }),
    putCompleted(f) {
      putLatency.observe(f.seconds);
      batchRecords.observe(f.records);
      batchEvents.observe(f.events);
      batchBytes.observe(f.bytes);
    },
    putRetried: (code, records) => putRetries.inc({ code }, records),
    bufferedEvents: (n) => buffered.set(n),
    transactionDelivered(lag) {
      commitToAck.observe(lag);
      lagSeconds.set(lag);
    },
    slotConfirmed(lsn, behind, idle) {
      acknowledgedLsn.set(Number(lsn));
      lagBytes.set(Number(behind));
      if (idle) lagSeconds.set(0);
    },
    retainedWal: (bytes) => retainedWal.set(bytes),
    sessionRestarted: () => reconnects.inc(),
    keyCooled(scope, key) {
      if (scope === 'workspace') workspaceShardUtilization.remove({ workspace: key });
      else shardUtilization.remove({ shard: key });
    },
    hotKeys(report) {
      hotWorkspaces.set(report.workspaces.length);
      for (const w of report.workspaces) workspaceShardUtilization.set({ workspace: w.key }, w.utilization);
      for (const s of report.shards) shardUtilization.set({ shard: s.key }, s.utilization);
      maxWorkspaceShardUtilization.set(report.maxWorkspaceUtilization);
    },
  };
}
