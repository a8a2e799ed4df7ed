// Capture's configuration, read once from the environment; a bad value stops start-up with the
// variable's name. CAPTURE_SETTINGS declares each variable once: loadConfig, `taskflow capture
// --help` and the reference in capture/README.md all come from it (lib/config.ts).
import { hostname } from 'node:os';
import { AWS_SETTINGS, type AwsConfig, loadAwsConfig } from '../lib/aws.js';
import {
  type Env,
  type Setting,
  boolSetting,
  customSetting,
  intSetting,
  oneOfSetting,
  optionalSetting,
  optionalStr,
  readSettings,
  str,
  stringSetting,
  uniqueSettings,
  urlSetting,
} from '../lib/config.js';
import { DEV_MODE_SETTINGS, isDevelopment } from '../lib/dev-mode.js';
import { ConfigError } from '../lib/errors.js';
import { LOG_SETTINGS } from '../lib/logger.js';
import { METRICS_SETTINGS } from '../lib/metrics.js';
import { COMPRESSIONS, type Compression } from '@taskflow/stream/codec';
import { SUBJECT_KEY_SETTINGS, type SubjectKeyConfig, loadSubjectKeyConfig } from '../lib/subject-keys.js';
import { type Partition, partitionName } from './partitions.js';

export interface CaptureConfig {
  databaseUrl: string;
  /** data.source.db and the default CloudEvents source. */
  dbName: string;
  streamName: string;
  aws: AwsConfig;
  /** The slot of this instance's partition (CAPTURE_SLOT, suffixed _p<k>of<N> when partitioned). */
  slot: string;
  /** Which workspaces this instance reads (capture/partitions.ts); one partition of one reads all. */
  partition: Partition;
  /**
   * This capture instance's identity, stable across its restarts (a StatefulSet pod's name;
   * `taskflow dev` uses capture-0). Its replication connection carries it as application_name,
   * so a restarted instance recognizes the walsender its dead predecessor left on the slot.
   */
  instanceId: string;
  /** The publication of this instance's partition (CAPTURE_PUBLICATION, suffixed like the slot). */
  publication: string;
  /** CloudEvents `source` of every event. */
  source: string;
  aggregate: boolean;
  compression: Compression;
  /** PutRecords requests in flight at once (a workspace is never in two). */
  maxInFlightBatches: number;
  /** Events waiting for Kinesis before capture stops reading the slot (backpressure). */
  maxBufferedEvents: number;
  /** How long a PutRecords batch may wait for more transactions (batcher.ts, linger). */
  lingerMs: number;
  /** How often the slot is acknowledged (never per message). */
  ackIntervalMs: number;
  /** pg_logical_emit_message interval when the database is idle; 0 turns it off. */
  heartbeatIntervalMs: number;
  /** Snapshot existing rows on the first start (when the slot is created). */
  initialSnapshot: boolean;
  /** Rows per snapshot chunk. */
  snapshotChunkSize: number;
  /** Start even though the slot was recreated or advanced by someone else (events in the gap are lost). */
  acceptSlotGap: boolean;
  dlqTable: string;
  /** Where the slot's identity and acknowledged position are recorded (DynamoDB). */
  checkpointsTable: string;
  metricsPort: number;
  metricsHost: string;
  /** Development mode only (lib/dev-mode.ts): elsewhere capture refuses a superuser (db-role.ts). */
  allowSuperuser: boolean;
  /** When a workspace counts as nearing its shard's write limit (hot-workspaces.ts). */
  hotWorkspaces: { threshold: number; clearBelow: number; windowMs: number; maxTracked: number };
  /** Set when personal fields are encrypted before Kinesis (CAPTURE_ENCRYPT_PERSONAL_FIELDS). */
  subjectKeys?: SubjectKeyConfig;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

function identifierSetting(name: string, fallback: string, meaning: string): Setting<string> {
  return customSetting({
    name,
    type: 'Postgres identifier (a-z, 0-9, _)',
    default: fallback,
    meaning,
    read(env) {
      const v = str(env, name, fallback);
      if (!IDENTIFIER.test(v)) throw new ConfigError(name, `must be a lower-case Postgres identifier (a-z, 0-9, _; at most 63), got "${v}"`);
      return v;
    },
  });
}

/** A share of a limit, in (0, 1]; unset reads as undefined (the caller knows the default). */
function fractionSetting(name: string, defaultText: string, meaning: string): Setting<number | undefined> {
  return customSetting({
    name,
    type: 'number in (0, 1]',
    default: defaultText,
    meaning,
    read(env) {
      const raw = env[name];
      if (raw === undefined || raw === '') return undefined;
      const n = /^(\d+(\.\d*)?|\.\d+)$/.test(raw.trim()) ? Number(raw) : NaN;
      if (!(n > 0 && n <= 1)) throw new ConfigError(name, `must be a number above 0 and at most 1, got "${raw}"`);
      return n;
    },
  });
}

/** Postgres keeps 63 bytes of printable ASCII of an application_name: 46 are left after "taskflow-capture/". */
const INSTANCE_ID = /^[A-Za-z0-9._-]{1,46}$/;

const instanceIdSetting = customSetting({
  name: 'CAPTURE_INSTANCE_ID',
  type: '1-46 of A-Z a-z 0-9 . _ -',
  default: '<hostname>-<pid>',
  meaning: "This instance's identity, stable across its restarts (a StatefulSet pod's name): a restarted instance terminates the walsender its dead predecessor left on the slot; distinct for two instances of one slot.",
  read(env) {
    const given = optionalStr(env, 'CAPTURE_INSTANCE_ID');
    if (given === undefined) return `${hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 32)}-${process.pid}`;
    if (!INSTANCE_ID.test(given)) throw new ConfigError('CAPTURE_INSTANCE_ID', `must be 1-46 characters of A-Z a-z 0-9 . _ -, got "${given}"`);
    return given;
  },
});

/** Everything capture reads from the environment (besides AWS_SETTINGS and LOG_SETTINGS). */
export const CAPTURE_SETTINGS = {
  databaseUrl: urlSetting({ name: 'DATABASE_URL', meaning: 'The source database (a role with REPLICATION); its database name is data.source.db.' }),
  streamName: stringSetting({ name: 'CHANGE_STREAM_NAME', meaning: 'The Kinesis stream the envelopes go to.' }),
  slot: identifierSetting('CAPTURE_SLOT', 'taskflow_capture', 'Logical replication slot (pgoutput); created on the first start.'),
  instanceId: instanceIdSetting,
  publication: identifierSetting('CAPTURE_PUBLICATION', 'taskflow_capture', 'Publication of the captured tables.'),
  partitions: intSetting({ name: 'CAPTURE_PARTITIONS', default: 1, min: 1, max: 64, meaning: 'Capture instances (slots) the workspaces are split among by hash (capture/partitions.ts); above 1, slot and publication names get the suffix _p<k>of<N>.' }),
  partitionIndex: intSetting({ name: 'CAPTURE_PARTITION', default: 0, min: 0, max: 63, meaning: "This instance's partition, 0 to CAPTURE_PARTITIONS - 1: it reads only that partition's workspaces (and, partition 0, the GDPR erasure requests)." }),
  source: optionalSetting({ name: 'CAPTURE_SOURCE', default: '//taskflow/capture/<database>', meaning: 'CloudEvents `source` of every event.' }),
  aggregate: boolSetting({ name: 'CAPTURE_AGGREGATE', default: true, meaning: "KPL-aggregate a workspace's waiting events into one Kinesis record." }),
  compression: oneOfSetting({ name: 'CAPTURE_COMPRESSION', allowed: COMPRESSIONS, default: 'zstd', meaning: 'Compress each Kinesis record (level 1); readers need packages/stream/src/record-codec.ts; none for readers that cannot decompress (KCL, Lambda).' }),
  maxInFlightBatches: intSetting({ name: 'CAPTURE_MAX_IN_FLIGHT_BATCHES', default: 4, min: 1, max: 64, meaning: 'PutRecords requests in flight at once (a workspace is never in two).' }),
  maxBufferedEvents: intSetting({ name: 'CAPTURE_MAX_BUFFERED_EVENTS', default: 50_000, min: 100, meaning: 'Events waiting for Kinesis before capture stops reading the slot (backpressure).' }),
  lingerMs: intSetting({ name: 'CAPTURE_LINGER_MS', default: 50, min: 0, max: 1000, meaning: 'How long a PutRecords batch waits for more transactions (0: none) unless a request\'s worth is queued: adds up to this to commit → Kinesis latency, saves a request per transaction at moderate rates.' }),
  ackIntervalMs: intSetting({ name: 'CAPTURE_ACK_INTERVAL_MS', default: 1000, min: 10, max: 30_000, meaning: 'How often the slot is acknowledged (never per message).' }),
  heartbeatIntervalMs: intSetting({ name: 'CAPTURE_HEARTBEAT_INTERVAL_MS', default: 10_000, min: 0, meaning: 'pg_logical_emit_message interval when the database is idle; 0 turns it off.' }),
  initialSnapshot: boolSetting({ name: 'CAPTURE_INITIAL_SNAPSHOT', default: false, meaning: 'Snapshot existing rows on the first start (when the slot is created).' }),
  snapshotChunkSize: intSetting({ name: 'CAPTURE_SNAPSHOT_CHUNK_SIZE', default: 1000, min: 1, max: 100_000, meaning: 'Rows per snapshot chunk.' }),
  acceptSlotGap: boolSetting({ name: 'CAPTURE_ACCEPT_SLOT_GAP', default: false, meaning: 'Start even though the slot was recreated or advanced by someone else (events in the gap are lost).' }),
  dlqTable: stringSetting({ name: 'DYNAMODB_TABLE_DLQ', default: 'taskflow-dlq', meaning: 'Dead-letter table (lib/dlq.ts).' }),
  checkpointsTable: stringSetting({ name: 'DYNAMODB_TABLE_CHECKPOINTS', default: 'taskflow-checkpoints', meaning: "Where the slot's identity and acknowledged position are recorded." }),
  ...METRICS_SETTINGS,
  hotThreshold: fractionSetting('CAPTURE_HOT_WORKSPACE_THRESHOLD', '0.8', "Share of one shard's write limit at which a workspace is reported hot."),
  hotClearBelow: fractionSetting('CAPTURE_HOT_WORKSPACE_CLEAR_BELOW', '3/4 of the threshold', 'Share below which a hot workspace is reported cooled; below the threshold.'),
  hotWindowMs: intSetting({ name: 'CAPTURE_HOT_WORKSPACE_WINDOW_MS', default: 5000, min: 1000, max: 300_000, meaning: 'Sliding window of the hot-workspace rates.' }),
  hotMaxTracked: intSetting({ name: 'CAPTURE_HOT_WORKSPACE_MAX_TRACKED', default: 10_000, min: 1, meaning: 'Workspaces (and shards) tracked at most for the hot-workspace report.' }),
  encryptPersonalFields: boolSetting({ name: 'CAPTURE_ENCRYPT_PERSONAL_FIELDS', default: false, meaning: "Encrypt tasks.description and comments.body with their author's data key before Kinesis (crypto-shredding; SUBJECT_KEYS_* settings)." }),
};

/** What `taskflow capture --help` and capture/README.md list: every variable capture reads. */
export const CAPTURE_SETTING_LIST = uniqueSettings(CAPTURE_SETTINGS, AWS_SETTINGS, SUBJECT_KEY_SETTINGS, DEV_MODE_SETTINGS, LOG_SETTINGS);

export function loadConfig(env: Env): CaptureConfig {
  const s = readSettings(env, CAPTURE_SETTINGS);
  const dbName = decodeURIComponent(new URL(s.databaseUrl).pathname.replace(/^\//, '')) || 'postgres';
  const threshold = s.hotThreshold ?? 0.8;
  // Cleared a quarter below the threshold by default (0.8 → 0.6) so a workspace hovering at the
  // threshold is reported once, not on every swing.
  const clearBelow = s.hotClearBelow ?? Math.round(threshold * 0.75 * 1e6) / 1e6;
  if (s.partitionIndex >= s.partitions) throw new ConfigError('CAPTURE_PARTITION', `must be below CAPTURE_PARTITIONS (${s.partitions}), got ${s.partitionIndex}`);
  const partition: Partition = { index: s.partitionIndex, count: s.partitions };
  const slot = partitionName(s.slot, partition);
  const publication = partitionName(s.publication, partition);
  for (const [name, v] of [['CAPTURE_SLOT', slot], ['CAPTURE_PUBLICATION', publication]] as const) {
    if (v.length > 63) throw new ConfigError(name, `with the partition suffix the name "${v}" is longer than 63; choose a shorter one`);
  }
  if (clearBelow >= threshold) throw new ConfigError('CAPTURE_HOT_WORKSPACE_CLEAR_BELOW', `must be below CAPTURE_HOT_WORKSPACE_THRESHOLD (${threshold}), got ${clearBelow}`);
  return {
    databaseUrl: s.databaseUrl,
    dbName,
    streamName: s.streamName,
    aws: loadAwsConfig(env),
    slot,
    partition,
    instanceId: s.instanceId,
    publication,
    source: s.source ?? `//taskflow/capture/${dbName}`,
    aggregate: s.aggregate,
    compression: s.compression,
    maxInFlightBatches: s.maxInFlightBatches,
    maxBufferedEvents: s.maxBufferedEvents,
    lingerMs: s.lingerMs,
    ackIntervalMs: s.ackIntervalMs,
    heartbeatIntervalMs: s.heartbeatIntervalMs,
    initialSnapshot: s.initialSnapshot,
    snapshotChunkSize: s.snapshotChunkSize,
    acceptSlotGap: s.acceptSlotGap,
    dlqTable: s.dlqTable,
    checkpointsTable: s.checkpointsTable,
    metricsPort: s.metricsPort,
    metricsHost: s.metricsHost,
    allowSuperuser: isDevelopment(env),
    hotWorkspaces: { threshold, clearBelow, windowMs: s.hotWindowMs, maxTracked: s.hotMaxTracked },
    ...(s.encryptPersonalFields ? { subjectKeys: loadSubjectKeyConfig(env) } : {}),
  };
}
