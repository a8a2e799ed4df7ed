// The monthly bill at a given scale: a pure function of a prices file, a scale file and the
// configuration's levers. Every line item is a formula a reader can redo by hand; the units are
// AWS's (a month is 730 hours, GB = 1e9 bytes for transfer, GiB-free arithmetic everywhere).
import type { Prices } from './prices.js';
import { RESERVE_SEQS } from '../../../router/changelog-claims.js';

export interface FanOutClass {
  name: string;
  /** Share of all changes that land in projects of this class. */
  share: number;
  /** Change rate of one project of the class. */
  changes_per_s: number;
  /** Live subscriptions to one project of the class. */
  subscribers: number;
}

export interface Measured {
  /** CPU per event of the capture service (bench:capture drain). */
  captureCpuUsPerEvent: number;
  /** CPU per event of the router's core (bench:router, in memory). */
  routerCoreCpuUsPerEvent: number;
  /**
   * CPU per change of whole services in the pipeline benchmarks at their rates (bench:e2e's
   * router, read by fan-out, at 1,000 changes/s; bench:consumers' readers, contended run): a
   * sensitivity of the bill, not its assumption, since per-read costs weigh more at those rates.
   */
  pipelineCpuUsPerChange?: Record<string, number>;
  /** Changes per source transaction (bench:e2e workload). */
  changesPerTransaction: number;
  /** Payload bytes per change (bench:router cost runs). */
  fullBytesPerChange: number;
  thinBytesPerChange: number;
  thinGzipBytesPerChange: number;
  /** MQTT messages per change in the bench (50 projects at 20 changes/s each). */
  benchMessagesPerChange: number;
  /** One broker node (`taskflow broker`, bench:broker: MQTT over WebSocket, 50 subscriptions a connection). */
  broker: MeasuredBroker;
}

export interface MeasuredBroker {
  /** Connections one node held with all their subscriptions (median of the runs). */
  connectionsPerNode: number;
  /** RSS of the node without clients. */
  idleRssMib: number;
  /** RSS per connection over the idle node's (median). */
  kibPerConnection: number;
  /** Node CPU per delivery, everything the node did while delivering counted (the largest of the runs: an upper bound). */
  cpuUsPerDelivery: number;
}

export interface Scale {
  name: string;
  events: {
    peak_per_s: number;
    average_per_s: number;
    average_bytes: number;
    kinesis_compression_ratio: number;
    /** What zstd reached on the demo workload's envelopes (a sensitivity of the bill, not its assumption). */
    kinesis_compression_measured_ratio?: number;
    archive_gzip_ratio: number;
    events_per_kinesis_record: number;
    shard_headroom: number;
    /** Workspaces (the stream's partition keys): how many high-water marks a shard's checkpoint state carries. */
    workspaces: number;
  };
  connections: { concurrent: number; daily_users: number; sessions_per_user_per_day: number; subscribes_per_session: number };
  fan_out: { classes: FanOutClass[] };
  services: {
    router_cpu_factor: number;
    other_consumers: string[];
    other_consumer_cpu_us_per_event: number;
    /** CPU per event of a service instead of the figures above (a sensitivity's scale). */
    cpu_us_per_event?: Record<string, number>;
    target_cpu_utilization: number;
    peak_hours_share: number;
    polling_consumers: string[];
    efo_consumers: string[];
    /** Spacing of enhanced fan-out's pushes to a subscribed reader while records arrive. */
    efo_push_interval_ms: number;
  };
  self_hosted_mqtt: SelfHostedMqtt;
  analytics: {
    raw_retention_days: number;
    curated_years: number;
    curated_bytes_per_change: number;
    warehouse_size: string;
    warehouse_hours_per_day: number;
    archive_object_seconds: number;
    archive_writers: number;
    firehose_record_events: number;
  };
  observability: { custom_metrics: number; alarms: number; dashboards: number; log_gb_per_day: number };
  measured: Measured;
}

/**
 * The self-hosted broker tier (infra/aws workload `broker`): independent aedes nodes, one process
 * per pod, behind an NLB; the router publishes to each node that has a subscriber of the topic.
 */
export interface SelfHostedMqtt {
  /** Share of that a node holds normally, so that the nodes of the other zones absorb a lost zone's clients. */
  connection_target_utilization: number;
  /** Memory request over the measured need (queued messages to slow clients, GC). */
  memory_headroom: number;
  /** Smallest CPU request of a node. */
  min_cpu_millis: number;
  /** Share of a host's CPU and memory left to pods (kubelet and system daemons take the rest). */
  node_allocatable_share: number;
  min_nodes: number;
  frame_overhead_bytes: number;
  /** Share of the NLB's and the router's traffic to the nodes that crosses a zone (cross-zone load balancing, three zones). */
  cross_zone_share: number;
  /** Read request units of one membership re-check of a connection (BROKER_RECHECK_MS): the consistent Query of the user's memberships and GetItem of the truncate marker. */
  membership_reads_per_check: number;
  /** Node CPU per membership read (bench:broker). */
  recheck_cpu_us_per_read: number;
}

/** The levers: what the deployment chooses. */
export interface Levers {
  batchWindowMs: number;
  pollIntervalMs: number;
  payload: 'full' | 'thin' | 'thin-gzip';
  liveSubscribersOnly: boolean;
  broker: 'iot-core' | 'self-hosted';
  /** Capture's CAPTURE_COMPRESSION: zstd records are the scale's kinesis_compression_ratio smaller on the stream. */
  kinesisCompression: 'zstd' | 'none';
  kinesisMode: 'provisioned' | 'on-demand';
  retentionHours: number;
  /** Changelog bodies for every project, or only for projects with live subscribers (heads for all). */
  changelogScope: 'all' | 'watched';
  /** How long the changelog keeps a batch replayable (ROUTER_CHANGELOG_TTL_SECONDS): its storage. */
  changelogTtlHours: number;
  /** The capacity mode of the changelog and lease tables, the two the stream's load writes (the other tables are small and stay on-demand). */
  dynamoCapacity: 'on-demand' | 'provisioned';
  /** The archiver gzips its Firehose records itself (Firehose bills the bytes it receives). */
  archiverGzip: boolean;
  /** QoS of deliveries to browsers: at 1 every browser PUBACK is a metered 5 KB message. The SDK
   *  subscribes at QoS 0 by default (`subscribeQos`), so deliveries go at 0 whatever the router's. */
  deliveryQos: 0 | 1;
  /** How the router learns of live subscriptions: IoT lifecycle events (connect, disconnect, and a
   *  subscribe/unsubscribe event per topic, each a metered message and a rule execution — what the
   *  code does), or registered by the replay request the SDK makes after every SUBACK, leaving only
   *  the presence events (not implemented: the router does not register from replay requests). */
  subscriptionEvents: 'lifecycle' | 'replay-call';
  /** The broker nodes' membership safety net (BROKER_RECHECK_MS): each connection re-read once per interval. */
  brokerRecheckMs: number;
  /** Least time between two of the router's checkpoints of a shard (ROUTER_CHECKPOINT_INTERVAL_MS; 0: one per batch window). */
  routerCheckpointMs: number;
  /** Least time between two of audit's checkpoints of a shard (AUDIT_CHECKPOINT_INTERVAL_MS; 0: one per read). */
  auditCheckpointMs: number;
  /** Least time between two checkpoint writes of a shard by any reader but the router, whatever it asks (the consumer library's KINESIS_CHECKPOINT_INTERVAL_MS; 0: each when asked). */
  consumerCheckpointMs: number;
}

export const DEFAULT_LEVERS: Levers = {
  batchWindowMs: 100,
  pollIntervalMs: 200,
  payload: 'thin-gzip',
  liveSubscribersOnly: true,
  broker: 'self-hosted',
  kinesisCompression: 'zstd',
  kinesisMode: 'provisioned',
  retentionHours: 168,
  changelogScope: 'all',
  changelogTtlHours: 24,
  dynamoCapacity: 'provisioned',
  archiverGzip: true,
  deliveryQos: 0,
  subscriptionEvents: 'lifecycle',
  brokerRecheckMs: 300_000,
  routerCheckpointMs: 3000,
  auditCheckpointMs: 5000,
  consumerCheckpointMs: 1000,
};

/** Read units of one re-check read (of up to 4 KB): eventually consistent, half a unit (broker/service.ts recheckMemberships). */
export const RECHECK_READ_UNITS = 0.5;

export interface LineItem {
  usd: number;
  /** The quantities behind the figure, for the reader. */
  detail: Record<string, number | string>;
}

export interface Bill {
  monthly_usd_total: number;
  services: Record<string, LineItem>;
  levers: Levers;
}

export const SECONDS_PER_MONTH = 730 * 3600;
const GB = 1e9;
const MB = 1e6;

/** Messages per transaction of a project whose transactions arrive (Poisson) at `txPerS` and are
 *  coalesced over `intervalS`: one message per interval that saw at least one. */
export function messagesPerTransaction(txPerS: number, intervalS: number): number {
  const x = txPerS * intervalS;
  return x < 1e-9 ? 1 : (1 - Math.exp(-x)) / x;
}

/** Price of `millions` units under tiered per-million prices (tier bounds cumulative). */
export function tiered(millions: number, tiers: readonly { up_to_millions: number | null; per_million: number }[]): number {
  let usd = 0;
  let below = 0;
  for (const t of tiers) {
    const top = t.up_to_millions ?? Infinity;
    const inTier = Math.max(0, Math.min(millions, top) - below);
    usd += inTier * t.per_million;
    below = top;
    if (millions <= top) break;
  }
  return usd;
}

export function egressUsd(gb: number, tiers: readonly { up_to_tb: number | null; per_gb: number }[]): number {
  return tiered(gb / 1000, tiers.map((t) => ({ up_to_millions: t.up_to_tb, per_million: t.per_gb * 1000 })));
}

export interface Kinesis {
  shards: number;
  bound: 'bytes' | 'records' | 'polling reads';
}

/** How much smaller a change is on the stream than its envelope: capture's zstd (the scale's ratio) or nothing. */
export function kinesisCompressionRatio(scale: Scale, levers: Pick<Levers, 'kinesisCompression'> = DEFAULT_LEVERS): number {
  return levers.kinesisCompression === 'zstd' ? scale.events.kinesis_compression_ratio : 1;
}

/** Shards for the peak: the largest of the write-bytes, write-records and polling-read bounds. */
export function kinesisShards(scale: Scale, levers: Pick<Levers, 'kinesisCompression'> = DEFAULT_LEVERS): Kinesis {
  const e = scale.events;
  const peakMBps = (e.peak_per_s * e.average_bytes) / kinesisCompressionRatio(scale, levers) / MB;
  const byBytes = Math.ceil((peakMBps * e.shard_headroom) / 1);
  const byRecords = Math.ceil(((e.peak_per_s / e.events_per_kinesis_record) * e.shard_headroom) / 1000);
  // Polling readers share 2 MB/s per shard; each reads every byte once.
  const byReads = Math.ceil((peakMBps * e.shard_headroom * scale.services.polling_consumers.length) / 2);
  const shards = Math.max(byBytes, byRecords, byReads, 1);
  const bound = shards === byBytes ? 'bytes' : shards === byRecords ? 'records' : 'polling reads';
  return { shards, bound };
}

export interface Fanout {
  /** Router publishes per second (inbound messages to the broker). */
  publishesPerS: number;
  /** Deliveries to browsers per second. */
  deliveriesPerS: number;
  /** Changes per published message. */
  changesPerMessage: number;
  /** Payload bytes of an average message. */
  messageBytes: number;
  /** Changelog batches per second (every project, watched or not). */
  changelogBatchesPerS: number;
  /** Of those, batches of projects with live subscribers. */
  watchedChangelogBatchesPerS: number;
  /** Changes per changelog batch. */
  changesPerChangelogBatch: number;
  subscriptions: number;
  projects: number;
  /** Per fan-out class: its published messages per second and each one's subscribers. */
  classes: { messagesPerS: number; subscribers: number }[];
}

export function fanout(scale: Scale, levers: Levers): Fanout {
  const rate = scale.events.average_per_s;
  const cpt = scale.measured.changesPerTransaction;
  // Coalescing happens over the longer of the window and the read spacing, not their sum:
  // bench:router's cost runs (reads 200 ms apart, 20 changes/s per project) measured 0.255,
  // 0.258 and 0.257 messages per change at windows of 0, 100 and 250 ms — one message per
  // project per read (model.test.ts holds the formula to that measurement).
  const intervalS = Math.max(levers.batchWindowMs, levers.pollIntervalMs) / 1000;
  let publishes = 0;
  let deliveries = 0;
  let publishedChanges = 0;
  let changelogBatches = 0;
  let watchedChangelogBatches = 0;
  let subscriptions = 0;
  let projects = 0;
  const classes: Fanout['classes'] = [];
  for (const c of scale.fan_out.classes) {
    const changes = rate * c.share;
    const n = changes / c.changes_per_s;
    projects += n;
    subscriptions += n * c.subscribers;
    const txPerS = c.changes_per_s / cpt;
    const messages = (changes / cpt) * messagesPerTransaction(txPerS, intervalS);
    const batches = (changes / cpt) * messagesPerTransaction(txPerS, levers.pollIntervalMs / 1000);
    changelogBatches += batches;
    if (c.subscribers > 0) watchedChangelogBatches += batches;
    if (c.subscribers === 0 && levers.liveSubscribersOnly) continue;
    publishes += messages;
    classes.push({ messagesPerS: messages, subscribers: c.subscribers });
    publishedChanges += changes;
    deliveries += messages * c.subscribers;
  }
  const changesPerMessage = publishes > 0 ? publishedChanges / publishes : 0;
  const perChange = { full: scale.events.average_bytes, thin: scale.measured.thinBytesPerChange, 'thin-gzip': scale.measured.thinGzipBytesPerChange }[levers.payload];
  return {
    publishesPerS: publishes,
    deliveriesPerS: deliveries,
    changesPerMessage,
    messageBytes: changesPerMessage * perChange,
    changelogBatchesPerS: changelogBatches,
    watchedChangelogBatchesPerS: watchedChangelogBatches,
    changesPerChangelogBatch: changelogBatches > 0 ? rate / changelogBatches : 0,
    subscriptions,
    projects,
    classes,
  };
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

function kinesisItem(scale: Scale, levers: Levers, p: Prices, k: Kinesis): LineItem {
  const e = scale.events;
  const h = p.hours_per_month;
  const ratio = kinesisCompressionRatio(scale, levers);
  const avgBytesPerS = (e.average_per_s * e.average_bytes) / ratio;
  const gbPerMonth = (avgBytesPerS * SECONDS_PER_MONTH) / GB;
  const efo = scale.services.efo_consumers.length;
  if (levers.kinesisMode === 'on-demand') {
    const polling = scale.services.polling_consumers.length;
    const retainedGb = levers.retentionHours > 24 ? (avgBytesPerS * (levers.retentionHours - 24) * 3600) / GB : 0;
    const usd =
      p.kinesis.on_demand_stream_hour * h +
      gbPerMonth * p.kinesis.on_demand_ingest_per_gb +
      gbPerMonth * polling * p.kinesis.on_demand_retrieval_per_gb +
      gbPerMonth * efo * p.kinesis.on_demand_efo_retrieval_per_gb +
      retainedGb * p.kinesis.on_demand_extended_retention_per_gb_month;
    return { usd, detail: { mode: 'on-demand', compression: levers.kinesisCompression, gb_in: round(gbPerMonth, 0), efo_consumers: efo, polling_consumers: polling } };
  }
  const recordsPerS = e.average_per_s / e.events_per_kinesis_record;
  const recordBytes = e.events_per_kinesis_record * (e.average_bytes / ratio);
  const putUnits = recordsPerS * Math.ceil(recordBytes / p.kinesis.put_payload_unit_bytes) * SECONDS_PER_MONTH;
  const shardHours = k.shards * h;
  const usd =
    shardHours * p.kinesis.shard_hour +
    (putUnits / 1e6) * p.kinesis.put_payload_units_per_million +
    (levers.retentionHours > 24 ? shardHours * p.kinesis.extended_retention_shard_hour : 0) +
    efo * shardHours * p.kinesis.efo_consumer_shard_hour +
    efo * gbPerMonth * p.kinesis.efo_retrieval_per_gb;
  return { usd, detail: { mode: 'provisioned', compression: levers.kinesisCompression, shards: k.shards, shard_bound: k.bound, retention_hours: levers.retentionHours, efo_consumers: efo, gb_in: round(gbPerMonth, 0) } };
}

/** Average write request units per second by table: what the bill charges and what the state
 *  stack provisions (infra/aws/stacks/state.ts). `checkpoints` and `leases` (the renewals) are
 *  the lease table's. */
export interface DynamoWrites {
  changelog: number;
  checkpoints: number;
  leases: number;
  subscriptions: number;
}

// The stream's readers (packages/stream/src/consumer), one lease item per (reader, shard) in the
// lease table. These are the code's defaults; model.test.ts holds them to it.
/** KINESIS_FAILOVER_MS: every held lease is renewed every third of it (consumer.ts, renewEveryMs). */
export const LEASE_FAILOVER_MS = 10_000;
/** KINESIS_SHARD_SYNC_MS: how often every worker lists the shards, and its reader's leases with them (coordinator.ts syncShards). */
export const LEASE_SHARD_SYNC_MS = 60_000;
/** Each reader's pods, every one a worker running its own lease loop: the replicas of its workload (infra/aws/workloads.ts; app.test.ts holds them to it). */
export const LEASE_WORKERS: Readonly<Record<string, { min: number; max: number }>> = {
  router: { min: 3, max: 24 },
  search: { min: 2, max: 8 },
  notifications: { min: 2, max: 8 },
  audit: { min: 1, max: 1 },
  archiver: { min: 2, max: 8 },
};
/** GetRecords calls per second per shard of a polling reader (DEFAULT_READ_BUDGET). */
export const POLLING_READS_PER_S = 0.75;
/** User records per processRecords call at most (shard-worker.ts MAX_RECORDS_PER_CALL; the router's window holds as many). */
export const RECORDS_PER_CALL = 500;
/** High-water marks a reader keeps in its checkpoint state: the router's (shard-router.ts ROUTER_MAX_MARKS) and audit's (AUDIT_MAX_MARKS); the others keep none. */
export const CHECKPOINT_MARKS: Readonly<Record<string, number>> = { router: 4000, audit: 3000 };
/** One mark in the state, 28 packed bytes in base64 (serializeMarks / packMarks; audit's state packs them the same way). */
export const MARK_BYTES = 38;
/** A lease item: attribute names, key, owner, counter, a 56-digit checkpoint, parents, the reference to its state slot (stateSlot, stateWriterCounter). */
export const LEASE_ITEM_BYTES = 500;
/** The rest of a state slot item (packages/stream leases.ts planState): attribute names, its key (~state#<shard id>#a), writerCounter, the state's wrapper (audit's head link too). */
export const STATE_ITEM_BYTES = 300;

/** The readers that hold shard leases: every polling and enhanced fan-out reader (gdpr reads no shard). */
export function streamReaders(scale: Scale): string[] {
  return [...new Set([...scale.services.efo_consumers, ...scale.services.polling_consumers])];
}

/**
 * Bytes of one reader's state slot item, 0 for a reader that keeps no state: the marks are not in
 * the lease item but in one of two slot items beside it (packages/stream leases.ts planState),
 * written by a checkpoint whose state changed, read only when a worker takes the lease.
 */
export function stateItemBytes(scale: Scale, reader: string, shards: number): number {
  const bound = CHECKPOINT_MARKS[reader];
  if (bound === undefined) return 0;
  return STATE_ITEM_BYTES + Math.min(bound, Math.ceil(scale.events.workspaces / shards)) * MARK_BYTES;
}

/** WRU of a write of a lease item (a PutItem of the whole item, 1 WRU per KB): every renewal's, whatever the state. */
export const LEASE_ITEM_WRU = Math.ceil(LEASE_ITEM_BYTES / 1024);

/**
 * WRU of one checkpoint: for a reader with state, its slot item (1 WRU per KB; the router's marks
 * and audit's head change with every checkpoint that has records behind it) plus the lease item,
 * ceil(stateBytes / 1 KB) + 1; for the others the lease item alone.
 */
export function checkpointWru(scale: Scale, reader: string, shards: number): number {
  const state = stateItemBytes(scale, reader, shards);
  return Math.ceil(state / 1024) + LEASE_ITEM_WRU;
}

export interface LeaseWrites {
  /** WRU per second of checkpoints, and of renewals. */
  checkpoints: number;
  renewals: number;
  /** Checkpoints per second of one shard, by reader. */
  checkpointsPerShard: Record<string, number>;
}

/**
 * The lease table's writes at an event rate. A reader checkpoints once per read that brought
 * records, and once per RECORDS_PER_CALL of them: the shard worker calls processRecords only with
 * records (shard-worker.ts work(): an idle shard writes no checkpoint) and every processor
 * checkpoints at the end of each call (search, notifications, audit, archiver), the router at the
 * end of each batch window (router/shard-processor.ts). Reads come at the read budget's spacing
 * (polling), as enhanced fan-out pushes them, and for the router no closer than its batch window
 * nor its checkpoint interval (ROUTER_CHECKPOINT_INTERVAL_MS: a checkpoint due sooner waits);
 * the other readers' writes no closer than the library's interval (KINESIS_CHECKPOINT_INTERVAL_MS,
 * shard-worker.ts: a checkpoint asked for sooner waits, replaced by later ones), audit's no closer
 * than its own either (AUDIT_CHECKPOINT_INTERVAL_MS: a sooner one is left out).
 * Each checkpoint costs checkpointWru (the state slot and the lease item). Renewals are the lease
 * loop's, every failover/3 whatever the checkpoints (consumer.ts), each the small lease item alone.
 */
export function leaseWrites(scale: Scale, levers: Levers, eventsPerS: number): LeaseWrites {
  const { shards } = kinesisShards(scale, levers);
  const recordsPerS = eventsPerS / scale.events.events_per_kinesis_record / shards;
  const perCall = eventsPerS / shards / RECORDS_PER_CALL;
  let checkpoints = 0;
  let renewals = 0;
  const checkpointsPerShard: Record<string, number> = {};
  for (const reader of streamReaders(scale)) {
    const readS = scale.services.efo_consumers.includes(reader) ? scale.services.efo_push_interval_ms / 1000 : 1 / POLLING_READS_PER_S;
    // The router reads with its own settings; every other reader's writes are spaced by the library, audit's by its own interval too.
    const intervalMs = reader === 'router' ? levers.routerCheckpointMs : Math.max(levers.consumerCheckpointMs, reader === 'audit' ? levers.auditCheckpointMs : 0);
    const spacingS = Math.max(readS, reader === 'router' ? levers.batchWindowMs / 1000 : 0, intervalMs / 1000);
    // Reads that saw at least one of the shard's (Poisson) records: the coalescing of messagesPerTransaction.
    const seen = recordsPerS * messagesPerTransaction(recordsPerS, spacingS);
    // A reader asks for a checkpoint per call (several per read when a read is busy); an interval bounds the writes to one per interval.
    const perShard = intervalMs > 0 ? Math.min(Math.max(seen, perCall), 1000 / intervalMs) : Math.max(seen, perCall);
    const wru = checkpointWru(scale, reader, shards);
    checkpointsPerShard[reader] = perShard;
    checkpoints += shards * perShard * wru;
    renewals += (shards * LEASE_ITEM_WRU * 3000) / LEASE_FAILOVER_MS;
  }
  return { checkpoints, renewals, checkpointsPerShard };
}

/** Lists of its reader's leases per second by one worker: the lease loop's every KINESIS_FAILOVER_MS / 6 (consumer.ts cycleMs: takeLeases reads the table each cycle) and the shard sync's. */
export const LEASE_LISTS_PER_S = 6000 / LEASE_FAILOVER_MS + 1000 / LEASE_SHARD_SYNC_MS;

/**
 * The lease table's reads, read request units per second with every reader at its `min` or `max`
 * pods. The consumer reads the table to list its reader's leases (dynamo-lease-store.ts list(): a
 * strongly consistent Query of the partition's lease items, its key condition leaving the state
 * slots out): every worker of a reader once per lease cycle (LEASE_LISTS_PER_S, 0.62/s at the
 * defaults). Checkpoints and renewals are conditional PutItems that read nothing. A Query costs
 * 1 RRU per 4 KB of the items it returns: one list is a reader's shards x the small lease item (the
 * rounding of each 1 MB page to 4 KB, at most one unit a page, is not counted). The state slots
 * are read only when a worker takes a lease (a Query of its one slot, and of its parents' after a
 * reshard): a few per deploy or failover, not counted.
 */
export function leaseReads(scale: Scale, levers: Levers, pods: 'min' | 'max'): number {
  const { shards } = kinesisShards(scale, levers);
  let rru = 0;
  for (const reader of streamReaders(scale)) {
    // A reader the workloads do not list runs one worker.
    const workers = LEASE_WORKERS[reader]?.[pods] ?? 1;
    rru += workers * LEASE_LISTS_PER_S * Math.ceil((shards * LEASE_ITEM_BYTES) / 4096);
  }
  return rru;
}

/**
 * Bytes of one change in a changelog body: the payload lever decides what the router keeps
 * (router/README.md "Changelog"): full envelopes gzipped at the archive's ratio, or the thin entry
 * its thin messages carry (thin-gzip too: the router's gzip is the messages'), counted uncompressed
 * (a batch of a few short entries gains little from gzip).
 */
export function changelogBytesPerChange(scale: Scale, levers: Levers): number {
  return levers.payload === 'full' ? scale.events.average_bytes / scale.events.archive_gzip_ratio : scale.measured.thinBytesPerChange;
}

export function dynamoWrites(scale: Scale, levers: Levers = DEFAULT_LEVERS): DynamoWrites {
  const f = fanout(scale, levers);
  // Changelog (router/changelog-claims.ts): per project batch, one body item (its entries, thin or
  // full as the payload lever, gzipped; 1 WRU per KB), written only if absent, which fences the writers; the head item only reserves
  // seqs, once per RESERVE_SEQS of a project's seqs. (Router restarts reserve once per project
  // they write again: a few per project and deploy, not counted.) Projects without bodies (the
  // 'watched' lever) would keep their seqs in a head written per batch.
  const bodyBytes = f.changesPerChangelogBatch * changelogBytesPerChange(scale, levers);
  const bodyBatches = levers.changelogScope === 'all' ? f.changelogBatchesPerS : f.watchedChangelogBatchesPerS;
  const reservations = (bodyBatches * f.changesPerChangelogBatch) / RESERVE_SEQS;
  const headOnlyBatches = f.changelogBatchesPerS - bodyBatches;
  const lease = leaseWrites(scale, levers, scale.events.average_per_s);
  // Subscriptions: one put and one delete per subscribe of every session — with IoT Core only: a
  // router publishing to self-hosted nodes loads their subscriptions from the nodes (GET
  // /subscriptions) and writes none.
  const sessions = levers.broker === 'iot-core' ? sessionsPerMonth(scale) : 0;
  return {
    changelog: bodyBatches * Math.ceil(bodyBytes / 1024) + reservations + headOnlyBatches,
    checkpoints: lease.checkpoints,
    leases: lease.renewals,
    subscriptions: (sessions * scale.connections.subscribes_per_session * 2) / SECONDS_PER_MONTH,
  };
}

/** Changelog reads per second on average: replays and resyncs, assumed two per session. */
export function changelogReadsPerS(scale: Scale): number {
  return (sessionsPerMonth(scale) * 2) / SECONDS_PER_MONTH;
}

/** A table's provisioned auto scaling bounds (infra/aws/stacks/state.ts provisioned()). */
export interface TableCapacity {
  targetUtilizationPercent: number;
  write: { min: number; max: number };
  read: { min: number; max: number };
}

/** The changelog table's auto scaling bounds at the target utilization: the average's capacity as
 *  the floor (the bill assumes no less), twice the peak's as the ceiling (room for a hot hour). */
export function changelogCapacity(scale: Scale, prices: Prices, levers: Levers = DEFAULT_LEVERS): TableCapacity | null {
  if (levers.dynamoCapacity === 'on-demand') return null;
  const u = prices.dynamodb.provisioned_target_utilization;
  const bounds = (avg: number) => ({ min: Math.ceil(avg / u), max: Math.ceil((2 * avg * peakFactor(scale)) / u) });
  return { targetUtilizationPercent: Math.round(u * 100), write: bounds(dynamoWrites(scale, levers).changelog), read: bounds(changelogReadsPerS(scale)) };
}

/** Peak over average of the event rate: provisioned capacity follows it in the peak hours. */
export function peakFactor(scale: Scale): number {
  return scale.events.peak_per_s / scale.events.average_per_s;
}

/**
 * The lease table's auto scaling bounds at the target utilization. Writes: the average's
 * checkpoints and renewals (dynamoWrites) as the floor, twice the peak's as the ceiling — the
 * peak's computed at the peak event rate (leaseWrites), not scaled by peakFactor: checkpoints
 * coalesce per read, so they grow less than the events, and the renewals do not grow at all.
 * Reads: the lease lists of every reader at its workload's minimum pods as the floor, at its
 * maximum as the ceiling (they follow the pods, not the events; a ceiling at the target leaves
 * room for a Deployment's surge pods in a rollout).
 */
export function leaseCapacity(scale: Scale, prices: Prices, levers: Levers = DEFAULT_LEVERS): TableCapacity | null {
  if (levers.dynamoCapacity === 'on-demand') return null;
  const u = prices.dynamodb.provisioned_target_utilization;
  const load = leaseLoad(scale, levers);
  return {
    targetUtilizationPercent: Math.round(u * 100),
    write: { min: Math.ceil(load.averageWru / u), max: Math.ceil((2 * load.peakWru) / u) },
    read: { min: Math.ceil(load.readsMin / u), max: Math.ceil(leaseReads(scale, levers, 'max') / u) },
  };
}

/** The lease table's write units a second at the average and the peak event rate (checkpoints and renewals), and its reads at the readers' minimum pods. */
function leaseLoad(scale: Scale, levers: Levers): { averageWru: number; peakWru: number; readsMin: number } {
  const average = leaseWrites(scale, levers, scale.events.average_per_s);
  const peak = leaseWrites(scale, levers, scale.events.peak_per_s);
  return { averageWru: average.checkpoints + average.renewals, peakWru: peak.checkpoints + peak.renewals, readsMin: leaseReads(scale, levers, 'min') };
}

function dynamoItem(scale: Scale, levers: Levers, p: Prices, f: Fanout): LineItem {
  const w = dynamoWrites(scale, levers);
  const changelogWru = w.changelog * SECONDS_PER_MONTH;
  const load = leaseLoad(scale, levers);
  const leaseWru = load.averageWru * SECONDS_PER_MONTH;
  const subscriptionWru = w.subscriptions * SECONDS_PER_MONTH;
  // Replays and resyncs read the changelog; assumed two reads per session.
  const rru = changelogReadsPerS(scale) * SECONDS_PER_MONTH;
  // The lease table's lists, at the readers' minimum pods (the router's HPA adding pods adds
  // their lists, about 9 RRU/s a router pod at the seed: not counted).
  const leaseRru = load.readsMin * SECONDS_PER_MONTH;
  // Storage: the changelog holds its TTL's worth of changes, in the form the payload lever keeps.
  const storedShare = levers.changelogScope === 'all' ? 1 : f.watchedChangelogBatchesPerS / f.changelogBatchesPerS;
  const storageGb = (storedShare * scale.events.average_per_s * levers.changelogTtlHours * 3600 * changelogBytesPerChange(scale, levers)) / GB;
  const onDemand = (w: number, r: number) => (w / 1e6) * p.dynamodb.write_request_units_per_million + (r / 1e6) * p.dynamodb.read_request_units_per_million;
  // The lever is the changelog's and the lease table's (the state stack provisions those two);
  // the small tables stay on-demand. Provisioned: auto scaling tracks the load at the target
  // utilization, the average's capacity off peak (the stack's minimum) and the peak's in the
  // peak hours.
  const s = scale.services.peak_hours_share;
  const u = p.dynamodb.provisioned_target_utilization;
  const shape = (1 - s) + s * peakFactor(scale);
  const unitHours = (units: number) => ((units / SECONDS_PER_MONTH) * shape * p.hours_per_month) / u;
  const provisioned = levers.dynamoCapacity === 'provisioned';
  const changelogRequests = provisioned ? unitHours(changelogWru) * p.dynamodb.provisioned_wcu_hour + unitHours(rru) * p.dynamodb.provisioned_rcu_hour : onDemand(changelogWru, rru);
  // The lease table's writes do not follow the events as the changelog's do: its capacity in the
  // peak hours is what leaseWrites gives at the peak rate (checkpoints coalesced per read, the
  // renewals flat), off peak the average's; its reads follow the pods, flat at the floor.
  const leaseWcuOffPeak = load.averageWru / u;
  const leaseWcuPeak = load.peakWru / u;
  const leaseRcu = load.readsMin / u;
  const leaseRequests = provisioned
    ? p.hours_per_month * (((1 - s) * leaseWcuOffPeak + s * leaseWcuPeak) * p.dynamodb.provisioned_wcu_hour + leaseRcu * p.dynamodb.provisioned_rcu_hour)
    : onDemand(leaseWru, leaseRru);
  const requests = changelogRequests + leaseRequests + onDemand(subscriptionWru, 0);
  const usd = requests + storageGb * (p.dynamodb.storage_gb_month + p.dynamodb.pitr_gb_month);
  return {
    usd,
    detail: {
      capacity: levers.dynamoCapacity,
      changelog_scope: levers.changelogScope,
      changelog_ttl_hours: levers.changelogTtlHours,
      changelog_batches_per_s: round(f.changelogBatchesPerS, 0),
      changelog_wru_millions: round(changelogWru / 1e6, 0),
      lease_wru_millions: round(leaseWru / 1e6, 0),
      lease_checkpoints_per_shard_s: round(Object.values(leaseWrites(scale, levers, scale.events.average_per_s).checkpointsPerShard).reduce((a, b) => a + b, 0), 1),
      lease_rru_millions: round(leaseRru / 1e6, 0),
      ...(provisioned ? { lease_wcu_off_peak: Math.ceil(leaseWcuOffPeak), lease_wcu_peak: Math.ceil(leaseWcuPeak), lease_rcu: Math.ceil(leaseRcu) } : {}),
      lease_usd: round(leaseRequests),
      subscription_wru_millions: round(subscriptionWru / 1e6, 0),
      storage_gb: round(storageGb, 0),
    },
  };
}

function sessionsPerMonth(scale: Scale): number {
  return scale.connections.daily_users * scale.connections.sessions_per_user_per_day * (730 / 24);
}

function lifecycle(scale: Scale, levers: Levers) {
  const sessions = sessionsPerMonth(scale);
  // connect and disconnect, and a subscribe and unsubscribe event per subscribe unless the
  // router registers subscriptions from replay requests
  const perSubscribe = levers.subscriptionEvents === 'lifecycle' ? 2 : 0;
  const events = sessions * (2 + perSubscribe * scale.connections.subscribes_per_session);
  return { sessions, events };
}

export function iotCoreItem(scale: Scale, levers: Levers, p: Prices, f: Fanout): LineItem {
  const units = Math.max(1, Math.ceil(f.messageBytes / p.iot_core.message_unit_bytes));
  const acks = levers.deliveryQos === 1 ? 1 : 0;
  const deliveryMessages = f.deliveriesPerS * (units + acks) * SECONDS_PER_MONTH;
  const publishMessages = f.publishesPerS * units * SECONDS_PER_MONTH;
  const { sessions, events } = lifecycle(scale, levers);
  // Each session's CONNECT and SUBSCRIBEs are metered messages; lifecycle events too.
  const controlMessages = sessions * (1 + scale.connections.subscribes_per_session) + events;
  const messages = deliveryMessages + publishMessages + controlMessages;
  const connectionMinutes = scale.connections.concurrent * 730 * 60;
  const connectivity = (connectionMinutes / 1e6) * p.iot_core.connection_minutes_per_million;
  const messaging = tiered(messages / 1e6, p.iot_core.message_tiers);
  const rules = (events / 1e6) * (p.iot_core.rules_triggered_per_million + p.iot_core.rule_actions_per_million);
  return {
    usd: connectivity + messaging + rules,
    detail: {
      connectivity_usd: round(connectivity),
      messaging_usd: round(messaging),
      rules_usd: round(rules),
      publishes_per_s: round(f.publishesPerS, 0),
      deliveries_per_s: round(f.deliveriesPerS, 0),
      message_bytes: round(f.messageBytes, 0),
      units_per_message: units,
      messages_millions: round(messages / 1e6, 0),
    },
  };
}

export interface BrokerTier {
  /** Broker nodes (StatefulSet pods, one aedes process each). */
  nodes: number;
  /** Connections a node holds at the seed's concurrency (before a zone is lost). */
  connectionsPerNode: number;
  /** A node's requests: the idle node plus the measured connections per node, with headroom, CPU for its share of the peak's deliveries with a lost zone's clients on it. */
  cpuMillis: number;
  memoryMi: number;
  /** EC2 hosts of the broker node group the pods pack onto (one spare for a drained host). */
  hosts: number;
  /** Router publishes to nodes per second: a message goes to every node holding a subscriber of its topic. */
  nodePublishesPerS: number;
  /** Consistent reads of the membership table per second by the nodes' re-check, over the tier. */
  recheckReadsPerS: number;
}

const ceilTo = (x: number, step: number) => Math.ceil(x / step) * step;

/** The self-hosted broker tier the deployment runs (infra/aws/settings.ts takes its size from here). */
export function brokerTier(scale: Scale, p: Prices, levers: Levers = DEFAULT_LEVERS): BrokerTier {
  const s = scale.self_hosted_mqtt;
  const m = scale.measured.broker;
  const f = fanout(scale, levers);
  const nodes = Math.max(s.min_nodes, Math.ceil(scale.connections.concurrent / (m.connectionsPerNode * s.connection_target_utilization)));
  // The idle node's memory and each connection's (bench:broker), with headroom.
  const memoryMi = ceilTo((m.idleRssMib + (m.connectionsPerNode * m.kibPerConnection) / 1024) * s.memory_headroom, 64);
  // CPU µs per second = millicores / 1000: the peak's deliveries over the nodes, a lost zone's
  // share moved onto the rest, at the services' target utilization.
  const peakDeliveriesPerNode = (f.deliveriesPerS * peakFactor(scale)) / nodes / s.connection_target_utilization;
  // The membership re-check: every connection once per interval, each its own read (tabs of one
  // user on one node sharing a read are not counted off: an upper bound), with a lost zone's
  // connections on the node too.
  const recheckReadsPerS = (scale.connections.concurrent * s.membership_reads_per_check) / (levers.brokerRecheckMs / 1000);
  const recheckUsPerS = (recheckReadsPerS / nodes / s.connection_target_utilization) * s.recheck_cpu_us_per_read;
  const cpuMillis = Math.max(s.min_cpu_millis, ceilTo((peakDeliveriesPerNode * m.cpuUsPerDelivery + recheckUsPerS) / 1000 / scale.services.target_cpu_utilization, 50));
  const e = p.ec2;
  const byCpu = (nodes * cpuMillis) / 1000 / (e.broker_node_vcpus * s.node_allocatable_share);
  const byMemory = (nodes * memoryMi) / 1024 / (e.broker_node_memory_gib * s.node_allocatable_share);
  const hosts = Math.max(3, Math.ceil(Math.max(byCpu, byMemory)) + 1);
  // Subscribers of a project sit on random nodes: k of them on N nodes cover N(1 - (1 - 1/N)^k).
  const nodePublishesPerS = f.classes.reduce((a, c) => a + c.messagesPerS * nodes * (1 - (1 - 1 / nodes) ** c.subscribers), 0);
  return { nodes, connectionsPerNode: Math.ceil(scale.connections.concurrent / nodes), cpuMillis, memoryMi, hosts, nodePublishesPerS, recheckReadsPerS };
}

export function selfHostedItem(scale: Scale, levers: Levers, p: Prices, f: Fanout): LineItem {
  const s = scale.self_hosted_mqtt;
  const tier = brokerTier(scale, p, levers);
  const compute = tier.hosts * p.ec2.broker_node_hour * p.hours_per_month;
  const frameBytes = f.messageBytes + s.frame_overhead_bytes;
  const egressGb = (f.deliveriesPerS * frameBytes * SECONDS_PER_MONTH) / GB;
  const egress = egressUsd(egressGb, p.data_transfer_out.tiers);
  // Cross-zone: the NLB sends a client's bytes through a node in another zone two times in three,
  // and the router's publishes reach nodes in other zones as often.
  const nodePublishGb = (tier.nodePublishesPerS * frameBytes * SECONDS_PER_MONTH) / GB;
  const crossZone = (egressGb + nodePublishGb) * s.cross_zone_share * p.data_transfer_inter_az_per_gb;
  // The NLB terminates TLS: its NLCU counts TLS connections (active and new), not TCP flows.
  const gbPerHour = egressGb / p.hours_per_month;
  const newConnectionsPerS = sessionsPerMonth(scale) / SECONDS_PER_MONTH;
  const nlcu = Math.max(scale.connections.concurrent / p.nlb.nlcu_tls_active_connections, newConnectionsPerS / p.nlb.nlcu_tls_new_connections_per_s, gbPerHour / p.nlb.nlcu_gb_per_hour);
  const nlb = (p.nlb.hour + nlcu * p.nlb.nlcu_hour) * p.hours_per_month;
  // The nodes' membership re-check reads the (on-demand) membership table: charged here, as the
  // IoT Core line charges its authorizer, so the broker comparison carries it.
  const recheck = ((tier.recheckReadsPerS * RECHECK_READ_UNITS * SECONDS_PER_MONTH) / 1e6) * p.dynamodb.read_request_units_per_million;
  // The authorizer runs as the nodes' hooks (lib/authz.ts): no Lambda.
  return {
    usd: compute + egress + crossZone + nlb + recheck,
    detail: {
      nodes: tier.nodes,
      connections_per_node: tier.connectionsPerNode,
      node_cpu_millis: tier.cpuMillis,
      node_memory_mi: tier.memoryMi,
      hosts: tier.hosts,
      host_type: p.ec2.broker_node_type,
      compute_usd: round(compute),
      egress_gb: round(egressGb, 0),
      egress_usd: round(egress),
      node_publishes_per_s: round(tier.nodePublishesPerS, 0),
      cross_zone_usd: round(crossZone),
      nlcu: round(nlcu, 1),
      nlb_usd: round(nlb),
      recheck_ms: levers.brokerRecheckMs,
      recheck_reads_per_s: round(tier.recheckReadsPerS, 0),
      recheck_usd: round(recheck),
    },
  };
}

function lambdaItem(scale: Scale, p: Prices): LineItem {
  // The custom authorizer runs once per connect (IoT caches its answer for the session).
  const sessions = sessionsPerMonth(scale);
  const gbSeconds = sessions * 0.128 * 0.02;
  return { usd: (sessions / 1e6) * p.lambda.requests_per_million + gbSeconds * p.lambda.gb_second, detail: { invocations_millions: round(sessions / 1e6, 1), memory_mb: 128, duration_ms: 20 } };
}

function firehoseItem(scale: Scale, levers: Levers, p: Prices): LineItem {
  const e = scale.events;
  const rawGb = (e.average_per_s * e.average_bytes * SECONDS_PER_MONTH) / GB / (levers.archiverGzip ? e.archive_gzip_ratio : 1);
  const recordBytes = (scale.analytics.firehose_record_events * e.average_bytes) / (levers.archiverGzip ? e.archive_gzip_ratio : 1);
  const billedGb = rawGb * (Math.ceil(recordBytes / p.firehose.record_unit_bytes) * p.firehose.record_unit_bytes) / recordBytes;
  const curatedGb = (e.average_per_s * scale.measured.thinBytesPerChange * SECONDS_PER_MONTH) / GB;
  const s3 = billedGb * p.firehose.direct_put_per_gb;
  const snowflake = curatedGb * p.firehose.snowflake_per_gb;
  return { usd: s3 + snowflake, detail: { raw_gb: round(rawGb, 0), to_s3_usd: round(s3), curated_gb: round(curatedGb, 0), to_snowflake_usd: round(snowflake) } };
}

function s3Item(scale: Scale, p: Prices): LineItem {
  const e = scale.events;
  const storedGb = (e.average_per_s * e.average_bytes * 86400 * scale.analytics.raw_retention_days) / e.archive_gzip_ratio / GB;
  const t1 = Math.min(storedGb, 50_000);
  const t2 = Math.min(Math.max(storedGb - 50_000, 0), 450_000);
  const t3 = Math.max(storedGb - 500_000, 0);
  const storage = t1 * p.s3.standard_gb_month_first_50tb + t2 * p.s3.standard_gb_month_next_450tb + t3 * p.s3.standard_gb_month_over_500tb;
  // Firehose writes one object per writer per buffer interval; the loader reads each once.
  const objects = (scale.analytics.archive_writers * SECONDS_PER_MONTH) / scale.analytics.archive_object_seconds;
  const requests = (objects / 1000) * (p.s3.put_per_thousand + p.s3.get_per_thousand);
  return { usd: storage + requests, detail: { stored_gb: round(storedGb, 0), objects_per_month: round(objects, 0) } };
}

function kmsItem(scale: Scale, p: Prices): LineItem {
  // One key per environment plus the audit key; data keys are cached, so requests scale with
  // service instances refreshing their cache (every 5 minutes) and erasure requests, not events.
  const keys = 2;
  const requests = 200 * (SECONDS_PER_MONTH / 300) + 1e6;
  return { usd: keys * p.kms.key_month + (requests / 1e4) * p.kms.requests_per_10k, detail: { keys, requests_millions: round(requests / 1e6, 2) } };
}

export function serviceVcpus(scale: Scale): { average: number; peak: number; detail: Record<string, number> } {
  const m = scale.measured;
  const perEvent: Record<string, number> = {
    capture: m.captureCpuUsPerEvent * 2, // active + standby holding the same reservation
    router: m.routerCoreCpuUsPerEvent * scale.services.router_cpu_factor,
  };
  for (const c of scale.services.other_consumers) perEvent[c] = scale.services.other_consumer_cpu_us_per_event;
  for (const [service, us] of Object.entries(scale.services.cpu_us_per_event ?? {})) perEvent[service] = us;
  const usPerEvent = Object.values(perEvent).reduce((a, b) => a + b, 0);
  const vcpu = (rate: number) => (rate * usPerEvent) / 1e6 / scale.services.target_cpu_utilization;
  return { average: vcpu(scale.events.average_per_s), peak: vcpu(scale.events.peak_per_s), detail: perEvent };
}

function eksItem(scale: Scale, p: Prices): LineItem {
  const v = serviceVcpus(scale);
  const nodesAt = (vcpus: number) => Math.max(3, Math.ceil(vcpus / p.ec2.node_vcpus) + 1);
  const share = scale.services.peak_hours_share;
  const nodeHours = p.hours_per_month * ((1 - share) * nodesAt(v.average) + share * nodesAt(v.peak));
  return {
    usd: nodeHours * p.ec2.node_hour,
    detail: { node_type: p.ec2.node_type, vcpus_average: round(v.average, 1), vcpus_peak: round(v.peak, 1), nodes_average: nodesAt(v.average), nodes_peak: nodesAt(v.peak), ...Object.fromEntries(Object.entries(v.detail).map(([k, us]) => [`${k}_cpu_us_per_event`, round(us, 1)])) },
  };
}

function snowflakeItem(scale: Scale, p: Prices): LineItem {
  const a = scale.analytics;
  const credits = p.snowflake.warehouse_credits_per_hour[a.warehouse_size];
  if (credits === undefined) throw new Error(`unknown warehouse size ${a.warehouse_size}`);
  const warehouseCredits = credits * a.warehouse_hours_per_day * (730 / 24);
  // Storage in the steady state: the curated years, plus 7 days of Fail-safe at the same rate.
  const curatedTb = (scale.events.average_per_s * a.curated_bytes_per_change * 86400 * (365 * a.curated_years + 7)) / 1e12;
  const usd = warehouseCredits * p.snowflake.credit_usd + curatedTb * p.snowflake.storage_tb_month;
  return { usd, detail: { warehouse: a.warehouse_size, credits: round(warehouseCredits, 0), storage_tb: round(curatedTb, 1) } };
}

function cloudwatchItem(scale: Scale, p: Prices): LineItem {
  const o = scale.observability;
  const usd = o.custom_metrics * p.cloudwatch.metric_month + o.alarms * p.cloudwatch.alarm_month + o.dashboards * p.cloudwatch.dashboard_month + o.log_gb_per_day * (730 / 24) * (p.cloudwatch.logs_ingest_per_gb + p.cloudwatch.logs_storage_gb_month);
  return { usd, detail: { custom_metrics: o.custom_metrics, alarms: o.alarms, dashboards: o.dashboards, log_gb_per_day: o.log_gb_per_day } };
}

/** The monthly bill. */
export function monthlyBill(scale: Scale, prices: Prices, levers: Levers = DEFAULT_LEVERS): Bill {
  const k = kinesisShards(scale, levers);
  const f = fanout(scale, levers);
  const services: Record<string, LineItem> = {
    kinesis: kinesisItem(scale, levers, prices, k),
    dynamodb: dynamoItem(scale, levers, prices, f),
    [levers.broker === 'iot-core' ? 'iot_core' : 'mqtt_self_hosted']: levers.broker === 'iot-core' ? iotCoreItem(scale, levers, prices, f) : selfHostedItem(scale, levers, prices, f),
    lambda: lambdaItem(scale, prices),
    firehose: firehoseItem(scale, levers, prices),
    s3: s3Item(scale, prices),
    kms: kmsItem(scale, prices),
    eks_nodes: eksItem(scale, prices),
    snowflake: snowflakeItem(scale, prices),
    cloudwatch: cloudwatchItem(scale, prices),
  };
  if (levers.broker === 'self-hosted') delete services.lambda;
  for (const item of Object.values(services)) item.usd = round(item.usd);
  const total = Object.values(services).reduce((a, s) => a + s.usd, 0);
  return { monthly_usd_total: round(total), services, levers };
}

export interface Comparison {
  default: Bill;
  iot_vs_selfhosted_usd: { iot_core: number; self_hosted: number };
  levers: { name: string; levers: Levers; monthly_usd_total: number; delta_usd: number }[];
  /** The saving levers applied one after another, cheapest configuration last. */
  cumulative: { name: string; monthly_usd_total: number }[];
  /** The default levers on a scale whose assumption is changed: what the bill is most sensitive to. */
  sensitivity: { name: string; monthly_usd_total: number; delta_usd: number }[];
}

/** Applied in this order by `compare`'s cumulative path (from the default: a self-hosted broker). */
export const SAVING_PATH: [string, Partial<Levers>][] = [
  ['Kinesis retention 24 h', { retentionHours: 24 }],
  ['changelog bodies for watched projects only', { changelogScope: 'watched' }],
];

/** Levers that change only what IoT Core meters: listed when the base is IoT Core. */
const IOT_CORE_LEVERS: [string, Partial<Levers>][] = [
  ['QoS 1 deliveries to browsers (subscribeQos: 1)', { deliveryQos: 1 }],
  ['subscriptions from replay requests, no subscribe events', { subscriptionEvents: 'replay-call' }],
];

/** The default bill, the broker side by side, and what each lever does alone. */
export function compare(scale: Scale, prices: Prices, base: Levers = DEFAULT_LEVERS): Comparison {
  const bill = monthlyBill(scale, prices, base);
  const f = fanout(scale, base);
  const variants: [string, Partial<Levers>][] = [
    ['batch window 0 ms', { batchWindowMs: 0 }],
    ['batch window 250 ms', { batchWindowMs: 250 }],
    ['batch window 1000 ms', { batchWindowMs: 1000 }],
    ['full payloads instead of thin', { payload: 'full' }],
    base.payload === 'thin-gzip' ? ['thin payloads not gzipped (ROUTER_GZIP=false)', { payload: 'thin' }] : ['thin payloads gzipped (ROUTER_GZIP=true)', { payload: 'thin-gzip' }],
    ['publish to every project (no live-subscriber filter)', { liveSubscribersOnly: false }],
    base.broker === 'iot-core' ? ['self-hosted MQTT on EKS instead of IoT Core', { broker: 'self-hosted' }] : ['AWS IoT Core instead of the self-hosted broker', { broker: 'iot-core' }],
    [base.kinesisCompression === 'zstd' ? 'Kinesis records uncompressed (CAPTURE_COMPRESSION=none)' : 'Kinesis records zstd (CAPTURE_COMPRESSION=zstd)', { kinesisCompression: base.kinesisCompression === 'zstd' ? 'none' : 'zstd' }],
    ['Kinesis on-demand', { kinesisMode: 'on-demand' }],
    ['Kinesis retention 24 h', { retentionHours: 24 }],
    ['changelog bodies for watched projects only', { changelogScope: 'watched' }],
    ['changelog and lease tables on-demand instead of provisioned', { dynamoCapacity: 'on-demand' }],
    ['changelog kept 7 days instead of 24 h', { changelogTtlHours: 168 }],
    ['archiver sends plain records (Firehose gzips)', { archiverGzip: false }],
    ['router checkpoints every batch window (ROUTER_CHECKPOINT_INTERVAL_MS=0)', { routerCheckpointMs: 0 }],
    ['audit checkpoints every read (AUDIT_CHECKPOINT_INTERVAL_MS=0)', { auditCheckpointMs: 0 }],
    ['search, notifications, archiver checkpoint every read (KINESIS_CHECKPOINT_INTERVAL_MS=0)', { consumerCheckpointMs: 0 }],
    ...(base.broker === 'iot-core' ? IOT_CORE_LEVERS : [['broker nodes re-check memberships every 60 s instead of 300 s', { brokerRecheckMs: 60_000 }] as [string, Partial<Levers>]]),
  ];
  let path = { ...base };
  const cumulative = SAVING_PATH.map(([name, change]) => {
    path = { ...path, ...change };
    return { name: `+ ${name}`, monthly_usd_total: monthlyBill(scale, prices, path).monthly_usd_total };
  });
  const measuredRatio = scale.events.kinesis_compression_measured_ratio;
  const scales: [string, Scale][] = [
    ...(measuredRatio ? [[`Kinesis zstd at the measured ${measuredRatio}x (capture's records at 1,000 changes/s), not ${scale.events.kinesis_compression_ratio}x`, { ...scale, events: { ...scale.events, kinesis_compression_ratio: measuredRatio } }] as [string, Scale]] : []),
    ['broker nodes of 10,000 connections (not shown yet)', { ...scale, measured: { ...scale.measured, broker: { ...scale.measured.broker, connectionsPerNode: 10_000 } } }],
    ...(scale.measured.pipelineCpuUsPerChange
      ? [[`the router and the stream's consumers at the CPU per change the pipeline benchmarks measured (${Object.entries(scale.measured.pipelineCpuUsPerChange).map(([s, us]) => `${s} ${Math.round(us)}`).join(', ')} µs)`, { ...scale, services: { ...scale.services, cpu_us_per_event: scale.measured.pipelineCpuUsPerChange } }] as [string, Scale]]
      : []),
    // The warehouse's size is assumed, not measured (no Snowflake here): one size either way.
    ...neighbourSizes(scale.analytics.warehouse_size, Object.keys(prices.snowflake.warehouse_credits_per_hour)).map((size): [string, Scale] => [
      `an ${size} warehouse for the MERGEs instead of ${scale.analytics.warehouse_size} (assumed: not measurable here)`,
      { ...scale, analytics: { ...scale.analytics, warehouse_size: size } },
    ]),
    ...[scale.events.workspaces / 5, scale.events.workspaces * 5].map((workspaces): [string, Scale] => [`${workspaces.toLocaleString('en-US')} workspaces (checkpoint states) instead of ${scale.events.workspaces.toLocaleString('en-US')}`, { ...scale, events: { ...scale.events, workspaces } }]),
  ];
  return {
    default: bill,
    cumulative,
    iot_vs_selfhosted_usd: { iot_core: round(iotCoreItem(scale, base, prices, f).usd), self_hosted: round(selfHostedItem(scale, base, prices, f).usd) },
    levers: variants.map(([name, change]) => {
      const levers = { ...base, ...change };
      const total = monthlyBill(scale, prices, levers).monthly_usd_total;
      return { name, levers, monthly_usd_total: total, delta_usd: round(total - bill.monthly_usd_total) };
    }),
    sensitivity: scales.map(([name, other]) => {
      const total = monthlyBill(other, prices, base).monthly_usd_total;
      return { name, monthly_usd_total: total, delta_usd: round(total - bill.monthly_usd_total) };
    }),
  };
}

/** The sizes next to `size` in `sizes` (smallest first), the smaller one first. */
function neighbourSizes(size: string, sizes: readonly string[]): string[] {
  const at = sizes.indexOf(size);
  return at < 0 ? [] : [sizes[at - 1], sizes[at + 1]].filter((s): s is string => s !== undefined);
}
