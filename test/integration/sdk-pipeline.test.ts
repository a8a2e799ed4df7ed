// The web SDK at the end of the whole local pipeline: Postgres → capture → Kinesis → router →
// MQTT (a private aedes broker) and the router's replay API. While the workload generator
// commits, SDK subscribers have their sockets cut several times and the broker restarts; each
// must end up having seen exactly its project's committed history, once, in commit order
// (truth: a test_decoding slot, test/support/history.ts).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { type RunningCapture } from '../../capture/main.js';
import { runWorkload, setupWorkloadTenants } from '../../db/workload.js';
import { signDevToken } from '../../lib/jwt.js';
import { createLogger } from '../../lib/logger.js';
import { tableEnvVar } from '../../lib/config.js';
import { loadConfig as loadRouterConfig } from '../../router/config.js';
import { startRouter, type RunningRouter } from '../../router/service.js';
import type { Broker } from '../../infra/local/broker.js';
import { createClient, type Change, type RealtimeClient, type Status } from '@taskflow/realtime';
import { TcpProxy } from '../../clients/web-sdk/test/tcp-proxy.js';
import { compareHistory, startHistoryRecorder, type HistoryRecorder } from '../support/history.js';
import { sleep, waitFor } from '../support/wait.js';
import { captureDatabaseUrl, createTestDatabase, createTestStream, createTestTables, startTestBroker, testStackEnv, uniqueName } from '../support/stack.js';
import { startTestCapture } from '../support/capture.js';

const JWT_SECRET = `sdk-pipeline-${randomUUID()}`;
const quiet = createLogger('sdk-pipeline', process.env.SDK_TEST_LOG ?? 'silent');

let dbUrl: string;
let broker: Broker;
let proxy: TcpProxy;
let history: HistoryRecorder;
let capture: RunningCapture;
let router: RunningRouter;
let workspaceId: string;
let projects: string[];
let token: string;
const clients: RealtimeClient[] = [];
const seed = `sdk-pipeline-${randomUUID()}`;


beforeAll(async () => {
  dbUrl = await createTestDatabase('sdk_pipeline');
  const stream = await createTestStream('sdk-pipeline');
  const tables = await createTestTables('sdk-pipeline');
  broker = await startTestBroker();
  proxy = await new TcpProxy({ host: '127.0.0.1', port: Number(new URL(broker.wsUrl).port) }).start();
  history = await startHistoryRecorder(dbUrl, { slotName: uniqueName('sdk_truth') });
  const env = {
    ...testStackEnv(),
    ...Object.fromEntries(Object.entries(tables).map(([key, name]) => [tableEnvVar(key), name])),
    DATABASE_URL: captureDatabaseUrl(dbUrl),
    CHANGE_STREAM_NAME: stream,
    CAPTURE_SLOT: uniqueName('sdk_capture'),
    CAPTURE_ACK_INTERVAL_MS: '100',
    CAPTURE_HEARTBEAT_INTERVAL_MS: '300',
    MQTT_URL: broker.tcpUrl,
    ROUTER_POLL_INTERVAL_MS: '100',
    ROUTER_BATCH_WINDOW_MS: '50',
    ROUTER_PUBLISHES_PER_SECOND: '1000',
    REPLAY_PORT: '0',
    METRICS_PORT: '0',
    JWT_SECRET,
  };
  capture = await startTestCapture(env, quiet);
  router = await startRouter(loadRouterConfig(env), quiet);

  // Tenants after capture started, so their memberships reach the router's projection.
  const tenants = await setupWorkloadTenants(dbUrl, { workspaces: 1, projectsPerWorkspace: 2, seed });
  workspaceId = tenants.workspaces[0]!.id;
  projects = tenants.workspaces[0]!.projects;
  // An observer outside the workload's user pool, so no membership change of the workload revokes it.
  const observer = randomUUID();
  const db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  await db.query('INSERT INTO users (id, email, display_name) VALUES ($1, $2, $3)', [observer, `${observer}@example.test`, 'SDK observer']);
  await db.query("INSERT INTO memberships (id, workspace_id, user_id, project_id, role) VALUES ($1, $2, $3, NULL, 'viewer')", [randomUUID(), workspaceId, observer]);
  await db.end();
  token = await signDevToken(new TextEncoder().encode(JWT_SECRET), observer);
  // Subscribing before the router's projection knows the membership would be refused (403).
  await waitFor(
    async () => (await fetch(`${router.replayUrl}/v1/workspaces/${workspaceId}/projects/${projects[0]}/changes?after=0&limit=1`, { headers: { authorization: `Bearer ${token}` } })).status === 200,
    () => 'the router to learn the observer membership',
  );
}, 90_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await router?.stop('graceful');
  await capture?.close();
  await history?.stop();
  await proxy?.close();
  await broker?.stop();
});

class Seen {
  changes: Change[] = [];
  statuses: Status[] = [];
  resyncs = 0;
  handlers = {
    fromSeq: 1,
    onChange: (c: Change) => this.changes.push(c),
    onResync: () => (this.resyncs += 1),
    onStatus: (s: Status) => this.statuses.push(s),
  };
  ids(): string[] {
    return this.changes.map((c) => (c.mode === 'full' ? c.event.id : c.id));
  }
}

describe('web SDK through the whole local pipeline', () => {
  it('each subscriber sees exactly its project committed history while the workload runs, through socket cuts and a broker restart', async () => {
    const subscribers: { project: string; seen: Seen }[] = [];
    const debugLog: string[] = [];
    for (let i = 0; i < 2; i += 1) {
      const client = createClient({
        url: `ws://127.0.0.1:${proxy.port}/mqtt`,
        token,
        replayUrl: router.replayUrl,
        backoff: { baseMs: 100, maxMs: 1000 },
        debug: (message, fields) => debugLog.push(`${new Date().toISOString().slice(11, 23)} client${i} ${message} ${JSON.stringify(fields ?? {})}`),
      });
      clients.push(client);
      for (const project of projects) {
        const seen = new Seen();
        client.subscribeProject(workspaceId, project, seen.handlers);
        subscribers.push({ project, seen });
      }
    }

    const workload = runWorkload({ databaseUrl: dbUrl, ratePerSec: 40, durationMs: 6000, workspaces: 1, projectsPerWorkspace: 2, seed, concurrency: 2 });
    // Each disruption hits live subscriptions (so each shows as one more 'offline').
    // A timeout names the stuck subscriptions and ends with the SDK's own account of events.
    const allLive = () =>
      waitFor(
        () => subscribers.every(({ seen }) => seen.statuses.at(-1) === 'live'),
        () => `all live again: ${subscribers.map(({ seen }) => seen.statuses.slice(-4).join('>')).join(' | ')}\nSDK debug log (last 60):\n${debugLog.slice(-60).join('\n')}`,
        15_000,
      );
    // The sleeps are the disruption schedule (changes flow between them), not waits: allLive() is the condition.
    for (let cut = 0; cut < 3; cut += 1) {
      await sleep(1000);
      await allLive();
      proxy.cut();
    }
    await sleep(800);
    await allLive();
    await broker.restart();
    await sleep(1000);
    await allLive();
    proxy.cut();
    const stats = await workload;

    const truth = await history.collect();
    const truthOf = (project: string) => truth.filter((e) => e.projectId === project);
    await waitFor(
      () => subscribers.every(({ project, seen }) => seen.changes.length >= truthOf(project).length),
      () => `delivery: ${subscribers.map(({ project, seen }) => `${seen.changes.length}/${truthOf(project).length}`).join(', ')}`,
    );
    await sleep(500); // asserting that nothing happens: anything extra (a duplicate) would show up now

    const check = (): void => {
      for (const { project, seen } of subscribers) {
        const expected = truthOf(project);
        const comparison = compareHistory(expected, seen.ids().map((id) => ({ id, workspaceid: workspaceId, projectid: project })));
        expect(comparison).toMatchObject({ lost: [], duplicated: [], outOfOrderByProject: [], unexpected: [] });
        expect(seen.ids()).toEqual(expected.map((e) => e.id));
        expect(seen.changes.map((c) => c.seq)).toEqual(expected.map((_, i) => i + 1));
        expect(seen.resyncs).toBe(0);
      }
    };
    check();
    for (const { seen } of subscribers) expect(seen.statuses.filter((st) => st === 'offline').length).toBeGreaterThanOrEqual(5);

    // After all that, the live path works without any help from a reconnect: one more commit.
    const before = subscribers.map(({ seen }) => seen.changes.length);
    const db = new pg.Client({ connectionString: dbUrl });
    await db.connect();
    const started = Date.now();
    await db.query("UPDATE tasks SET title = title || '!' WHERE id = (SELECT id FROM tasks WHERE project_id = $1 LIMIT 1)", [projects[0]]);
    await db.end();
    await waitFor(
      () => subscribers.every(({ project, seen }, i) => project !== projects[0] || seen.changes.length === before[i]! + 1),
      () => 'the last change',
      10_000,
    );
    const lastChangeMs = Date.now() - started;
    truth.push(...(await history.collect()).slice(truth.length));
    check();
    console.log(
      `sdk pipeline: ${stats.committedTransactions} transactions, ${truth.length} row changes committed; ` +
        `${subscribers.length} subscriptions each saw exactly their project's history through 4 socket cuts and a broker restart; ` +
        `a final SQL update reached the subscribers in ${lastChangeMs} ms`,
    );
  }, 120_000);
});
