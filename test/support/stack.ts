// What integration tests use to reach the one local stack that jest's global setup started
// (test/setup/global-setup.mjs), and to carve isolated pieces out of it: a fresh migrated
// database, a fresh stream, fresh DynamoDB tables, a private MQTT broker.
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { migrate, readMigrationFiles } from '../../db/migrate.js';
import { REPLICATION_ROLE, setRolePassword, urlAs } from '../../db/roles.js';
import { LOCAL_REPLICATION_PASSWORD } from '../../infra/local/postgres.js';
import { clientIdPrefix } from '../../lib/authz.js';
import { createDynamoClient, createKinesisClient, loadAwsConfig, type AwsConfig } from '../../lib/aws.js';
import { tableEnvVar } from '../../lib/config.js';
import { readStackInfo, stackEnv, type StackInfo } from '../../lib/stack-info.js';
import { startBroker, type Broker, type BrokerHooks } from '../../infra/local/broker.js';
import { ensureStream, ensureTable } from '../../infra/local/stack.js';
import { TABLES } from '../../infra/local/tables.js';
import { DynamoLeaseStore } from '@taskflow/stream';
import { SHARD_END } from '@taskflow/stream';
import { waitFor } from './wait.js';

let cached: StackInfo | undefined;

/** The running test stack. Throws when jest was started without the global setup. */
export function stack(): StackInfo {
  if (!cached) {
    const file = process.env.TASKFLOW_STACK_FILE;
    if (!file) throw new Error('TASKFLOW_STACK_FILE is not set: run integration tests through jest (its global setup starts the local stack)');
    cached = readStackInfo(file);
  }
  return cached;
}

/** Environment variables a service would get for this stack (DATABASE_URL, KINESIS_ENDPOINT, …). */
export function testStackEnv(): Record<string, string> {
  return stackEnv(stack());
}

/**
 * An archiver's environment on the test stack: its stream, the Firehose stand-in's `archive`
 * delivery stream, its leases and dead-letter tables (createTestTables), polling without pauses.
 */
export function archiverTestEnv(o: { streamName: string; firehoseEndpoint: string; tables: Record<string, string> }): Record<string, string> {
  return {
    ...testStackEnv(),
    CHANGE_STREAM_NAME: o.streamName,
    FIREHOSE_ENDPOINT: o.firehoseEndpoint,
    FIREHOSE_DELIVERY_STREAM: 'archive',
    [tableEnvVar('leases')]: o.tables.leases!,
    [tableEnvVar('dlq')]: o.tables.dlq!,
    KINESIS_POLL_INTERVAL_MS: '20',
    KINESIS_MIN_CALL_SPACING_MS: '0',
  };
}

export function awsConfig(): AwsConfig {
  return loadAwsConfig(testStackEnv());
}

/** Clients from lib/aws.ts pointed at the stack; call .destroy() in afterAll. */
export function kinesisClient(): KinesisClient {
  return createKinesisClient(awsConfig());
}

export function dynamoClient(): DynamoDBClient {
  return createDynamoClient(awsConfig());
}

export function mqttUrl(): string {
  return stack().mqtt.tcpUrl;
}

export function mqttWsUrl(): string {
  return stack().mqtt.wsUrl;
}

/** A name unique to this call: `<prefix>_<random>`, lower-case, at most `max` characters. */
export function uniqueName(prefix: string, max = 63, separator = '_'): string {
  const suffix = randomBytes(5).toString('hex');
  const clean = prefix.toLowerCase().replace(/[^a-z0-9]+/g, separator).slice(0, max - suffix.length - 1);
  return `${clean}${separator}${suffix}`;
}

/** URL of `database` on the stack's Postgres (same user and password as the app database). */
export function databaseUrl(database: string): string {
  const url = new URL(stack().postgres.url);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

/** Template named after the migrations' checksums, so a changed migration builds a new one. */
function templateName(): string {
  const hash = createHash('sha256');
  for (const f of readMigrationFiles()) hash.update(`${f.fileName}:${f.checksum}\n`);
  return `taskflow_template_${hash.digest('hex').slice(0, 12)}`;
}

/** Any number to name the template-building lock among Postgres advisory locks. */
const TEMPLATE_LOCK_KEY = '7243101077';

/**
 * Workers race to build the template; the first builds it under an advisory lock, migrates it
 * through a staging name and only then gives it its final name, so no one copies a half-built one.
 */
async function ensureTemplate(admin: pg.Client): Promise<string> {
  const name = templateName();
  const exists = async (): Promise<boolean> => ((await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount ?? 0) > 0;
  if (await exists()) return name;
  await admin.query('SELECT pg_advisory_lock($1)', [TEMPLATE_LOCK_KEY]);
  try {
    if (await exists()) return name;
    const staging = `${name}_build`;
    await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(staging)}`);
    await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(staging)}`);
    await migrate(databaseUrl(staging));
    // The migration created capture's role (once per cluster); tests log in as it like production.
    await setRolePassword(databaseUrl(staging), REPLICATION_ROLE, LOCAL_REPLICATION_PASSWORD);
    await admin.query(`ALTER DATABASE ${admin.escapeIdentifier(staging)} RENAME TO ${admin.escapeIdentifier(name)}`);
    await admin.query(`ALTER DATABASE ${admin.escapeIdentifier(name)} IS_TEMPLATE true`);
    return name;
  } finally {
    await admin.query('SELECT pg_advisory_unlock($1)', [TEMPLATE_LOCK_KEY]);
  }
}

/** `url` logging in as capture's replication role, as capture does outside development. */
export function captureDatabaseUrl(url: string): string {
  return urlAs(url, REPLICATION_ROLE, LOCAL_REPLICATION_PASSWORD);
}

/** A brand-new database with every migration applied (a copy of a migrated template); returns its URL. */
export async function createTestDatabase(prefix: string): Promise<string> {
  const admin = new pg.Client({ connectionString: databaseUrl('postgres') });
  await admin.connect();
  try {
    const template = await ensureTemplate(admin);
    const name = uniqueName(prefix);
    await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)} TEMPLATE ${admin.escapeIdentifier(template)}`);
    return databaseUrl(name);
  } finally {
    await admin.end();
  }
}

/**
 * A brand-new database with only the migrations up to `version` applied, for a test that applies
 * the later ones itself (on a live database, under load); returns its URL.
 */
export async function createTestDatabaseUpTo(prefix: string, version: string): Promise<string> {
  const name = uniqueName(prefix);
  const admin = new pg.Client({ connectionString: databaseUrl('postgres') });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
  const dir = mkdtempSync(join(tmpdir(), 'taskflow-migrations-'));
  try {
    for (const f of readMigrationFiles()) if (BigInt(f.version) <= BigInt(version)) writeFileSync(join(dir, f.fileName), f.sql);
    await migrate(databaseUrl(name), { dir });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Capture's role exists already (roles belong to the cluster): give it the local password again.
  await setRolePassword(databaseUrl(name), REPLICATION_ROLE, LOCAL_REPLICATION_PASSWORD);
  return databaseUrl(name);
}

/** A brand-new, ACTIVE Kinesis stream; returns its name. */
export async function createTestStream(prefix: string, shardCount = 1): Promise<string> {
  const client = kinesisClient();
  try {
    const name = uniqueName(prefix, 128, '-');
    await ensureStream(client, name, shardCount);
    return name;
  } finally {
    client.destroy();
  }
}

/**
 * Fresh copies of the pipeline's DynamoDB tables (or of those named in `keys`) under unique
 * names; returns logical key -> table name, the same shape as StackInfo.dynamodb.tables.
 */
export async function createTestTables(prefix: string, keys?: readonly string[]): Promise<Record<string, string>> {
  const client = dynamoClient();
  try {
    const specs = TABLES.filter((t) => !keys || keys.includes(t.key));
    const names = await Promise.all(specs.map((t) => ensureTable(client, t, uniqueName(`${prefix}-${t.key}`, 255, '-'))));
    return Object.fromEntries(specs.map((t, i) => [t.key, names[i]!]));
  } finally {
    client.destroy();
  }
}

/** The services' table variables (DYNAMODB_TABLE_<KEY>) of tables as createTestTables names them. */
export function tableEnv(tables: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(tables).map(([key, name]) => [tableEnvVar(key), name]));
}

/**
 * A private MQTT broker (TCP + WebSocket + IoT publish route) on free ports, for tests that
 * stop/restart the broker or install authorization hooks without disturbing other test files.
 */
export function startTestBroker(hooks?: BrokerHooks): Promise<Broker> {
  return startBroker({ tcpPort: 0, wsPort: 0, ...(hooks ? { hooks } : {}) });
}

/** A fresh MQTT client id bound to `userId`, as the authorizing broker requires (lib/authz.ts canConnect). */
export function boundClientId(userId: string): string {
  return `${clientIdPrefix(userId)}${randomBytes(8).toString('hex')}`;
}

/**
 * Waits until `workers` workers of consumer `consumerName` each own an even share of the shard
 * leases in `leaseTable` (the start-up rebalancing is over), so what a test measures afterwards is
 * the steady state.
 */
export async function waitForEvenLeases(leaseTable: string, consumerName: string, workers: number, timeoutMs = 60_000): Promise<void> {
  const client = dynamoClient();
  const store = new DynamoLeaseStore(client, leaseTable, consumerName);
  let byOwner = new Map<string, number>();
  try {
    await waitFor(
      async () => {
        const leases = (await store.list()).filter((l) => l.checkpoint !== SHARD_END);
        byOwner = new Map<string, number>();
        for (const l of leases) if (l.leaseOwner) byOwner.set(l.leaseOwner, (byOwner.get(l.leaseOwner) ?? 0) + 1);
        const counts = [...byOwner.values()];
        return leases.length > 0 && byOwner.size === workers && counts.every((n) => n <= Math.ceil(leases.length / workers)) && counts.reduce((a, b) => a + b, 0) === leases.length;
      },
      () => `leases of ${consumerName} spread over ${workers} workers: ${JSON.stringify([...byOwner])}`,
      timeoutMs,
      100,
    );
  } finally {
    client.destroy();
  }
}
