// Capture's configuration, read once from the environment; a bad value stops start-up with the
// variable's name (lib/config.ts).
import { hostname } from 'node:os';
import { type AwsConfig, loadAwsConfig } from '../lib/aws.js';
import { type Env, bool, int, oneOf, optionalStr, str, url } from '../lib/config.js';
import { ConfigError } from '../lib/errors.js';
import { COMPRESSIONS, type Compression } from '../lib/record-codec.js';

export interface CaptureConfig {
  databaseUrl: string;
  /** data.source.db and the default CloudEvents source. */
  dbName: string;
  streamName: string;
  aws: AwsConfig;
  slot: string;
  /**
   * This capture instance's identity, stable across its restarts (a StatefulSet pod's name;
   * `taskflow dev` uses capture-0). Its replication connection carries it as application_name,
   * so a restarted instance recognizes the walsender its dead predecessor left on the slot.
   */
  instanceId: string;
  publication: string;
  /** CloudEvents `source` of every event. */
  source: string;
  aggregate: boolean;
  compression: Compression;
  /** PutRecords requests in flight at once (a workspace is never in two). */
  maxInFlightBatches: number;
  /** Events waiting for Kinesis before capture stops reading the slot (backpressure). */
  maxBufferedEvents: number;
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
  /** When a workspace counts as nearing its shard's write limit (hot-workspaces.ts). */
  hotWorkspaces: { threshold: number; clearBelow: number; windowMs: number; maxTracked: number };
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

function identifier(env: Env, name: string, fallback: string): string {
  const v = str(env, name, fallback);
  if (!IDENTIFIER.test(v)) throw new ConfigError(name, `must be a lower-case Postgres identifier (a-z, 0-9, _; at most 63), got "${v}"`);
  return v;
}

/** A share of a limit, in (0, 1]; lib/config.ts reads integers only. */
function fraction(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = /^(\d+(\.\d*)?|\.\d+)$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!(n > 0 && n <= 1)) throw new ConfigError(name, `must be a number above 0 and at most 1, got "${raw}"`);
  return n;
}

function hotWorkspaces(env: Env): CaptureConfig['hotWorkspaces'] {
  const threshold = fraction(env, 'CAPTURE_HOT_WORKSPACE_THRESHOLD', 0.8);
  // Cleared a quarter below the threshold by default (0.8 → 0.6) so a workspace hovering at the
  // threshold is reported once, not on every swing.
  const clearBelow = fraction(env, 'CAPTURE_HOT_WORKSPACE_CLEAR_BELOW', Math.round(threshold * 0.75 * 1e6) / 1e6);
  if (clearBelow >= threshold) throw new ConfigError('CAPTURE_HOT_WORKSPACE_CLEAR_BELOW', `must be below CAPTURE_HOT_WORKSPACE_THRESHOLD (${threshold}), got ${clearBelow}`);
  return {
    threshold,
    clearBelow,
    windowMs: int(env, 'CAPTURE_HOT_WORKSPACE_WINDOW_MS', 5000, { min: 1000, max: 300_000 }),
    maxTracked: int(env, 'CAPTURE_HOT_WORKSPACE_MAX_TRACKED', 10_000, { min: 1 }),
  };
}

/** Postgres keeps 63 bytes of printable ASCII of an application_name: 46 are left after "taskflow-capture/". */
const INSTANCE_ID = /^[A-Za-z0-9._-]{1,46}$/;

function instanceId(env: Env): string {
  const given = optionalStr(env, 'CAPTURE_INSTANCE_ID');
  if (given === undefined) return `${hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 32)}-${process.pid}`;
  if (!INSTANCE_ID.test(given)) throw new ConfigError('CAPTURE_INSTANCE_ID', `must be 1-46 characters of A-Z a-z 0-9 . _ -, got "${given}"`);
  return given;
}

export function loadConfig(env: Env): CaptureConfig {
  const databaseUrl = url(env, 'DATABASE_URL');
  const dbName = decodeURIComponent(new URL(databaseUrl).pathname.replace(/^\//, '')) || 'postgres';
  return {
    databaseUrl,
    dbName,
    streamName: str(env, 'CHANGE_STREAM_NAME'),
    aws: loadAwsConfig(env),
    slot: identifier(env, 'CAPTURE_SLOT', 'taskflow_capture'),
    instanceId: instanceId(env),
    publication: identifier(env, 'CAPTURE_PUBLICATION', 'taskflow_capture'),
    source: optionalStr(env, 'CAPTURE_SOURCE') ?? `//taskflow/capture/${dbName}`,
    aggregate: bool(env, 'CAPTURE_AGGREGATE', true),
    compression: oneOf(env, 'CAPTURE_COMPRESSION', COMPRESSIONS, 'none'),
    maxInFlightBatches: int(env, 'CAPTURE_MAX_IN_FLIGHT_BATCHES', 4, { min: 1, max: 64 }),
    maxBufferedEvents: int(env, 'CAPTURE_MAX_BUFFERED_EVENTS', 50_000, { min: 100 }),
    ackIntervalMs: int(env, 'CAPTURE_ACK_INTERVAL_MS', 1000, { min: 10, max: 30_000 }),
    heartbeatIntervalMs: int(env, 'CAPTURE_HEARTBEAT_INTERVAL_MS', 10_000, { min: 0 }),
    initialSnapshot: bool(env, 'CAPTURE_INITIAL_SNAPSHOT', false),
    snapshotChunkSize: int(env, 'CAPTURE_SNAPSHOT_CHUNK_SIZE', 1000, { min: 1, max: 100_000 }),
    acceptSlotGap: bool(env, 'CAPTURE_ACCEPT_SLOT_GAP', false),
    dlqTable: str(env, 'DYNAMODB_TABLE_DLQ', 'taskflow-dlq'),
    checkpointsTable: str(env, 'DYNAMODB_TABLE_CHECKPOINTS', 'taskflow-checkpoints'),
    metricsPort: int(env, 'METRICS_PORT', 0, { min: 0, max: 65535 }),
    hotWorkspaces: hotWorkspaces(env),
  };
}
