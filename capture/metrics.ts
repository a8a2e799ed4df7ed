// Capture's Prometheus metrics, declared once.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export function createCaptureMetrics(registry: Registry) {
  const registers = [registry];
  return {
    events: new Counter({ name: 'taskflow_capture_events_total', help: 'Change events captured, by table and op', labelNames: ['table', 'op'] as const, registers }),
    changedUnknown: new Counter({ name: 'taskflow_capture_updates_changed_unknown_total', help: 'Updates decoded without a changed-columns message (their data.changed lists every column of after)', registers }),
    deadLetters: new Counter({ name: 'taskflow_capture_dead_letters_total', help: 'Changes put in the dead-letter store, by reason', labelNames: ['reason'] as const, registers }),
    batchRecords: new Histogram({ name: 'taskflow_capture_batch_records', help: 'Kinesis records per PutRecords request', buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500], registers }),
    batchEvents: new Histogram({ name: 'taskflow_capture_batch_events', help: 'Events per PutRecords request', buckets: [1, 5, 10, 50, 100, 500, 1000, 5000, 20000], registers }),
    batchBytes: new Histogram({ name: 'taskflow_capture_batch_bytes', help: 'Bytes per PutRecords request', buckets: [1e3, 1e4, 1e5, 5e5, 1e6, 2.5e6, 5.3e6], registers }),
    putLatency: new Histogram({ name: 'taskflow_capture_put_latency_seconds', help: 'PutRecords round trip', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers }),
    putRetries: new Counter({ name: 'taskflow_capture_put_retries_total', help: 'Records (or whole requests) that Kinesis did not accept and that will be retried, by error code', labelNames: ['code'] as const, registers }),
    commitToAck: new Histogram({
      name: 'taskflow_capture_commit_to_kinesis_seconds',
      help: 'Commit time to Kinesis acknowledgement of the whole transaction',
      buckets: [0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 5, 30],
      registers,
    }),
    acknowledgedLsn: new Gauge({ name: 'taskflow_capture_acknowledged_lsn', help: 'LSN the slot was last confirmed at (as a number)', registers }),
    lagBytes: new Gauge({ name: 'taskflow_capture_replication_lag_bytes', help: "Server's WAL position (last keepalive) minus the confirmed LSN", registers }),
    lagSeconds: new Gauge({ name: 'taskflow_capture_replication_lag_seconds', help: 'Now minus the commit time of the last transaction Kinesis acknowledged (0 when idle)', registers }),
    retainedWal: new Gauge({ name: 'taskflow_capture_slot_retained_wal_bytes', help: "WAL the slot keeps on the server (pg_current_wal_lsn - restart_lsn)", registers }),
    buffered: new Gauge({ name: 'taskflow_capture_buffered_events', help: 'Events waiting for Kinesis', registers }),
    reconnects: new Counter({ name: 'taskflow_capture_reconnects_total', help: 'Replication sessions restarted after an error', registers }),
    // Hot workspaces (hot-workspaces.ts). The per-key gauges hold only keys currently hot and lose
    // a series when it cools, so their cardinality is the number of hot keys, not of workspaces.
    hotWorkspaces: new Gauge({ name: 'taskflow_capture_hot_workspaces', help: "Workspaces at or over the hot threshold of their shard's write limit", registers }),
    workspaceShardUtilization: new Gauge({
      name: 'taskflow_capture_workspace_shard_utilization',
      help: "A hot workspace's share of one shard's write limit (max of records/s ÷ 1000 and bytes/s ÷ 1 MiB); a lower bound of its shard's; only hot workspaces have a series",
      labelNames: ['workspace'] as const,
      registers,
    }),
    shardUtilization: new Gauge({
      name: 'taskflow_capture_shard_utilization',
      help: "A hot shard's write utilization from this capture's records (a lower bound when other captures write to the stream); only hot shards have a series",
      labelNames: ['shard'] as const,
      registers,
    }),
    // A gauge, not a histogram: it answers "how close is the busiest workspace" before anything is
    // hot, max_over_time() gives the peak of any period, and a histogram of per-second maxima would
    // add a dozen series for a distribution no alert reads.
    maxWorkspaceShardUtilization: new Gauge({ name: 'taskflow_capture_max_workspace_shard_utilization', help: "Highest utilization of any workspace (hot or not) over the last window, as a share of one shard's write limit", registers }),
  };
}

export type CaptureMetrics = ReturnType<typeof createCaptureMetrics>;
