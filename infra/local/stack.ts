// The embedded local stack: real engines standing in for the AWS services, started in this
// process (kinesalite, dynalite, aedes) or as a bound child (PostgreSQL). Used by `taskflow dev`
// (on-disk, fixed ports, reused across runs) and `taskflow stack --ephemeral` (tests: in memory,
// free ports, deleted on stop). Services never import this: they get stackEnv(info).
import { CreateTableCommand, DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateStreamCommand, DescribeStreamSummaryCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import dynalite from 'dynalite';
import kinesalite from 'kinesalite';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { createDynamoClient, createKinesisClient, type AwsConfig } from '../../lib/aws.js';
import { TaskflowError } from '../../lib/errors.js';
import { retry } from '../../lib/retry.js';
import { FsObjectStore } from '../../lib/object-store.js';
import type { StackInfo } from '../../lib/stack-info.js';
import { startBroker, type Broker, type BrokerHooks } from './broker.js';
import { type FanOutStandIn, startFanOutStandIn } from './fanout.js';
import { type LocalFirehose, startFirehose } from './firehose/server.js';
import { DEV_PORTS, EPHEMERAL_PORTS, type StackPorts } from './ports.js';
import { POSTGRES_USER, startPostgres, type PostgresOptions, type RunningPostgres } from './postgres.js';
import { freePort, listen } from './processes.js';
import { TABLES, type TableSpec } from './tables.js';

export const CHANGE_STREAM_NAME = 'taskflow-changes';
/** The archiver's Firehose delivery stream and where it delivers (raw archive). */
export const ARCHIVE = {
  deliveryStreamName: 'taskflow-changes-archive',
  bucket: 'taskflow-archive',
  prefix: 'raw/',
  errorPrefix: 'errors/',
  // Firehose allows 0–900 s; 1 s keeps commit → warehouse within seconds locally.
  hints: { sizeInMBs: 8, intervalInSeconds: 1 },
  // The archiver gzips its records (analytics/record-packing.ts): delivered as they are, named .gz.
  compression: 'UNCOMPRESSED',
  fileExtension: '.gz',
} as const;
export const DEFAULT_SHARD_COUNT = 4;
/** The fan-out stand-in is woken by every put: this look without one is a safety net only. */
const FANOUT_IDLE_POLL_MS = 1_000;
/** The application database (CloudEvents source //taskflow/capture/taskflow). */
export const APP_DATABASE = 'taskflow';
const REGION = 'us-east-1';

type Engine = 'broker' | 'firehose' | 'fanout' | 'kinesis' | 'dynamodb' | 'postgres';
/** Clients first (the broker's hooks read DynamoDB), the database last. */
const SLOW_STOP_MS = 2_000;
const STOP_ORDER: readonly Engine[] = ['broker', 'firehose', 'fanout', 'kinesis', 'dynamodb', 'postgres'];

export interface StackOptions {
  /** Root of all engine files. Ephemeral stacks default to a fresh temp dir. */
  dataDir?: string;
  /** In-memory Kinesis/DynamoDB, non-durable Postgres, free ports, everything deleted on stop. */
  ephemeral: boolean;
  ports?: Partial<StackPorts>;
  shardCount?: number;
  /** MQTT authorization (allow-all when absent); as a function it is given the DynamoDB stand-in. */
  brokerHooks?: BrokerHooks | ((dynamodb: StackInfo['dynamodb']) => BrokerHooks);
}

export interface RunningStack {
  info: StackInfo;
  broker: Broker;
  /** Postgres ran initdb in this start: the data directory is brand new. */
  freshDatabase: boolean;
  stop(): Promise<void>;
}

export async function startStack(options: StackOptions): Promise<RunningStack> {
  const { ephemeral, shardCount = DEFAULT_SHARD_COUNT } = options;
  const ports: StackPorts = { ...(ephemeral ? EPHEMERAL_PORTS : DEV_PORTS), ...options.ports };
  if (ephemeral && !options.dataDir) removeAbandonedEphemeralDirs();
  const dataDir = resolve(options.dataDir ?? mkdtempSync(join(tmpdir(), EPHEMERAL_DIR_PREFIX)));
  // Postgres runs as another OS user when we are root: it must be able to traverse to its dir.
  mkdirSync(dataDir, { recursive: true });
  chmodSync(dataDir, 0o755);
  // One stack per data directory: the engines' own locks (leveldb, postmaster.pid) would fail later, less clearly.
  claimDataDir(dataDir);
  const s3Dir = join(dataDir, 's3');
  mkdirSync(s3Dir, { recursive: true });

  const stops = new Map<Engine, () => Promise<void>>();
  const stopAll = async (): Promise<void> => {
    for (const engine of STOP_ORDER) {
      const stop = stops.get(engine);
      stops.delete(engine);
      const began = Date.now();
      await stop?.().catch((err: unknown) => console.error(`stack: stopping ${engine} failed:`, err));
      // A slow stop makes the caller's own timeout kill the whole stack: say which engine it was.
      if (Date.now() - began > SLOW_STOP_MS) console.error(`stack: stopping ${engine} took ${((Date.now() - began) / 1000).toFixed(1)} s`);
    }
    if (ephemeral) rmSync(dataDir, { recursive: true, force: true });
    else rmSync(join(dataDir, OWNER_FILE), { force: true });
  };

  try {
    const postgresOptions = { pgdata: join(dataDir, 'postgres'), ephemeral, logFile: join(dataDir, 'postgres.log') };
    const tables = Object.fromEntries(TABLES.map((t) => [t.key, t.table.TableName]));
    const startDynamoThenBroker = async (): Promise<[string, Broker]> => {
      const endpoint = await startHttpEngine(
        'dynamodb',
        dynalite({ ...(ephemeral ? {} : { path: join(dataDir, 'dynamodb') }), createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 }),
        ports.dynamodb,
        stops,
      );
      // Authorization hooks may read DynamoDB (the membership projection): they get its address.
      const hooks = typeof options.brokerHooks === 'function' ? options.brokerHooks({ endpoint, region: REGION, tables }) : options.brokerHooks;
      const b = await startBroker({ tcpPort: ports.mqttTcp, wsPort: ports.mqttWs, ...(hooks ? { hooks } : {}) }).catch((err: unknown) => {
        throw portInUse('the MQTT broker', `${ports.mqttTcp}/${ports.mqttWs}`, err);
      });
      stops.set('broker', () => b.stop());
      return [endpoint, b];
    };
    const startArchiveFirehose = async (): Promise<LocalFirehose> => {
      const firehose = await startFirehose(
        {
          store: (bucket) => new FsObjectStore(join(s3Dir, bucket)),
          streams: [{ name: ARCHIVE.deliveryStreamName, bucket: ARCHIVE.bucket, prefix: ARCHIVE.prefix, errorPrefix: ARCHIVE.errorPrefix, hints: ARCHIVE.hints, compression: ARCHIVE.compression, fileExtension: ARCHIVE.fileExtension }],
          region: REGION,
        },
        ports.firehose,
      ).catch((err: unknown) => {
        throw portInUse('the Firehose stand-in', ports.firehose, err);
      });
      stops.set('firehose', () => firehose.stop());
      return firehose;
    };
    // Kinesis pushes a fan-out consumer's records as they arrive: the stand-in reads as soon as kinesalite answered a put.
    const fanOut: { standIn?: FanOutStandIn } = {}; // started once kinesalite listens
    const kinesaliteServer = kinesalite({ ...(ephemeral ? {} : { path: join(dataDir, 'kinesis') }), createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100_000 });
    kinesaliteServer.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (/\.PutRecords?$/.test(String(req.headers['x-amz-target']))) res.once('finish', () => fanOut.standIn?.wake());
    });
    const [postgres, kinesis, [dynamo, broker], firehose] = await allSettledOrThrow([
      (ports.postgres ? startPostgres({ ...postgresOptions, port: ports.postgres }) : startPostgresOnFreePort(postgresOptions)).then((p) => {
        stops.set('postgres', () => p.stop());
        return p;
      }),
      startHttpEngine('kinesis', kinesaliteServer, ports.kinesis, stops),
      startDynamoThenBroker(),
      startArchiveFirehose(),
    ]);

    const aws: AwsConfig = { region: REGION, kinesisEndpoint: kinesis, dynamodbEndpoint: dynamo };
    const fanOutReads = createKinesisClient(aws);
    const running = await startFanOutStandIn({ kinesis: fanOutReads, pollMs: FANOUT_IDLE_POLL_MS }, ports.fanout).catch((err: unknown) => {
      fanOutReads.destroy();
      throw portInUse('the enhanced fan-out stand-in', ports.fanout, err);
    });
    fanOut.standIn = running;
    stops.set('fanout', async () => {
      await running.close();
      fanOutReads.destroy();
    });
    const kinesisClient = createKinesisClient(aws);
    const dynamoClient = createDynamoClient(aws);
    let streamShards: number;
    try {
      // An existing on-disk stream keeps its shard count: report what it has.
      [streamShards] = await Promise.all([
        ensureStream(kinesisClient, CHANGE_STREAM_NAME, shardCount),
        ensureDatabase(postgres, APP_DATABASE),
        ...TABLES.map((t) => ensureTable(dynamoClient, t)),
      ]);
    } finally {
      kinesisClient.destroy();
      dynamoClient.destroy();
    }

    const info: StackInfo = {
      postgres: {
        url: postgres.url(APP_DATABASE),
        host: '127.0.0.1',
        port: postgres.port,
        database: APP_DATABASE,
        user: POSTGRES_USER,
        dataDir: join(dataDir, 'postgres'),
      },
      kinesis: { endpoint: kinesis, fanOutEndpoint: running.url, region: REGION, streamName: CHANGE_STREAM_NAME, shardCount: streamShards },
      dynamodb: { endpoint: dynamo, region: REGION, tables },
      mqtt: { tcpUrl: broker.tcpUrl, wsUrl: broker.wsUrl },
      iot: { dataEndpoint: broker.publishUrl },
      s3: { dir: s3Dir },
      firehose: { endpoint: firehose.endpoint, deliveryStreamName: ARCHIVE.deliveryStreamName, bucket: ARCHIVE.bucket, prefix: ARCHIVE.prefix, errorPrefix: ARCHIVE.errorPrefix },
      http: {},
      dataDir,
      ephemeral,
      pid: process.pid,
    };
    return { info, broker, freshDatabase: postgres.initialized, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * Like Promise.all, but waits for every start to finish before failing, so that engines still
 * starting when another failed are registered for stopping rather than left running.
 */
async function allSettledOrThrow<T extends readonly unknown[]>(starts: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const results = await Promise.allSettled(starts);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

/**
 * Postgres needs a concrete port, and a port found free can be taken by someone else (another
 * jest run's stack) before postgres binds it: then try another.
 */
async function startPostgresOnFreePort(options: Omit<PostgresOptions, 'port'>, attempts = 3): Promise<RunningPostgres> {
  return retry(async () => startPostgres({ ...options, port: await freePort() }), {
    maxAttempts: attempts,
    policy: { baseMs: 50, maxMs: 200 }, // a little jitter so two racing stacks pick apart
    shouldRetry: (err) => /Address already in use/.test((err as Error).message),
  });
}

const EPHEMERAL_DIR_PREFIX = 'taskflow-stack-';
const OWNER_FILE = 'owner.pid';

/** Records this process as the directory's owner; refuses when a live process already owns it. */
function claimDataDir(dataDir: string): void {
  const ownerFile = join(dataDir, OWNER_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(ownerFile, String(process.pid), { flag: 'wx' });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number(readFileSync(ownerFile, 'utf8'));
    if (isAlive(owner)) {
      throw new TaskflowError('STACK_DATA_DIR_IN_USE', `${dataDir} is in use by process ${owner}: is another taskflow dev or stack running on it?`);
    }
    rmSync(ownerFile, { force: true }); // left by a stack that was killed
  }
  throw new TaskflowError('STACK_DATA_DIR_IN_USE', `${dataDir}: another stack claimed it at the same moment`);
}

/** A SIGKILLed ephemeral stack cannot delete its directory: the next one removes it. */
function removeAbandonedEphemeralDirs(): void {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(EPHEMERAL_DIR_PREFIX)) continue;
    const dir = join(tmpdir(), name);
    let owner: number;
    try {
      owner = Number(readFileSync(join(dir, OWNER_FILE), 'utf8'));
    } catch {
      continue; // being created right now, or not ours
    }
    if (!isAlive(owner)) rmSync(dir, { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function portInUse(what: string, port: number | string, cause: unknown): TaskflowError {
  return new TaskflowError('STACK_PORT_IN_USE', `${what} cannot listen on 127.0.0.1:${port}: ${(cause as Error).message} (another taskflow stack running?)`, { cause });
}

async function startHttpEngine(engine: 'kinesis' | 'dynamodb', server: Server, port: number, stops: Map<Engine, () => Promise<void>>): Promise<string> {
  let bound: number;
  try {
    bound = await listen(server, port);
  } catch (err) {
    throw portInUse(engine === 'kinesis' ? 'kinesalite' : 'dynalite', port, err);
  }
  stops.set(
    engine,
    () =>
      new Promise<void>((resolveClose, reject) => {
        // Idle keep-alive sockets of SDK clients would hold close() open.
        server.close((err) => (err ? reject(err) : resolveClose()));
        server.closeAllConnections();
      }),
  );
  return `http://127.0.0.1:${bound}`;
}

async function ensureDatabase(postgres: RunningPostgres, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgres.url('postgres') });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
}

function isResourceInUse(err: unknown): boolean {
  return (err as { name?: string }).name === 'ResourceInUseException';
}

/** Creates the stream if missing and waits until it is ACTIVE; returns its shard count. */
export async function ensureStream(kinesis: KinesisClient, streamName: string, shardCount: number, timeoutMs = 10_000): Promise<number> {
  try {
    await kinesis.send(new CreateStreamCommand({ StreamName: streamName, ShardCount: shardCount }));
  } catch (err) {
    if (!isResourceInUse(err)) throw err;
  }
  const s = await untilActive(`stream ${streamName}`, timeoutMs, async () => {
    const { StreamDescriptionSummary: summary } = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: streamName }));
    return { status: summary?.StreamStatus, value: summary };
  });
  return s?.OpenShardCount ?? shardCount;
}

/** Polls `describe` every 20 ms until the resource's status is ACTIVE; its value then. */
async function untilActive<T>(what: string, timeoutMs: number, describe: () => Promise<{ status: string | undefined; value: T }>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status, value } = await describe();
    if (status === 'ACTIVE') return value;
    if (Date.now() > deadline) throw new Error(`${what} not ACTIVE after ${timeoutMs} ms (status ${status})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Creates the table under `name` (default: its own name) unless it exists, and waits until it is
 * ACTIVE: CreateTable answers while the table is CREATING (dynalite too, for a moment even with
 * createTableMs 0), and a write to a CREATING table is refused as ResourceNotFoundException.
 * TTL is not emulated by dynalite.
 */
export async function ensureTable(dynamo: DynamoDBClient, spec: TableSpec, name = spec.table.TableName, timeoutMs = 10_000): Promise<string> {
  try {
    await dynamo.send(new CreateTableCommand({ ...spec.table, TableName: name }));
  } catch (err) {
    if (!isResourceInUse(err)) throw err;
  }
  await untilActive(`table ${name}`, timeoutMs, async () => ({ status: (await dynamo.send(new DescribeTableCommand({ TableName: name }))).Table?.TableStatus, value: undefined }));
  return name;
}

/** Human-readable lines saying where each engine listens. */
export function describeStack(info: StackInfo): string[] {
  const rows: Array<[string, string]> = [
    ['postgres', info.postgres.url],
    ['kinesis', `${info.kinesis.endpoint}  stream ${info.kinesis.streamName} (${info.kinesis.shardCount} shards)`],
    ['kinesis fan-out', `${info.kinesis.fanOutEndpoint}  SubscribeToShard, stream consumers`],
    ['dynamodb', `${info.dynamodb.endpoint}  tables ${Object.values(info.dynamodb.tables).join(', ')}`],
    ['mqtt', `${info.mqtt.tcpUrl}  ${info.mqtt.wsUrl}`],
    ['iot publish', `${info.iot.dataEndpoint}/topics/{topic}`],
    ['s3 folder', info.s3.dir],
    ['firehose', `${info.firehose.endpoint}  stream ${info.firehose.deliveryStreamName} -> ${info.firehose.bucket}/${info.firehose.prefix}`],
    ...Object.entries(info.http),
    ['data', `${info.dataDir}${info.ephemeral ? ' (ephemeral)' : ''}`],
  ];
  const width = Math.max(...rows.map(([name]) => name.length)) + 2;
  return rows.map(([name, where]) => `${name.padEnd(width)}${where}`);
}
