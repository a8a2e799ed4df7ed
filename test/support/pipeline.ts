// The whole local pipeline for one test file: a fresh database, stream and tables, a private
// broker that authorizes like production (JWT + membership projection), capture and router (reading
// by enhanced fan-out through the stack's stand-in, as under `npm start` and in production)
// in-process (or, for benchmarks, each in its own process). Tests that need the path
// Postgres → … → MQTT → client start it here once.
import { randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type RunningCapture } from '../../capture/main.js';
import { createBrokerAuth, type BrokerAuth } from '../../infra/local/broker-auth.js';
import type { Broker } from '../../infra/local/broker.js';
import { createDynamoClient } from '../../lib/aws.js';
import { createVerifier, loadJwtConfig, signDevToken } from '../../lib/jwt.js';
import { createLogger, type Logger } from '../../lib/logger.js';
import { loadConfig as loadRouterConfig } from '../../router/config.js';
import { DynamoMembershipProjection } from '../../lib/dynamo-memberships.js';
import { startRouter, type RunningRouter } from '../../router/service.js';
import { superviseServices, type Supervisor } from '../../infra/local/supervisor.js';
import { freePort } from '../../infra/local/processes.js';
import { bundleCommands } from '../../infra/local/service-bundle.js';
import { startServiceProcess } from './service-process.js';
import { registerStreamConsumer } from '../../infra/local/fanout.js';
import { awsConfig, captureDatabaseUrl, createTestDatabase, createTestStream, createTestTables, stack, startTestBroker, tableEnv, testStackEnv, uniqueName } from './stack.js';
import { waitFor } from './wait.js';
import { startTestCapture } from './capture.js';

export interface TestPipeline {
  databaseUrl: string;
  broker: Broker;
  /** pid: with services: 'processes', the service's process (benchmarks read its CPU time). */
  capture: Pick<RunningCapture, 'metricsUrl'> & { pid?: number };
  router: Pick<RunningRouter, 'replayUrl' | 'metricsUrl'> & { pid?: number };
  /** The environment the services were configured from (stream, tables, secrets …). */
  env: Record<string, string>;
  /** A token for `userId`, signed with this pipeline's secret. */
  token(userId: string, ttlSeconds?: number): Promise<string>;
  stop(): Promise<void>;
}

export interface TestPipelineOptions {
  prefix: string;
  /** Overrides of the services' environment (e.g. ROUTER_BATCH_WINDOW_MS). */
  env?: Record<string, string>;
  /** Before capture starts, e.g. to seed rows that should not travel the pipeline. */
  beforeCapture?: (databaseUrl: string) => Promise<void>;
  logLevel?: string;
  /** Keep the services' own poll/ack/heartbeat intervals, batch window and publish rate (benchmarks) instead of the faster test settings. */
  serviceDefaults?: boolean;
  /** Shards of the change stream (default 1). */
  shards?: number;
  /**
   * 'processes': capture and router run as `taskflow capture` / `taskflow router` children, as in
   * production. 'none': the caller runs them from `env` (e.g. under the supervisor), and
   * `capture`/`router` are left empty.
   */
  services?: 'in-process' | 'processes' | 'none';
  /** With services: 'processes': their log level and every line they write (stdout and stderr). */
  serviceLog?: { level: string; onLine(service: 'capture' | 'router', line: string): void };
  /** With services: 'processes': Node arguments per service, e.g. `--cpu-prof --cpu-prof-dir=DIR` to profile it. */
  serviceNodeArgs?: { capture?: readonly string[]; router?: readonly string[] };
  /**
   * The broker's per-user connect limits. By default none that a test reaches: the benchmarks
   * connect hundreds of simulated browsers with one observer's token. The flood test sets the
   * production defaults (infra/local/broker-auth.ts DEFAULT_CONNECT_LIMITS).
   */
  connectLimits?: { ratePerSec: number; burst: number };
  /**
   * Keep the router's production per-user replay limits (router/config.ts). By default none that
   * a test reaches, for the same reason as connectLimits: one observer's token replays for
   * hundreds of simulated browsers. The flood test keeps them.
   */
  productionReplayLimits?: boolean;
  /**
   * The MQTT broker the services publish to, instead of the pipeline's own (bench:clients' private
   * Mosquitto, which has none of the pipeline broker's authorization).
   */
  mqttUrl?: string;
  /** Further service identities the broker lets publish to any topic (e.g. 'service:notifications'), besides the router's. */
  serviceUsers?: readonly string[];
  /**
   * How the router reads the stream. Default 'fanout', as in production and under `npm start`:
   * registered as the stream consumer `router` with the stack's enhanced fan-out stand-in
   * (infra/local/fanout.ts), ROUTER_READER=fanout. 'polling': GetRecords within its read budget
   * (ROUTER_POLL_INTERVAL_MS, ROUTER_MIN_CALL_SPACING_MS), for tests and benchmarks of polling.
   */
  routerReader?: 'fanout' | 'polling';
}

/** Per-user replay limits no test's one observer reaches (see productionReplayLimits). */
const UNREACHED_REPLAY_LIMITS: Record<string, string> = {
  REPLAY_RATE_PER_USER: '1000000',
  REPLAY_BURST_PER_USER: '1000000',
  REPLAY_CONCURRENCY_PER_USER: '100000',
  REPLAY_CHANGES_PER_SEC_PER_USER: '1000000000',
  REPLAY_CHANGES_BURST_PER_USER: '1000000000',
};

/** Shorter intervals than the services' defaults, so tests wait less (the polling ones matter with routerReader: 'polling'). */
const TEST_TIMINGS: Record<string, string> = {
  CAPTURE_ACK_INTERVAL_MS: '100',
  CAPTURE_HEARTBEAT_INTERVAL_MS: '300',
  ROUTER_POLL_INTERVAL_MS: '100',
  // The router's read budget gives it 2 GetRecords/s per shard (its production share beside four
  // consumers); kinesalite has no such limit, and tests keep the 5/s they ran at before the budget.
  ROUTER_MIN_CALL_SPACING_MS: '200',
  ROUTER_BATCH_WINDOW_MS: '50',
  ROUTER_PUBLISHES_PER_SECOND: '1000',
  // A router killed mid-load is re-read from its last checkpoint (at most this long ago): 3 s by
  // default, which bench:recovery measures; tests that kill one keep their replay short.
  ROUTER_CHECKPOINT_INTERVAL_MS: '1000',
};

const ROUTER_SERVICE_USER = 'service:router';

export async function startTestPipeline(options: TestPipelineOptions): Promise<TestPipeline> {
  const logger = createLogger(options.prefix, options.logLevel ?? process.env.PIPELINE_TEST_LOG ?? 'silent');
  const databaseUrl = await createTestDatabase(options.prefix.replace(/[^a-z0-9_]/gi, '_'));
  const [stream, tables] = await Promise.all([createTestStream(options.prefix, options.shards), createTestTables(options.prefix)]);
  const secret = `${options.prefix}-${randomUUID()}`;
  const env: Record<string, string> = {
    ...testStackEnv(),
    ...tableEnv(tables),
    DATABASE_URL: captureDatabaseUrl(databaseUrl),
    CHANGE_STREAM_NAME: stream,
    CAPTURE_SLOT: uniqueName(`${options.prefix}_capture`.replace(/[^a-z0-9_]/gi, '_')),
    ...(options.serviceDefaults ? {} : TEST_TIMINGS),
    ...(options.productionReplayLimits ? {} : UNREACHED_REPLAY_LIMITS),
    REPLAY_PORT: '0',
    METRICS_PORT: '0',
    JWT_SECRET: secret,
    ...options.env,
  };
  const jwt = loadJwtConfig(env);
  const membershipsClient: DynamoDBClient = createDynamoClient(awsConfig());
  const projection = new DynamoMembershipProjection(membershipsClient, tables.memberships);
  const auth: BrokerAuth = createBrokerAuth({
    verify: createVerifier(jwt),
    memberships: (userId) => projection.memberships(userId),
    serviceUserIds: [ROUTER_SERVICE_USER, ...(options.serviceUsers ?? [])],
    recheckMs: 500,
    connectLimits: options.connectLimits ?? { ratePerSec: 1e6, burst: 1e6 },
  });
  const broker = await startTestBroker(auth.hooks);
  const secretBytes = new TextEncoder().encode(secret);
  const token = (userId: string, ttlSeconds?: number) => signDevToken(secretBytes, userId, ttlSeconds ? { ttlSeconds } : {});
  env.MQTT_URL = options.mqttUrl ?? broker.tcpUrl;
  // The router's data-plane calls (DeleteConnection of revoked users) go to this broker too.
  env.IOT_DATA_ENDPOINT = broker.publishUrl;
  env.ROUTER_SERVICE_USER = ROUTER_SERVICE_USER;
  env.ROUTER_MQTT_PASSWORD = await token(ROUTER_SERVICE_USER, 24 * 3600);

  if ((options.routerReader ?? 'fanout') === 'fanout') {
    const { kinesis } = stack();
    env.ROUTER_READER = 'fanout';
    env.ROUTER_FANOUT_CONSUMER_ARN = await registerStreamConsumer(kinesis.fanOutEndpoint, kinesis.region, stream, 'router');
  }
  if (options.beforeCapture) await options.beforeCapture(databaseUrl);
  const services =
    options.services === 'none'
      ? { capture: { metricsUrl: '' }, router: { replayUrl: '', metricsUrl: '' }, stop: () => Promise.resolve() }
      : options.services === 'processes'
        ? await serviceProcesses(env, options.serviceLog, options.serviceNodeArgs)
        : await inProcessServices(env, logger);
  return {
    databaseUrl,
    broker,
    ...services,
    env,
    token,
    async stop() {
      await services.stop();
      auth.stop();
      await broker.stop().catch(() => undefined);
      membershipsClient.destroy();
    },
  };
}

type Services = Pick<TestPipeline, 'capture' | 'router' | 'stop'>;

async function inProcessServices(env: Record<string, string>, logger: Logger): Promise<Services> {
  const capture = await startTestCapture(env, logger);
  const router = await startRouter(loadRouterConfig(env), logger);
  return {
    capture,
    router,
    async stop() {
      await router.stop('graceful').catch(() => undefined);
      await capture.close().catch(() => undefined);
    },
  };
}

async function serviceProcesses(env: Record<string, string>, log?: TestPipelineOptions['serviceLog'], nodeArgs: TestPipelineOptions['serviceNodeArgs'] = {}): Promise<Services> {
  const logOptions = (service: 'capture' | 'router') => ({ nodeArgs: nodeArgs[service] ?? [], ...(log ? { logLevel: log.level, onLine: (line: string) => log.onLine(service, line) } : {}) });
  const capture = await startServiceProcess('capture', env, ['metrics endpoint', 'streaming from the slot'], logOptions('capture'));
  const router = await startServiceProcess('router', env, ['router started'], logOptions('router')).catch(async (err: unknown) => {
    await capture.stop();
    throw err;
  });
  const started = router.entries['router started']!;
  return {
    capture: { metricsUrl: String(capture.entries['metrics endpoint']!.url), pid: capture.child.pid! },
    router: { replayUrl: String(started.replay), metricsUrl: String(started.metrics), pid: router.child.pid! },
    async stop() {
      await router.stop();
      await capture.stop();
    },
  };
}

/** A user outside the workload's user pool (no workload membership change touches it), viewer of every workspace; returns its token. */
export async function grantObserver(databaseUrl: string, workspaceIds: string[], token: (userId: string, ttlSeconds?: number) => Promise<string>): Promise<string> {
  const observer = randomUUID();
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    await db.query('INSERT INTO users (id, email, display_name) VALUES ($1, $2, $3)', [observer, `${observer}@example.test`, 'bench observer']);
    for (const ws of workspaceIds) {
      await db.query("INSERT INTO memberships (id, workspace_id, user_id, project_id, role) VALUES ($1, $2, $3, NULL, 'viewer')", [randomUUID(), ws, observer]);
    }
  } finally {
    await db.end();
  }
  return token(observer, 3600);
}

/**
 * grantObserver, then waits until the router's replay API admits the observer on each workspace's
 * first project — its membership projection knows them — since a subscription made earlier would
 * be refused. Returns the observer's token.
 */
export async function grantObserverKnownToRouter(
  p: { databaseUrl: string; replayUrl: string; token: (userId: string, ttlSeconds?: number) => Promise<string> },
  workspaces: readonly { id: string; projects: readonly string[] }[],
  timeoutMs?: number,
): Promise<string> {
  const token = await grantObserver(p.databaseUrl, workspaces.map((w) => w.id), p.token);
  const probes = workspaces.map((w) => `${p.replayUrl}/v1/workspaces/${w.id}/projects/${w.projects[0]}/changes?after=0&limit=1`);
  await waitFor(
    async () => (await Promise.all(probes.map((u) => fetch(u, { headers: { authorization: `Bearer ${token}` } }).catch(() => undefined)))).every((r) => r?.status === 200),
    () => 'the router to learn the observer memberships',
    timeoutMs,
  );
  return token;
}

export type PipelineService = 'capture' | 'router';

export interface ServiceLogLine {
  /** The instance's supervisor name and stable id, e.g. capture-0. */
  instance: string;
  service: PipelineService;
  /** The log entry's own time (epoch ms), or when the line arrived if it is not JSON. */
  at: number;
  msg: string;
  entry?: Record<string, unknown>;
}

export interface SupervisedPipelineServices {
  /** Processes by instance name (capture-0, router-0, …). */
  supervisor: Supervisor;
  /** Every line the instances logged, in arrival order. */
  lines: ServiceLogLine[];
  /** The first router's replay API (a fixed port, so it stays put across restarts). */
  replayUrl: string;
  /** Each instance's metrics server (/metrics, /healthz, /readyz), e.g. http://127.0.0.1:9400. */
  metricsBase: Record<string, string>;
  /** Resolves once every instance has started (a standby capture: once it waits for the slot). */
  ready(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Capture and router of a `services: 'none'` pipeline as `taskflow dev` runs them: each instance
 * its own process under the supervisor, restarted when it dies, with a stable instance id
 * (capture-0, router-0; with more instances capture-1 is a standby on the slot and router-1 a
 * peer sharing the shards) and fixed ports.
 */
export async function supervisePipelineServices(
  pipeline: Pick<TestPipeline, 'env'>,
  options: { captures?: number; routers?: number; onWarning?: (instance: string, line: string) => void } = {},
): Promise<SupervisedPipelineServices> {
  const common = { ...process.env, ...pipeline.env, NODE_OPTIONS: '', LOG_LEVEL: 'info' };
  const instances: { name: string; service: PipelineService; env: Record<string, string> }[] = [];
  let replayUrl = '';
  for (let i = 0; i < (options.captures ?? 1); i++) {
    instances.push({ name: `capture-${i}`, service: 'capture', env: { CAPTURE_INSTANCE_ID: `capture-${i}`, METRICS_PORT: String(await freePort()) } });
  }
  for (let i = 0; i < (options.routers ?? 1); i++) {
    const replay = await freePort();
    if (i === 0) replayUrl = `http://127.0.0.1:${replay}`;
    instances.push({ name: `router-${i}`, service: 'router', env: { KINESIS_WORKER_ID: `router-${i}`, REPLAY_PORT: String(replay), METRICS_PORT: String(await freePort()) } });
  }
  const metricsBase = Object.fromEntries(instances.map((i) => [i.name, `http://127.0.0.1:${i.env.METRICS_PORT}`]));
  const serviceOf = new Map(instances.map((i) => [i.name, i.service]));
  const lines: ServiceLogLine[] = [];
  // As `taskflow dev` would: from a bundle built once, so a restart does not pay tsx again.
  const bundle = await bundleCommands(ROOT, [...new Set(instances.map((i) => i.service))]);
  const supervisor = superviseServices(
    instances.map(({ name, service, env }) => ({ name, command: process.execPath, args: bundle.args([service]), cwd: ROOT, env: { ...common, ...env } })),
    (line) => {
      const m = /^\[([a-z]+-\d+)\] (.*)$/.exec(line);
      const service = m ? serviceOf.get(m[1]!) : undefined;
      if (!m || !service) return;
      let entry: Record<string, unknown> | undefined;
      try {
        entry = JSON.parse(m[2]!) as Record<string, unknown>;
      } catch {
        entry = undefined;
      }
      if (entry && typeof entry.level === 'number' && entry.level >= 40) options.onWarning?.(m[1]!, m[2]!);
      lines.push({ instance: m[1]!, service, at: typeof entry?.time === 'number' ? entry.time : Date.now(), msg: typeof entry?.msg === 'string' ? entry.msg : m[2]!, ...(entry ? { entry } : {}) });
    },
  );
  const started = (name: string, service: PipelineService) =>
    lines.some((l) => l.instance === name && (service === 'router' ? l.msg === 'router started' : l.msg === 'streaming from the slot' || l.msg.startsWith('standby')));
  return {
    supervisor,
    lines,
    replayUrl,
    metricsBase,
    // The first capture is started first and so, in practice, the active one.
    async ready(timeoutMs = 90_000) {
      // On a timeout, name the instances still starting and what each logged last, so a CI failure says which one hung.
      const pending = () =>
        instances
          .filter((i) => !started(i.name, i.service))
          .map((i) => `${i.name} (last: ${lines.findLast((l) => l.instance === i.name)?.msg.slice(0, 200) ?? 'nothing logged'})`);
      await waitFor(
        () => instances.every((i) => started(i.name, i.service)) && lines.some((l) => l.msg === 'streaming from the slot'),
        () => `every capture and router instance to start; not started: ${pending().join('; ') || 'none, but no capture streams from the slot'}`,
        timeoutMs,
      );
    },
    async stop() {
      await supervisor.stop();
      bundle.remove();
    },
  };
}
