// `taskflow dev` (= `npm start`): the whole pipeline on the embedded local stack. Starts the
// engines on their dev ports with data under a per-checkout directory (reused by the next run),
// applies migrations, seeds the demo, starts every pipeline service that exists, prints where
// everything listens and writes it to .taskflow/stack.json. Ctrl-C stops services, then engines.
//
//   taskflow dev [--data-dir DIR] [--state-file PATH] [--free-ports] [--reset] [--shards N]
//   taskflow dev token --user USER_ID [--ttl SECONDS]    a dev JWT for the local broker and replay API
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createHash } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { backfillDueAt, needsDueAtBackfill } from '../../db/backfill.js';
import { migrate } from '../../db/migrate.js';
import { REPLICATION_ROLE, setRolePassword, urlAs } from '../../db/roles.js';
import { seedDemo } from '../../db/seed.js';
import { createBrokerAuth, type BrokerAuth } from '../../infra/local/broker-auth.js';
import { registerStreamConsumer } from '../../infra/local/fanout.js';
import { untilStopRequested, writeStateFile } from '../../infra/local/lifecycle.js';
import { DEV_HTTP_PORTS, EPHEMERAL_PORTS } from '../../infra/local/ports.js';
import { LOCAL_REPLICATION_PASSWORD } from '../../infra/local/postgres.js';
import { freePort } from '../../infra/local/processes.js';
import { DEFAULT_SHARD_COUNT, describeStack, startStack } from '../../infra/local/stack.js';
import { superviseServices, type ServiceSpec } from '../../infra/local/supervisor.js';
import { prometheusAuthorizerMetrics } from '../../lib/authorizer-metrics.js';
import { createDynamoClient } from '../../lib/aws.js';
import { createRegistry, serveMetrics } from '../../lib/metrics.js';
import { int } from '../../lib/config.js';
import { DEVELOPMENT, ENV_VAR } from '../../lib/dev-mode.js';
import { createVerifier, DEV_SECRET_FILE, loadJwtConfig, loadOrCreateDevSecret, printDevToken, signDevToken } from '../../lib/jwt.js';
import { DEV_KEK_FILE } from '../../lib/subject-keys.js';
import { stackEnv, type StackInfo } from '../../lib/stack-info.js';
// The launcher knows the services (never the other way round): the broker's membership policy
// reads the projection the router maintains.
import { DynamoMembershipProjection } from '../../lib/dynamo-memberships.js';
import { DEV_AUDIT_KEY_FILE } from '../../audit/config.js';
import type { Command } from '../command.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

type Endpoint = keyof typeof DEV_HTTP_PORTS;

interface ServiceDef {
  /** Runs as `taskflow <name>`, or as `taskflow <command…>` when given. */
  name: string;
  command?: readonly string[];
  /** HTTP endpoints it serves: endpoint -> the env var that tells the service its port. */
  serves?: Partial<Record<Endpoint, string>>;
  /** Endpoints it cannot run without: it starts only when some available service serves them. */
  needs?: Endpoint[];
  /** Exists only for a laptop (no production workload, no IAM role). */
  developmentOnly?: true;
  /**
   * Reads the stream by enhanced fan-out as in production (infra/aws/workloads.ts, held equal by
   * infra/aws/iam.test.ts): registered as this stream consumer with the stack's stand-in, reading
   * with its `<settings>_READER=fanout` and `<settings>_FANOUT_CONSUMER_ARN`.
   */
  fanOut?: { consumer: string; settings: 'ROUTER' | 'KINESIS' };
  /** Extra environment, e.g. its service credential for the broker. */
  env?: (ctx: { serviceToken(userId: string): Promise<string>; dataDir: string; replicationUrl: string }) => Promise<Record<string, string>>;
}

/**
 * The services `taskflow dev` runs, in start order. A service starts only once its command
 * exists (cli/commands/<name>.ts), so this list can name services before they are written.
 * Every service also gets <ENDPOINT>_URL of every endpoint served (e.g. REPLAY_URL), and each
 * endpoint is listed in StackInfo.http.
 */
const SERVICES: readonly ServiceDef[] = [
  // Stable instance ids, as a StatefulSet pod keeps its name: a restarted capture terminates the
  // walsender its predecessor left on the slot, a restarted router takes its leases back at once.
  // Capture runs as the replication role, as in production (db/migrations/0004_replication_role.sql).
  { name: 'capture', serves: { 'capture-metrics': 'METRICS_PORT' }, env: (ctx) => Promise.resolve({ CAPTURE_INSTANCE_ID: 'capture-0', DATABASE_URL: ctx.replicationUrl }) },
  {
    name: 'router',
    serves: { replay: 'REPLAY_PORT', 'router-metrics': 'METRICS_PORT' },
    fanOut: { consumer: 'router', settings: 'ROUTER' },
    // The broker lets only the router's service identity publish (infra/local/broker-auth.ts).
    env: async (ctx) => ({ KINESIS_WORKER_ID: 'router-0', ROUTER_MQTT_PASSWORD: await ctx.serviceToken(ROUTER_SERVICE_USER) }),
  },
  // Its index is one SQLite file under the stack's data dir, kept like the engines' data.
  {
    name: 'search',
    serves: { search: 'SEARCH_PORT', 'search-metrics': 'METRICS_PORT' },
    env: (ctx) => Promise.resolve({ KINESIS_WORKER_ID: 'search-0', SEARCH_DB_PATH: searchDbPath(ctx.dataDir) }),
  },
  // Publishes on the users' topics through the broker, as the router does on the projects'.
  {
    name: 'notifications',
    serves: { notifications: 'NOTIFICATIONS_PORT', 'notifications-metrics': 'METRICS_PORT' },
    fanOut: { consumer: 'notifications', settings: 'KINESIS' },
    env: async (ctx) => ({ KINESIS_WORKER_ID: 'notifications-0', NOTIFICATIONS_MQTT_PASSWORD: await ctx.serviceToken(NOTIFICATIONS_SERVICE_USER) }),
  },
  { name: 'board', serves: { board: 'BOARD_PORT' }, needs: ['replay'], developmentOnly: true },
  // A stable worker id like the router's; the pseudonym key stays on this machine (created once, 0600) like the dev JWT secret.
  { name: 'audit', serves: { 'audit-metrics': 'METRICS_PORT' }, env: () => Promise.resolve({ KINESIS_WORKER_ID: 'audit-0', AUDIT_KEY_FILE: devAuditKeyFile() }) },
  // The erasure processor; it signs no proof itself (`taskflow gdpr proof` does), it purges through the sinks' own stores.
  // Its sinks open the services' own stores, so it gets their settings too (the search index file, the audit key).
  { name: 'gdpr', serves: { 'gdpr-metrics': 'METRICS_PORT' }, env: (ctx) => Promise.resolve({ SEARCH_DB_PATH: searchDbPath(ctx.dataDir), AUDIT_KEY_FILE: devAuditKeyFile() }) },
  { name: 'analytics-archiver', command: ['analytics', 'archive'], serves: { 'archiver-metrics': 'METRICS_PORT' }, fanOut: { consumer: 'archiver', settings: 'KINESIS' } },
  // It serves the analytics API and the warehouse's erasure endpoint too: DuckDB allows one process per warehouse file.
  // gdpr finds the endpoint as WAREHOUSE_ERASURE_URL and signs its service:gdpr token with the dev JWT secret.
  { name: 'analytics-loader', command: ['analytics', 'load'], serves: { analytics: 'ANALYTICS_API_PORT', 'warehouse-erasure': 'LOADER_ERASURE_PORT', 'loader-metrics': 'METRICS_PORT' } },
];

/** The services production runs: each has an EKS workload and its own IRSA role (infra/aws/iam.test.ts holds them equal). */
export const PRODUCTION_SERVICES: readonly string[] = SERVICES.filter((s) => !s.developmentOnly).map((s) => s.name);

/** The services that read by enhanced fan-out: service -> its stream consumer and the environment naming it. */
export const FAN_OUT_READERS: Readonly<Record<string, { consumer: string; readerEnv: string; consumerArnEnv: string }>> = Object.fromEntries(
  SERVICES.flatMap((s) => (s.fanOut ? [[s.name, { consumer: s.fanOut.consumer, readerEnv: `${s.fanOut.settings}_READER`, consumerArnEnv: `${s.fanOut.settings}_FANOUT_CONSUMER_ARN` }]] : [])),
);

/** Registers the service's stream consumer with the stack's stand-in (as the stream stack does for efo_consumers) and returns its reader's environment. */
async function fanOutEnv(s: ServiceDef, info: StackInfo): Promise<Record<string, string>> {
  const reader = FAN_OUT_READERS[s.name];
  if (!reader) return {};
  const arn = await registerStreamConsumer(info.kinesis.fanOutEndpoint, info.kinesis.region, info.kinesis.streamName, reader.consumer);
  return { [reader.readerEnv]: 'fanout', [reader.consumerArnEnv]: arn };
}

const searchDbPath = (dataDir: string) => join(dataDir, 'search', 'search.db');

function devAuditKeyFile(): string {
  const path = join(ROOT, DEV_AUDIT_KEY_FILE);
  loadOrCreateDevSecret(path);
  return path;
}

const ROUTER_SERVICE_USER = 'service:router';
const NOTIFICATIONS_SERVICE_USER = 'service:notifications';
const SERVICE_TOKEN_TTL_SECONDS = 7 * 24 * 3600;

const servedBy = (s: ServiceDef): Endpoint[] => Object.keys(s.serves ?? {}) as Endpoint[];
const commandOf = (s: ServiceDef): readonly string[] => s.command ?? [s.name];
const urlEnvVar = (endpoint: string): string => `${endpoint.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_URL`;

/**
 * Per-checkout data directory outside the checkout: Postgres runs as the `postgres` OS user when
 * we are root and could not reach a checkout under /root. Hashing the path keeps two checkouts apart.
 */
export function defaultDataDir(root = ROOT): string {
  return join('/var/tmp', `taskflow-${createHash('sha256').update(root).digest('hex').slice(0, 10)}`);
}

function availableServices(): ServiceDef[] {
  const written = SERVICES.filter((s) => existsSync(join(ROOT, 'cli', 'commands', `${commandOf(s)[0]}.ts`)));
  const served = new Set(written.flatMap(servedBy));
  return written.filter((s) => {
    const missing = (s.needs ?? []).filter((endpoint) => !served.has(endpoint));
    if (missing.length) console.log(`taskflow dev: not starting ${s.name}: no service serves ${missing.join(', ')} yet`);
    return missing.length === 0;
  });
}

/** Endpoint -> port for the endpoints the available services serve. */
async function httpPorts(services: readonly ServiceDef[], free: boolean): Promise<Partial<Record<Endpoint, number>>> {
  const ports: Partial<Record<Endpoint, number>> = {};
  for (const endpoint of services.flatMap(servedBy)) ports[endpoint] = free ? await freePort() : DEV_HTTP_PORTS[endpoint];
  return ports;
}

const USAGE = `usage: taskflow dev [--data-dir DIR] [--state-file PATH] [--free-ports] [--reset] [--shards N]
       taskflow dev token --user USER_ID [--ttl SECONDS]
  Runs the whole pipeline on the local stack (npm start). Data lives in --data-dir (default
  ${defaultDataDir()}, or TASKFLOW_DATA_DIR) and is reused by the next run; --reset deletes it first.
  --free-ports  engines and services on free ports instead of the fixed dev ports`;

const SLOT_WAIT_MS = 30_000;

async function waitForLogicalSlot(url: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const deadline = Date.now() + SLOT_WAIT_MS;
    for (;;) {
      const { rowCount } = await client.query(`SELECT 1 FROM pg_replication_slots WHERE slot_type = 'logical' AND database = $1`, [database]);
      if (rowCount) return;
      if (Date.now() > deadline) {
        console.log(`taskflow dev: capture created no replication slot within ${SLOT_WAIT_MS / 1000} s; seeding anyway (the demo rows will not be on the stream)`);
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await client.end();
  }
}

async function runDev(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'data-dir': { type: 'string', default: process.env.TASKFLOW_DATA_DIR ?? defaultDataDir() },
      'state-file': { type: 'string', default: join(ROOT, '.taskflow', 'stack.json') },
      'free-ports': { type: 'boolean', default: false },
      reset: { type: 'boolean', default: false },
      shards: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const started = Date.now();
  const dataDir = resolve(values['data-dir']);
  const stateFile = resolve(values['state-file']);
  if (values.reset) {
    console.log(`taskflow dev: --reset: deleting ${dataDir}`);
    rmSync(dataDir, { recursive: true, force: true });
  }

  // Browsers and services authenticate to the broker with TaskFlow JWTs, as with IoT Core's custom
  // authorizer; subscriptions follow the membership projection the router maintains.
  const jwt = loadJwtConfig(process.env);
  let brokerAuth: BrokerAuth | undefined;
  let membershipsClient: DynamoDBClient | undefined;
  // The broker runs in this process: its authorizer's decisions and refusals (connect rate, client ids, tokens) get their own /metrics.
  const brokerRegistry = createRegistry('broker', false);
  const stack = await startStack({
    brokerHooks: (dynamodb) => {
      membershipsClient = createDynamoClient({ region: dynamodb.region, dynamodbEndpoint: dynamodb.endpoint });
      const projection = new DynamoMembershipProjection(membershipsClient, dynamodb.tables.memberships);
      brokerAuth = createBrokerAuth({
        metrics: prometheusAuthorizerMetrics(brokerRegistry),
        verify: createVerifier(jwt),
        memberships: (userId) => projection.memberships(userId),
        serviceUserIds: [ROUTER_SERVICE_USER, NOTIFICATIONS_SERVICE_USER],
        registry: brokerRegistry,
      });
      return brokerAuth.hooks;
    },
    ephemeral: false,
    dataDir,
    ...(values['free-ports'] ? { ports: EPHEMERAL_PORTS } : {}),
    ...(values.shards ? { shardCount: int({ '--shards': values.shards }, '--shards', DEFAULT_SHARD_COUNT, { min: 1, max: 64 }) } : {}),
  });
  const phases: string[] = [];
  let phaseStart = started;
  const phaseDone = (name: string): void => {
    phases.push(`${name} ${((Date.now() - phaseStart) / 1000).toFixed(1)} s`);
    phaseStart = Date.now();
  };
  phaseDone('engines');
  let services: ReturnType<typeof superviseServices> | undefined;
  let brokerMetrics: Awaited<ReturnType<typeof serveMetrics>> | undefined;
  try {
    const { info } = stack;
    // A local database of an earlier release may hold tasks that the contract migration 0007 wants
    // backfilled first: do the whole change here (docs/SCHEMA-CHANGES.md), as an operator would.
    const applied = await migrate(info.postgres.url).catch(async (err: unknown) => {
      if (!needsDueAtBackfill(err)) throw err;
      await backfillDueAt(info.postgres.url);
      return migrate(info.postgres.url);
    });
    await setRolePassword(info.postgres.url, REPLICATION_ROLE, LOCAL_REPLICATION_PASSWORD);
    phaseDone('migrations');
    const available = availableServices();
    const ports = await httpPorts(available, values['free-ports']);
    for (const [endpoint, port] of Object.entries(ports)) info.http[endpoint] = `http://127.0.0.1:${port}`;
    brokerMetrics = await serveMetrics(brokerRegistry, { port: values['free-ports'] ? 0 : DEV_HTTP_PORTS['broker-metrics'], host: '127.0.0.1' });
    info.http['broker-metrics'] = brokerMetrics.url.replace(/\/metrics$/, '');
    const urls = Object.fromEntries(Object.entries(info.http).map(([endpoint, url]) => [urlEnvVar(endpoint), url]));
    const ctx = {
      dataDir,
      replicationUrl: urlAs(info.postgres.url, REPLICATION_ROLE, LOCAL_REPLICATION_PASSWORD),
      serviceToken: async (userId: string): Promise<string> => {
        if (jwt.kind !== 'hs256') throw new Error('taskflow dev signs service tokens with the local HS256 secret: unset JWT_JWKS_URL');
        return signDevToken(jwt.secret, userId, { ttlSeconds: SERVICE_TOKEN_TTL_SECONDS, issuer: jwt.issuer, audience: jwt.audience });
      },
    };
    const specs: ServiceSpec[] = await Promise.all(
      available.map(async (s) => ({
        name: s.name,
        command: process.execPath,
        args: [join(ROOT, 'bin', 'taskflow.js'), ...commandOf(s)],
        env: {
          ...process.env,
          ...stackEnv(info),
          ...urls,
          ...Object.fromEntries(Object.entries(s.serves ?? {}).map(([endpoint, envVar]) => [envVar, String(ports[endpoint as Endpoint])])),
          ...(await fanOutEnv(s, info)),
          ...(await s.env?.(ctx)),
        },
        cwd: ROOT,
      })),
    );
    services = superviseServices(specs);
    // The demo rows should travel the pipeline like any change (the router's membership projection
    // is built from the stream): on a new database, seed once capture's slot exists.
    if (available.some((s) => s.name === 'capture')) {
      await waitForLogicalSlot(info.postgres.url, info.postgres.database);
      phaseDone('capture slot');
    }
    const seeded = await seedDemo(info.postgres.url);
    phaseDone('seed');
    writeStateFile(stateFile, info);

    console.log(`\ntaskflow dev ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${phases.join(', ')}; pid ${process.pid})`);
    for (const line of describeStack(info)) console.log(`  ${line}`);
    console.log(`  database        ${stack.freshDatabase ? 'new' : 'reused'}; migrations applied now: ${applied.length ? applied.join(', ') : 'none'}; demo rows inserted: ${seeded}`);
    console.log(`  services        ${specs.length ? specs.map((s) => s.name).join(', ') : '(none written yet)'}`);
    console.log(`  state           ${stateFile}`);
    console.log('Ctrl-C stops everything.\n');

    const reason = await untilStopRequested();
    console.log(`taskflow dev stopping (${reason})`);
  } finally {
    rmSync(stateFile, { force: true });
    await services?.stop();
    brokerMetrics?.server.close();
    await stack.stop();
    brokerAuth?.stop();
    membershipsClient?.destroy();
  }
  console.log('taskflow dev stopped');
  return 0;
}

export const command: Command = {
  summary: 'run the whole pipeline on the embedded local stack (npm start); `dev token --user U` prints a dev JWT',
  subcommands: ['token'],
  async run(argv) {
    // The explicit development mode (lib/dev-mode.ts) for this process and every service it starts.
    process.env[ENV_VAR] = DEVELOPMENT;
    // One dev JWT secret per checkout, whatever directory dev was started from (services run in ROOT).
    process.env.JWT_SECRET_FILE ??= join(ROOT, DEV_SECRET_FILE);
    // Likewise one local key-encryption key for the subject keys (crypto-shredding).
    process.env.SUBJECT_KEYS_LOCAL_KEK_FILE ??= join(ROOT, DEV_KEK_FILE);
    if (argv[0] === 'token') return printDevToken(argv.slice(1));
    return runDev(argv);
  },
};
