// bench:broker — one broker node (`taskflow broker`, its own process as in production) holding
// BENCH_BROKER_CONNECTIONS MQTT-over-WebSocket connections of as many users, each subscribed to
// BENCH_BROKER_SUBSCRIPTIONS project topics, against an ephemeral stack (dynalite holds the
// membership projection the node authorizes from). Per run, a fresh node: its memory idle and
// holding the connections (RSS from /proc, V8 heap from its /metrics), its CPU holding them (the
// membership re-checks that fall due in that window included — each connection once per
// BROKER_RECHECK_MS at its own phase — with the DynamoDB reads they make counted from the node's
// taskflow_aws_requests_total), and its CPU per delivery
// while a router-like publisher sends to the project topics at a fixed rate (every delivery
// counted by the clients). The clients live in child processes (broker-clients.ts).
import type { ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import mqtt from 'mqtt';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DEFAULT_ROUTER_SERVICE_USER, projectTopicOf } from '../../lib/authz.js';
import { DynamoMembershipProjection } from '../../lib/dynamo-memberships.js';
import { signDevToken } from '../../lib/jwt.js';
import { decodeEvent, type RouterEvent } from '../../router/event.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { validateEvent } from '../../schemas/validate.js';
import startStackProcess from '../setup/global-setup.mjs';
import stopStackProcess from '../setup/global-teardown.mjs';
import { startServiceProcess, type ServiceProcess } from '../support/service-process.js';
import { createTestTables, dynamoClient, testStackEnv } from '../support/stack.js';
import { sleep, waitFor } from '../support/wait.js';
import type { BrokerClientCommand, BrokerClientReport, BrokerClientUser } from './broker-clients.js';
import { forkTsxProcess } from './fork.js';
import { benchParam, cpuSeconds, median, rssKb, writeBenchResult } from './report.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const PARAMS = {
  connections: benchParam('BENCH_BROKER_CONNECTIONS', 10_000),
  subscriptionsPerConnection: benchParam('BENCH_BROKER_SUBSCRIPTIONS', 50),
  /** Users (connections) per workspace: each publish to one of its projects goes to this many. */
  usersPerWorkspace: benchParam('BENCH_BROKER_USERS_PER_WORKSPACE', 10),
  publishesPerS: benchParam('BENCH_BROKER_PUBLISH_RATE', 200),
  payloadBytes: benchParam('BENCH_BROKER_PAYLOAD_BYTES', 100),
  clientProcesses: benchParam('BENCH_BROKER_CLIENT_PROCESSES', 4),
  /** Between two connects of one client process. */
  connectSpacingMs: benchParam('BENCH_BROKER_CONNECT_SPACING_MS', 20),
  idleSeconds: benchParam('BENCH_BROKER_IDLE_SECONDS', 10),
  settleSeconds: benchParam('BENCH_BROKER_SETTLE_SECONDS', 10),
  holdSeconds: benchParam('BENCH_BROKER_HOLD_SECONDS', 20),
  publishSeconds: benchParam('BENCH_BROKER_PUBLISH_SECONDS', 20),
  runs: benchParam('BENCH_BROKER_RUNS', 3),
};
/** The node's BROKER_RECHECK_MS: unset, its default (what the deployment runs). */
const RECHECK_MS = process.env.BENCH_BROKER_RECHECK_MS;
const SECRET = 'bench-broker-secret-of-at-least-32-bytes';
const SAMPLE_MS = 1000;

const workspaceOf = (w: number) => `11111111-1111-4111-8111-${w.toString(16).padStart(12, '0')}`;
const projectOf = (p: number) => `22222222-2222-4222-8222-${p.toString(16).padStart(12, '0')}`;
const userOf = (u: number) => `66666666-6666-4666-8666-${u.toString(16).padStart(12, '0')}`;

function routerEvent(e: object): RouterEvent {
  const d = decodeEvent(Buffer.from(JSON.stringify(e)), validateEvent);
  if (!d.ok) throw new Error(`${d.reason}: ${d.message}`);
  return d.event;
}

/** Every user a workspace-wide member of its workspace (one item each, as the router's projection writes it). */
async function writeMemberships(dynamo: DynamoDBClient, table: string, users: readonly BrokerClientUser[]): Promise<void> {
  const projection = new DynamoMembershipProjection(dynamo, table);
  for (let i = 0; i < users.length; i += 200) {
    await projection.apply(
      users.slice(i, i + 200).map((u, j) =>
        routerEvent(sampleEvent('membership.created', { workspaceId: u.workspaceId, projectId: null, userId: u.userId, entityId: `55555555-5555-4555-8555-${(i + j).toString(16).padStart(12, '0')}`, commitLsn: 0x100n + BigInt(i + j) })),
      ),
    );
  }
}

/** The node's metrics: a sample's value (the sum over its label sets). */
async function scrape(metricsUrl: string): Promise<(name: string, labels?: RegExp) => number> {
  const text = await (await fetch(metricsUrl)).text();
  return (name, labels) => {
    let sum = 0;
    for (const line of text.split('\n')) {
      const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? ([\d.eE+-]+)$/.exec(line);
      if (m && m[1] === name && (!labels || labels.test(m[2] ?? ''))) sum += Number(m[3]);
    }
    return sum;
  };
}

const membershipReads = (read: (name: string, labels?: RegExp) => number) => read('taskflow_aws_requests_total', /command="(Query|GetItem)Command"|command="(Query|GetItem)"/);

interface Memory {
  rssKb: number;
  heapUsedKb: number;
}

/** Memory over `seconds`: the median RSS and the least heap in use (the heap just after a GC). */
async function memoryOver(broker: ServiceProcess, metricsUrl: string, seconds: number): Promise<Memory> {
  const rss: number[] = [];
  const heap: number[] = [];
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    rss.push(rssKb(broker.child.pid!));
    heap.push((await scrape(metricsUrl))('nodejs_heap_size_used_bytes') / 1024);
    await sleep(SAMPLE_MS);
  }
  return { rssKb: median(rss), heapUsedKb: Math.min(...heap) };
}

function ask<T extends BrokerClientReport['type']>(child: ChildProcess, command: BrokerClientCommand, type: T, timeoutMs: number): Promise<Extract<BrokerClientReport, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`client process ${child.pid}: no '${type}' within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (r: BrokerClientReport) => {
      if (r.type !== type) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(r as Extract<BrokerClientReport, { type: T }>);
    };
    child.on('message', onMessage);
    child.send(command);
  });
}

interface RunResult {
  connections: number;
  subscriptions: number;
  connectSeconds: number;
  refused: number;
  subscribeFailures: number;
  idle: Memory;
  held: Memory;
  rssKibPerConnection: number;
  heapKibPerConnection: number;
  /** Node CPU per second holding the connections, no publishes (the re-checks included). */
  heldCpuSecondsPerS: number;
  heldCpuUsPerConnectionSecond: number;
  idleCpuSecondsPerS: number;
  /** Membership reads (DynamoDB Query + GetItem) per connection per second while holding. */
  membershipReadsPerConnectionSecond: number;
  publishes: number;
  deliveriesExpected: number;
  deliveriesReceived: number;
  /** The node's taskflow_broker_messages_out_total over the phase. */
  deliveriesOut: number;
  deliveriesPerS: number;
  /** Node CPU per delivery in the publish phase over the held phase's rate. */
  cpuUsPerDelivery: number;
  /** The same without subtracting the held rate. */
  cpuUsPerDeliveryGross: number;
  cpuSeconds: { idle: number; connect: number; held: number; publish: number };
}

async function oneRun(run: number, table: string, users: readonly BrokerClientUser[], projects: readonly string[]): Promise<RunResult> {
  const env: Record<string, string> = {
    ...testStackEnv(),
    DYNAMODB_TABLE_MEMBERSHIPS: table,
    JWT_SECRET: SECRET,
    BROKER_ID: `bench-broker-${run}`,
    BROKER_HOST: '127.0.0.1',
    BROKER_TCP_PORT: '0',
    BROKER_WS_PORT: '0',
    METRICS_PORT: '0',
    BROKER_DRAIN_MS: '0',
    ...(RECHECK_MS ? { BROKER_RECHECK_MS: RECHECK_MS } : {}),
  };
  const broker = await startServiceProcess('broker', env, ['broker started']);
  const { tcpUrl, wsUrl, metricsUrl } = broker.entries['broker started'] as { tcpUrl: string; wsUrl: string; metricsUrl: string };
  const pid = broker.child.pid!;
  const children: ChildProcess[] = [];
  let crashed: string | undefined;
  broker.child.once('exit', (code, signal) => {
    crashed = `the broker exited (${code ?? signal})`;
  });
  try {
    await sleep(PARAMS.idleSeconds * 500);
    const idleCpu0 = cpuSeconds(pid);
    const idle = await memoryOver(broker, metricsUrl, PARAMS.idleSeconds / 2);
    const idleCpu = cpuSeconds(pid) - idleCpu0;
    const idleCpuSecondsPerS = idleCpu / (PARAMS.idleSeconds / 2);

    // Connect: users dealt round-robin to the client processes.
    for (let i = 0; i < PARAMS.clientProcesses; i++) children.push(forkTsxProcess(new URL('./broker-clients.ts', import.meta.url), { serialization: 'json' }));
    const started = performance.now();
    const connectCpu0 = cpuSeconds(pid);
    const reports = await Promise.all(
      children.map((child, i) =>
        ask(child, { type: 'connect', wsUrl, secret: SECRET, users: users.filter((_, u) => u % children.length === i), projects: [...projects], connectSpacingMs: PARAMS.connectSpacingMs }, 'connected', 30 * 60_000),
      ),
    );
    const connectSeconds = (performance.now() - started) / 1000;
    const connected = reports.reduce((a, r) => a + r.connected, 0);
    const refused = reports.reduce((a, r) => a + r.refused, 0);
    const subscribeFailures = reports.reduce((a, r) => a + r.subscribeFailures, 0);
    for (const r of reports) for (const e of r.errors) console.error(`bench:broker client error: ${e}`);
    await waitFor(async () => (await scrape(metricsUrl))('taskflow_broker_subscriptions') >= connected * PARAMS.subscriptionsPerConnection, 'every subscription granted on the node', 60_000);
    const connectCpu = cpuSeconds(pid) - connectCpu0;
    if (crashed) throw new Error(crashed);

    await sleep(PARAMS.settleSeconds * 1000);
    const reads0 = membershipReads(await scrape(metricsUrl));
    const heldCpu0 = cpuSeconds(pid);
    const heldStart = performance.now();
    const held = await memoryOver(broker, metricsUrl, PARAMS.holdSeconds);
    const heldCpu = cpuSeconds(pid) - heldCpu0;
    const heldSeconds = (performance.now() - heldStart) / 1000;
    const reads = membershipReads(await scrape(metricsUrl)) - reads0;
    const heldCpuSecondsPerS = heldCpu / heldSeconds;

    // Publish: the router's identity over TCP, QoS 0, to the projects' topics in turn.
    const publisher = await mqtt.connectAsync(tcpUrl, { clientId: `${DEFAULT_ROUTER_SERVICE_USER}.bench`, username: 'router', password: await signDevToken(new TextEncoder().encode(SECRET), DEFAULT_ROUTER_SERVICE_USER, { ttlSeconds: 3600 }), reconnectPeriod: 0 });
    const workspaces = [...new Set(users.map((u) => u.workspaceId))];
    const topics = workspaces.flatMap((w) => projects.map((p) => projectTopicOf(w, p)));
    const topicWorkspace = workspaces.flatMap((w) => projects.map(() => w));
    const payload = Buffer.alloc(PARAMS.payloadBytes, 'x');
    const countOf = async () => (await Promise.all(children.map((c) => ask(c, { type: 'count' }, 'count', 30_000)))).reduce((a, r) => a + r.received, 0);
    const received0 = await countOf();
    const out0 = (await scrape(metricsUrl))('taskflow_broker_messages_out_total');
    const publishCpu0 = cpuSeconds(pid);
    const publishStart = performance.now();
    let publishes = 0;
    const total = PARAMS.publishesPerS * PARAMS.publishSeconds;
    while (publishes < total) {
      const due = Math.min(total, Math.floor(((performance.now() - publishStart) / 1000) * PARAMS.publishesPerS));
      while (publishes < due) {
        publisher.publish(topics[publishes % topics.length]!, payload, { qos: 0 });
        publishes += 1;
      }
      await sleep(10);
    }
    // A publish reaches the clients of its workspace that connected and subscribed.
    const perWorkspace = new Map<string, number>();
    for (const r of reports) for (const w of r.workspaces) perWorkspace.set(w, (perWorkspace.get(w) ?? 0) + 1);
    let deliveriesExpected = 0;
    for (let i = 0; i < publishes; i++) deliveriesExpected += perWorkspace.get(topicWorkspace[i % topics.length]!) ?? 0;
    await waitFor(async () => (await countOf()) - received0 >= deliveriesExpected, 'every delivery at the clients', 30_000).catch(() => undefined);
    const publishSeconds = (performance.now() - publishStart) / 1000;
    const publishCpu = cpuSeconds(pid) - publishCpu0;
    const deliveriesReceived = (await countOf()) - received0;
    const deliveriesOut = (await scrape(metricsUrl))('taskflow_broker_messages_out_total') - out0;
    await publisher.endAsync(true);
    if (crashed) throw new Error(crashed);

    const perConnection = (kb: number, idleKb: number) => (kb - idleKb) / connected;
    return {
      connections: connected,
      subscriptions: connected * PARAMS.subscriptionsPerConnection - subscribeFailures,
      connectSeconds,
      refused,
      subscribeFailures,
      idle,
      held,
      rssKibPerConnection: perConnection(held.rssKb, idle.rssKb),
      heapKibPerConnection: perConnection(held.heapUsedKb, idle.heapUsedKb),
      heldCpuSecondsPerS,
      heldCpuUsPerConnectionSecond: (heldCpuSecondsPerS * 1e6) / connected,
      idleCpuSecondsPerS,
      membershipReadsPerConnectionSecond: reads / heldSeconds / connected,
      publishes,
      deliveriesExpected,
      deliveriesReceived,
      deliveriesPerS: deliveriesReceived / publishSeconds,
      deliveriesOut,
      cpuUsPerDelivery: ((publishCpu - heldCpuSecondsPerS * publishSeconds) * 1e6) / deliveriesOut,
      cpuUsPerDeliveryGross: (publishCpu * 1e6) / deliveriesOut,
      cpuSeconds: { idle: idleCpu, connect: connectCpu, held: heldCpu, publish: publishCpu },
    };
  } finally {
    await Promise.all(children.map((c) => ask(c, { type: 'close' }, 'closed', 120_000).catch(() => undefined)));
    for (const c of children) c.kill();
    await broker.stop();
  }
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

async function main(): Promise<void> {
  const loadAtStart = loadavg();
  await startStackProcess();
  const runs: RunResult[] = [];
  try {
    const dynamo = dynamoClient();
    const { memberships: table } = await createTestTables('bench-broker', ['memberships']);
    const users: BrokerClientUser[] = Array.from({ length: PARAMS.connections }, (_, u) => ({ userId: userOf(u), workspaceId: workspaceOf(Math.floor(u / PARAMS.usersPerWorkspace)) }));
    const projects = Array.from({ length: PARAMS.subscriptionsPerConnection }, (_, p) => projectOf(p));
    await writeMemberships(dynamo, table!, users);
    dynamo.destroy();
    for (let r = 1; r <= PARAMS.runs; r++) {
      const result = await oneRun(r, table!, users, projects);
      console.log(`bench:broker run ${r} (load ${loadavg().map((l) => l.toFixed(1)).join(' ')}): ${JSON.stringify(result)}`);
      runs.push(result);
    }
  } finally {
    await stopStackProcess();
  }
  const med = (pick: (r: RunResult) => number, digits = 1) => round(median(runs.map(pick)), digits);
  const path = writeBenchResult(
    'broker',
    {
      ...PARAMS,
      recheckMs: RECHECK_MS ? Number(RECHECK_MS) : 'the broker default',
      load_at_start: loadAtStart.map((l) => round(l, 2)),
      load_at_end: loadavg().map((l) => round(l, 2)),
      runs,
      note: 'One taskflow broker process per run; RSS and heap per connection are the deltas over the same node idle (no clients) divided by its connections. Held CPU includes the membership re-checks that fell due in the held window, against dynalite: each connection is re-checked once per BROKER_RECHECK_MS at its own phase, so a window of H seconds carries about H / interval of all the connections\' reads (membershipReadsPerConnectionSecond counts them); results before 2026-12-07 ran the former full pass of every user each interval. CPU per delivery subtracts the held rate from the publish phase.',
    },
    {
      connections: med((r) => r.connections, 0),
      subscriptions_per_connection: PARAMS.subscriptionsPerConnection,
      idle_rss_mib: med((r) => r.idle.rssKb / 1024),
      held_rss_mib: med((r) => r.held.rssKb / 1024),
      rss_kib_per_connection: med((r) => r.rssKibPerConnection),
      heap_kib_per_connection: med((r) => r.heapKibPerConnection),
      held_cpu_us_per_connection_second: med((r) => r.heldCpuUsPerConnectionSecond, 2),
      membership_reads_per_connection_second: med((r) => r.membershipReadsPerConnectionSecond, 3),
      cpu_us_per_delivery: med((r) => r.cpuUsPerDelivery),
      cpu_us_per_delivery_gross: med((r) => r.cpuUsPerDeliveryGross),
      /** The cost model's figure: the largest gross figure of the runs, an upper bound. */
      cpu_us_per_delivery_gross_max: round(Math.max(...runs.map((r) => r.cpuUsPerDeliveryGross))),
      deliveries_per_s: med((r) => r.deliveriesPerS, 0),
      deliveries_lost: runs.reduce((a, r) => a + Math.max(0, r.deliveriesExpected - r.deliveriesReceived), 0),
      refused: runs.reduce((a, r) => a + r.refused, 0),
    },
  );
  console.log(`wrote ${path}`);
}

main().catch((err: unknown) => {
  console.error(err);
  void stopStackProcess().finally(() => process.exit(1));
});
