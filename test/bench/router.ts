// bench:router — the router's own figures (test/bench/README.md "router"):
//  1. the pure core (decode+validate, order/dedup, sequencing into an in-memory changelog,
//     batching) in events/s on one core;
//  2. the whole router on the local stack (kinesalite, dynalite, aedes): events/s draining a
//     pre-filled stream;
//  3. put-to-subscriber latency at a steady rate with batching off (window 0): the event's
//     `time` is set when it is put on the stream, so this is the router's share of
//     commit-to-browser (poll, validate, changelog write, publish, broker hop);
//  4. MQTT messages per delivered change (the IoT Core cost driver) at 1,000 changes/s over 50
//     projects, for several windows and full vs thin payloads.
// Router, producer and subscriber share this process (2 cores): figures are upper bounds.
// BENCH_ROUTER_CORE_ONLY=1 runs (1) alone, BENCH_CORE_RUNS times (default 3), and writes no result:
// for comparing changes to the core (e.g. under `node --cpu-prof`) without starting the stack.
import { type KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import mqtt, { type MqttClient } from 'mqtt';
import { loadavg } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { createKinesisClient, createDynamoClient } from '../../lib/aws.js';
import { silentLogger } from '../../lib/logger.js';
import { stackEnv } from '../../lib/stack-info.js';
import { ensureStream, ensureTable, startStack } from '../../infra/local/stack.js';
import { TABLES } from '../../infra/local/tables.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { validateEvent } from '../../schemas/validate.js';
import { ProjectBatcher } from '../../router/batcher.js';
import { MemoryChangelogStore } from '../../router/memory-changelog.js';
import { loadConfig } from '../../router/config.js';
import { startRouter } from '../../router/service.js';
import { ShardRouter, type InputRecord } from '../../router/shard-router.js';
import { benchParam, cpuUsPerChange, median, selfCpuSeconds, writeBenchResult } from './report.js';
import { waitFor } from '../support/wait.js';

const WORKSPACES = Array.from({ length: 10 }, (_, i) => `11111111-1111-4111-8111-${String(i).padStart(12, '0')}`);
const PROJECTS = Array.from({ length: 50 }, (_, i) => `22222222-2222-4222-8222-${String(i).padStart(12, '0')}`);
const SECRET = 'bench-router-secret-bench-router-secret';

let lsn = 0x10000n;
/** The i-th change: projects spread over workspaces (5 projects each), commit time = now. */
function change(i: number): { data: Buffer; ws: string } {
  const project = PROJECTS[i % PROJECTS.length]!;
  const ws = WORKSPACES[(i % PROJECTS.length) % WORKSPACES.length]!;
  lsn += 0x40n;
  const e = sampleEvent('task.updated', { workspaceId: ws, projectId: project, commitLsn: lsn, entityId: `33333333-3333-4333-8333-${String(i % 1000).padStart(12, '0')}`, time: new Date().toISOString() });
  return { data: Buffer.from(JSON.stringify(e)), ws };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** The core's events per second of wall time, and its CPU microseconds per event (the figure the host's load does not move). */
async function coreEventsPerSecond(coreRuns: number): Promise<{ rate: number; cpuUsPerEvent: number }> {
  const batches: InputRecord[][] = [];
  for (let b = 0; b < 120; b += 1) batches.push(Array.from({ length: 500 }, (_, i) => ({ data: change(b * 500 + i).data, sequenceNumber: String(b * 500 + i) })));
  const rates: number[] = [];
  const cpuPerEvent: number[] = [];
  for (let run = 0; run < coreRuns; run += 1) {
    const batcher = new ProjectBatcher({ windowMs: 0, mode: 'full', gzip: false, maxBytes: 128 * 1024 });
    const router = new ShardRouter({
      shardId: 'bench',
      consumer: 'router',
      changelog: new MemoryChangelogStore(),
      sink: { enqueue: (p, c) => batcher.add(p, c, 0), flush: async () => void batcher.takeAll(), revoke: () => {} },
      deadLetters: { put: async () => {} },
      memberships: { apply: async () => {} },
      validate: validateEvent,
    });
    const started = performance.now();
    const cpuBefore = selfCpuSeconds();
    for (const batch of batches) await router.process(batch);
    rates.push((batches.length * 500) / ((performance.now() - started) / 1000));
    cpuPerEvent.push(cpuUsPerChange(selfCpuSeconds() - cpuBefore, batches.length * 500));
  }
  return { rate: median(rates), cpuUsPerEvent: median(cpuPerEvent) };
}

interface Received {
  at: number;
  bytes: number;
  changes: { seq: number; time: string }[];
}

async function subscribe(url: string): Promise<{ client: MqttClient; received: Received[] }> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  const received: Received[] = [];
  client.on('message', (_t, payload) => {
    const at = Date.now();
    const raw = payload[0] === 0x1f && payload[1] === 0x8b ? gunzipSync(payload) : payload;
    const m = JSON.parse(raw.toString()) as { changes: { seq: number; event?: { time: string }; time?: string }[] };
    received.push({ at, bytes: payload.length, changes: m.changes.map((c) => ({ seq: c.seq, time: c.event?.time ?? c.time ?? '' })) });
  });
  await client.subscribeAsync('taskflow/v1/ws/+/projects/+', { qos: 1 });
  return { client, received };
}

async function put(kinesis: KinesisClient, stream: string, items: { data: Buffer; ws: string }[]): Promise<void> {
  for (let i = 0; i < items.length; i += 500) {
    const out = await kinesis.send(new PutRecordsCommand({ StreamName: stream, Records: items.slice(i, i + 500).map((c) => ({ Data: c.data, PartitionKey: c.ws })) }));
    if (out.FailedRecordCount) throw new Error(`${out.FailedRecordCount} records failed`);
  }
}

async function main(): Promise<void> {
  const load = loadavg()[0];
  console.log('bench:router — pure core …');
  const coreOnly = process.env.BENCH_ROUTER_CORE_ONLY === '1';
  const { rate: core, cpuUsPerEvent: coreCpuUs } = await coreEventsPerSecond(coreOnly ? benchParam('BENCH_CORE_RUNS', 3) : 3);
  console.log(`  core_events_per_s ${core.toFixed(0)}, ${coreCpuUs} µs CPU per event (load ${load?.toFixed(2)} at start, ${loadavg()[0]?.toFixed(2)} now)`);
  if (coreOnly) return;

  const stack = await startStack({ ephemeral: true, shardCount: 4 });
  const env = stackEnv(stack.info);
  const aws = { region: stack.info.kinesis.region, kinesisEndpoint: stack.info.kinesis.endpoint, dynamodbEndpoint: stack.info.dynamodb.endpoint };
  const kinesis = createKinesisClient(aws);
  const dynamo = createDynamoClient(aws);
  let runNo = 0;

  /** A fresh stream and tables, a subscriber on every project, a router with `overrides`. */
  async function withRouter<T>(overrides: Record<string, string>, body: (ctx: { stream: string; received: Received[] }) => Promise<T>): Promise<T> {
    runNo += 1;
    const stream = `bench-router-${process.pid}-${runNo}`;
    await ensureStream(kinesis, stream, 4);
    const tables: Record<string, string> = {};
    for (const t of TABLES) tables[`DYNAMODB_TABLE_${t.key.toUpperCase()}`] = await ensureTable(dynamo, t, `${t.table.TableName}-${process.pid}-${runNo}`);
    const config = loadConfig({ ...env, ...tables, CHANGE_STREAM_NAME: stream, JWT_SECRET: SECRET, ROUTER_POLL_INTERVAL_MS: '20', ...overrides });
    const router = await startRouter(config, silentLogger);
    // Subscribe once the router listens to the broker's lifecycle events.
    const { client, received } = await subscribe(stack.info.mqtt.tcpUrl);
    await new Promise((r) => setTimeout(r, 1500)); // leases taken, subscription seen
    try {
      return await body({ stream, received });
    } finally {
      await router.stop('graceful');
      await client.endAsync(true);
    }
  }

  const count = (received: Received[]) => received.reduce((n, m) => n + m.changes.length, 0);
  const until = (received: Received[], n: number, timeoutMs: number) => waitFor(() => count(received) >= n, () => `${n} changes (${count(received)} arrived)`, timeoutMs, 20);

  /** Puts `rate` changes/s for `seconds`, in 50 ms slices. */
  async function steady(stream: string, rate: number, seconds: number): Promise<number> {
    const perSlice = Math.max(1, Math.round(rate / 20));
    const slices = seconds * 20;
    const start = Date.now();
    let i = 0;
    for (let s = 0; s < slices; s += 1) {
      await put(kinesis, stream, Array.from({ length: perSlice }, () => change(i++)));
      const wait = start + (s + 1) * 50 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    return i;
  }

  try {
    console.log('whole router: draining a pre-filled stream …');
    const total = 20_000;
    // Fill first, then start the router, so the figure is the drain rate.
    const routerRate = await (async () => {
      runNo += 1;
      const stream = `bench-router-${process.pid}-fill-${runNo}`;
      await ensureStream(kinesis, stream, 4);
      const tables: Record<string, string> = {};
      for (const t of TABLES) tables[`DYNAMODB_TABLE_${t.key.toUpperCase()}`] = await ensureTable(dynamo, t, `${t.table.TableName}-${process.pid}-fill-${runNo}`);
      await put(kinesis, stream, Array.from({ length: total }, (_, i) => change(i)));
      const { client, received } = await subscribe(stack.info.mqtt.tcpUrl);
      const started = Date.now();
      const router = await startRouter(loadConfig({ ...env, ...tables, CHANGE_STREAM_NAME: stream, JWT_SECRET: SECRET, ROUTER_POLL_INTERVAL_MS: '20', ROUTER_SUBSCRIPTION_EVENTS: 'off' }), silentLogger);
      try {
        await until(received, total, 300_000);
        return total / ((Date.now() - started) / 1000);
      } finally {
        await router.stop('graceful');
        await client.endAsync(true);
      }
    })();
    console.log(`  router_events_per_s ${routerRate.toFixed(0)} (including start-up)`);

    console.log('latency at 200 changes/s, window 0 …');
    // Window 0 publishes once per project per read: enough connections that IoT Core's 100
    // publishes/s per connection (emulated by the pool's limiter) is not what is measured.
    const latencies = await withRouter({ ROUTER_BATCH_WINDOW_MS: '0', ROUTER_MQTT_CONNECTIONS: '8', ROUTER_MIN_CALL_SPACING_MS: '20' }, async ({ stream, received }) => {
      const n = await steady(stream, 200, 10);
      await until(received, n, 60_000);
      return received.flatMap((m) => m.changes.map((c) => m.at - Date.parse(c.time))).slice(200).sort((a, b) => a - b);
    });
    const p = (q: number) => percentile(latencies, q);
    console.log(`  p50 ${p(50)} ms, p95 ${p(95)} ms, p99 ${p(99)} ms`);

    const costRuns: Record<string, { messagesPerChange: number; bytesPerChange: number }> = {};
    for (const [name, overrides] of [
      ['window100_full', { ROUTER_BATCH_WINDOW_MS: '100' }],
      ['window0_full', { ROUTER_BATCH_WINDOW_MS: '0' }],
      ['window250_full', { ROUTER_BATCH_WINDOW_MS: '250' }],
      ['window100_thin', { ROUTER_BATCH_WINDOW_MS: '100', ROUTER_PAYLOAD_MODE: 'thin' }],
      ['window100_thin_gzip', { ROUTER_BATCH_WINDOW_MS: '100', ROUTER_PAYLOAD_MODE: 'thin', ROUTER_GZIP: 'true' }],
    ] as const) {
      console.log(`messages per change at 1000/s over 50 projects, ${name} …`);
      costRuns[name] = await withRouter(overrides, async ({ stream, received }) => {
        const n = await steady(stream, 1000, 6);
        await until(received, n, 60_000);
        const bytes = received.reduce((b, m) => b + m.bytes, 0);
        return { messagesPerChange: received.length / n, bytesPerChange: bytes / n };
      });
      console.log(`  ${costRuns[name]!.messagesPerChange.toFixed(3)} messages/change, ${costRuns[name]!.bytesPerChange.toFixed(0)} bytes/change`);
    }

    const path = writeBenchResult(
      'router',
      {
        loadavg1AtStart: load,
        coreBatches: '120 × 500 events, 50 projects, 10 workspaces, in-memory changelog, median of 3',
        routerDrain: `${total} events pre-filled on 4 shards, window 100 ms, poll 20 ms, subscription tracking off; time from router start to last change at a subscriber`,
        latency: 'put-to-subscriber (event time = put time) at 200 changes/s for 10 s, window 0, poll and GetRecords spacing 20 ms (kinesalite; Kinesis allows 200 ms), 8 MQTT connections; first 200 samples dropped',
        cost: '1000 changes/s for 6 s over 50 projects (10 workspaces, 4 shards), one wildcard subscriber; messages and payload bytes per change',
        costRuns,
        inProcess: 'router, producer and subscriber share one Node process on a 2-core machine shared with other jobs',
      },
      {
        core_events_per_s: Math.round(core),
        core_cpu_us_per_event: coreCpuUs,
        router_events_per_s: Math.round(routerRate),
        commit_to_publish_p50_ms: p(50),
        commit_to_publish_p95_ms: p(95),
        commit_to_publish_p99_ms: p(99),
        mqtt_messages_per_event: Number(costRuns.window100_full!.messagesPerChange.toFixed(4)),
      },
    );
    console.log(`wrote ${path}`);
  } finally {
    kinesis.destroy();
    dynamo.destroy();
    await stack.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
