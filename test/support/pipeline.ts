// The whole local pipeline for one test file: a fresh database, stream and tables, a private
// broker that authorizes like production (JWT + membership projection), capture and router
// in-process (or, for benchmarks, each in its own process). Tests that need the path
// Postgres → … → MQTT → client start it here once.
import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { loadConfig as loadCaptureConfig } from '../../capture/config.js';
import { startCapture, type RunningCapture } from '../../capture/main.js';
import { createBrokerAuth, type BrokerAuth } from '../../infra/local/broker-auth.js';
import type { Broker } from '../../infra/local/broker.js';
import { createDynamoClient } from '../../lib/aws.js';
import { createVerifier, loadJwtConfig, signDevToken } from '../../lib/jwt.js';
import { createLogger, type Logger } from '../../lib/logger.js';
import { tableEnvVar } from '../../lib/stack-info.js';
import { loadConfig as loadRouterConfig } from '../../router/config.js';
import { DynamoMembershipProjection } from '../../router/memberships.js';
import { startRouter, type RunningRouter } from '../../router/service.js';
import { startServiceProcess } from './service-process.js';
import { awsConfig, createTestDatabase, createTestStream, createTestTables, startTestBroker, testStackEnv, uniqueName } from './stack.js';

export interface TestPipeline {
  databaseUrl: string;
  broker: Broker;
  capture: Pick<RunningCapture, 'metricsUrl'>;
  router: Pick<RunningRouter, 'replayUrl' | 'metricsUrl'>;
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
  /** 'processes': capture and router run as `taskflow capture` / `taskflow router` children, as in production. */
  services?: 'in-process' | 'processes';
}

/** Shorter intervals than the services' defaults, so tests wait less. */
const TEST_TIMINGS: Record<string, string> = {
  CAPTURE_ACK_INTERVAL_MS: '100',
  CAPTURE_HEARTBEAT_INTERVAL_MS: '300',
  ROUTER_POLL_INTERVAL_MS: '100',
  ROUTER_BATCH_WINDOW_MS: '50',
  ROUTER_PUBLISHES_PER_SECOND: '1000',
};

const ROUTER_SERVICE_USER = 'service:router';

export async function startTestPipeline(options: TestPipelineOptions): Promise<TestPipeline> {
  const logger = createLogger(options.prefix, options.logLevel ?? process.env.PIPELINE_TEST_LOG ?? 'silent');
  const databaseUrl = await createTestDatabase(options.prefix.replace(/[^a-z0-9_]/gi, '_'));
  const [stream, tables] = await Promise.all([createTestStream(options.prefix, options.shards), createTestTables(options.prefix)]);
  const secret = `${options.prefix}-${randomUUID()}`;
  const env: Record<string, string> = {
    ...testStackEnv(),
    ...Object.fromEntries(Object.entries(tables).map(([key, name]) => [tableEnvVar(key), name])),
    DATABASE_URL: databaseUrl,
    CHANGE_STREAM_NAME: stream,
    CAPTURE_SLOT: uniqueName(`${options.prefix}_capture`.replace(/[^a-z0-9_]/gi, '_')),
    ...(options.serviceDefaults ? {} : TEST_TIMINGS),
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
    serviceUserIds: [ROUTER_SERVICE_USER],
    recheckMs: 500,
  });
  const broker = await startTestBroker(auth.hooks);
  const secretBytes = new TextEncoder().encode(secret);
  const token = (userId: string, ttlSeconds?: number) => signDevToken(secretBytes, userId, ttlSeconds ? { ttlSeconds } : {});
  env.MQTT_URL = broker.tcpUrl;
  // The router's data-plane calls (DeleteConnection of revoked users) go to this broker too.
  env.IOT_DATA_ENDPOINT = broker.publishUrl;
  env.ROUTER_SERVICE_USER = ROUTER_SERVICE_USER;
  env.ROUTER_MQTT_PASSWORD = await token(ROUTER_SERVICE_USER, 24 * 3600);

  if (options.beforeCapture) await options.beforeCapture(databaseUrl);
  const services = options.services === 'processes' ? await serviceProcesses(env) : await inProcessServices(env, logger);
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
  const capture = await startCapture(loadCaptureConfig(env), logger);
  void capture.service.start();
  await capture.service.ready;
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

async function serviceProcesses(env: Record<string, string>): Promise<Services> {
  const capture = await startServiceProcess('capture', env, ['metrics endpoint', 'streaming from the slot']);
  const router = await startServiceProcess('router', env, ['router started']).catch(async (err: unknown) => {
    await capture.stop();
    throw err;
  });
  const started = router.entries['router started']!;
  return {
    capture: { metricsUrl: String(capture.entries['metrics endpoint']!.url) },
    router: { replayUrl: String(started.replay), metricsUrl: String(started.metrics) },
    async stop() {
      await router.stop();
      await capture.stop();
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function waitFor(condition: () => boolean | Promise<boolean>, what: () => string, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await sleep(100);
  }
}
