// bench:clients — many live SDK clients on one broker while the pipeline carries a steady
// workload: delivery latency (commit → client), memory per connection (SDK and broker side),
// lost / duplicated / reordered changes against the test_decoding truth, and a reconnect storm
// (the broker cut off under every client at once) with the replay API's request rate over time.
// A client is one SDK instance (createClient) with one MQTT-over-WebSocket connection and
// BENCH_CLIENTS_SUBSCRIPTIONS project subscriptions (≤ 50, IoT Core's limit per connection).
// Two brokers, one run each in turn: the pipeline's aedes (infra/local/broker.ts, with the
// membership policy of infra/local/broker-auth.ts, in this process as in bench:e2e) and a private
// Mosquitto started here (own config, ephemeral ports, no TaskFlow auth: the broker's ceiling).
// The wiring is bench:e2e's: an ephemeral stack, a fresh pipeline per run with capture and router
// in processes of their own, the SDK clients in child processes (e2e-subscribers.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { runWorkload, setupWorkloadTenants, type WorkloadStats } from '../../db/workload.js';
import startStackProcess from '../setup/global-setup.mjs';
import stopStackProcess from '../setup/global-teardown.mjs';
import { ROUTER_METRICS } from '../../router/metrics.js';
import { freePort } from '../../infra/local/processes.js';
import { startHistoryRecorder, type HistoryEvent, type HistoryRecorder } from '../support/history.js';
import { grantObserverKnownToRouter, startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { sleep, waitFor } from '../support/wait.js';
import { uniqueName } from '../support/stack.js';
import { checkSubscription, latenciesIn, parseCounter, percentile, ratePerBin, type CounterSample, type Delivered } from './e2e-analysis.js';
import type { Assignment, SubscriberReport } from './e2e-subscribers.js';
import { acrossIncarnations, benchParam, CpuMeter, cpuUsPerChange, median, PIPELINE_CPU_GROUPS, pipelineCpuReaders, rssKb, writeBenchResult } from './report.js';
import { ask, forkSubscriberProcess, nextReport, send } from './subscriber-processes.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const PARAMS = {
  clients: benchParam('BENCH_CLIENTS', 10_000),
  subscriptionsPerClient: benchParam('BENCH_CLIENTS_SUBSCRIPTIONS', 1),
  projects: benchParam('BENCH_CLIENTS_PROJECTS', 500),
  workspaces: benchParam('BENCH_CLIENTS_WORKSPACES', 50),
  targetChangesPerS: benchParam('BENCH_CLIENTS_RATE', 1000),
  measureSeconds: benchParam('BENCH_CLIENTS_SECONDS', 20),
  warmupSeconds: benchParam('BENCH_CLIENTS_WARMUP_SECONDS', 5),
  /** How long the broker stays down in the storm: long enough for the SDK's backoff to grow past its first step. */
  outageMs: benchParam('BENCH_CLIENTS_OUTAGE_MS', 3000),
  /** The workload keeps committing this long from the cut (recovery is measured under load). */
  stormSeconds: benchParam('BENCH_CLIENTS_STORM_SECONDS', 30),
  runs: benchParam('BENCH_CLIENTS_RUNS', 1),
  subscriberProcesses: benchParam('BENCH_CLIENTS_PROCESSES', 4),
  /**
   * Between two clients' connects in one subscriber process (20 ms × 4 processes: 200 connects/s).
   * At 1,000/s aedes answered too late (the SDK's 10 s CONNACK timeout) and the retries piled up.
   */
  connectSpacingMs: benchParam('BENCH_CLIENTS_CONNECT_SPACING_MS', 20),
  shards: benchParam('BENCH_CLIENTS_SHARDS', 4),
  workloadConnections: benchParam('BENCH_CLIENTS_WORKLOAD_CONNECTIONS', 4),
};
const BROKERS = (process.env.BENCH_CLIENTS_BROKERS ?? 'mosquitto,aedes').split(',') as BrokerName[];
type BrokerName = 'aedes' | 'mosquitto';
const MOSQUITTO = process.env.BENCH_CLIENTS_MOSQUITTO ?? '/usr/sbin/mosquitto';
/**
 * How long all subscriptions may take to be live, beyond the connects' spacing: each one's catch-up
 * and confirming replay request go through the replay API, a few hundred requests/s on this host.
 */
const liveTimeoutMs = (subscriptions: number) => 120_000 + 20 * subscriptions;
const RECOVERY_TIMEOUT_MS = 180_000;
const DRAIN_TIMEOUT_MS = 90_000;
const POLL_MS = 250;
/** Bins of the replay request rate in the storm. */
const RATE_BIN_MS = 250;

/** Processes a run started (Mosquitto, capture, router): ended by pid if this process crashes. */
const started = new Set<number>();

/** The pipeline's groups (report.ts) and the private Mosquitto. */
const CPU_GROUPS = [...PIPELINE_CPU_GROUPS, 'mosquitto'] as const;
type CpuGroup = (typeof CPU_GROUPS)[number];

/** The broker the clients connect to, cut and brought back by the storm. */
interface ClientBroker {
  wsUrl: string;
  /** The process whose memory is the broker's: Mosquitto's own, or this one (aedes shares it with the workload). */
  pid: () => number;
  pids: () => number[];
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** A private Mosquitto on ephemeral ports (TCP for the router, WebSocket for the SDK), never the system service on 1883. */
async function startMosquitto(): Promise<ClientBroker & { tcpUrl: string; dispose(): Promise<void> }> {
  const [tcpPort, wsPort] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'bench-clients-mosquitto-'));
  const config = join(dir, 'mosquitto.conf');
  writeFileSync(
    config,
    [
      'per_listener_settings false',
      'allow_anonymous true',
      'persistence false',
      'max_connections -1',
      // A slow client's QoS 0 backlog is bounded by bytes, not by Mosquitto's default 1,000 messages.
      'max_queued_messages 0',
      'max_queued_bytes 0',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      // Mosquitto 2.0.11 refuses to start with a websockets listener alone: the router's TCP one comes first.
      `listener ${tcpPort} 127.0.0.1`,
      `listener ${wsPort} 127.0.0.1`,
      'protocol websockets',
      '',
    ].join('\n'),
  );
  const pids: number[] = [];
  let child: ChildProcess | undefined;
  const accepts = (port: number) =>
    new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
  const start = async () => {
    const c = spawn(MOSQUITTO, ['-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    c.stderr!.on('data', (b: Buffer) => process.stderr.write(`mosquitto: ${b.toString()}`));
    child = c;
    pids.push(c.pid!);
    started.add(c.pid!);
    await waitFor(async () => c.exitCode === null && (await accepts(tcpPort)) && (await accepts(wsPort)), 'mosquitto to listen', 10_000);
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((resolve) => c.once('exit', resolve));
    c.kill('SIGTERM');
    await exited;
  };
  await start();
  return {
    tcpUrl: `mqtt://127.0.0.1:${tcpPort}`,
    wsUrl: `ws://127.0.0.1:${wsPort}/mqtt`,
    pid: () => child!.pid!,
    pids: () => pids,
    start,
    stop,
    async dispose() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function aedesOf(pipeline: TestPipeline): ClientBroker {
  const ws = new URL(pipeline.broker.wsUrl);
  return {
    wsUrl: `ws://127.0.0.1:${ws.port}${ws.pathname}`,
    pid: () => process.pid,
    pids: () => [process.pid],
    stop: () => pipeline.broker.stop(),
    start: () => pipeline.broker.start(),
  };
}

interface StormResult {
  /** Cut → every subscription live again (subscribed, and its catch-up after the SUBACK done) with at least the changes committed before the cut. */
  recoverySeconds: number | null;
  /** Broker back → the same. */
  afterRestartSeconds: number | null;
  /** Cut → half / 95% of the subscriptions so. */
  halfRecoveredSeconds: number | null;
  p95RecoveredSeconds: number | null;
  /** Replay requests per second in bins of RATE_BIN_MS from the cut, and their sum. */
  replayRatePerS: number[];
  replayRequests: number;
  replayPeakPerS: number;
  /** Share of the storm's replay requests answered in its busiest second. */
  replayBusiestSecondShare: number;
  /** Replay answers that were not 200 (e.g. too_many_requests) during the storm. */
  replayNotOk: number;
}

interface RunResult {
  broker: BrokerName;
  clients: number;
  subscriptions: number;
  connectSeconds: number;
  p50: number;
  p95: number;
  p99: number;
  samples: number;
  changesPerS: number;
  lost: number;
  lostAtTail: number;
  duplicates: number;
  orderViolations: number;
  unexpected: number;
  resyncs: number;
  sdkErrors: number;
  /** KiB: SDK processes' RSS growth from before the first connect to all live (and at the end of the measured phase), per connection. */
  sdkKbPerConnection: number;
  sdkKbPerConnectionUnderLoad: number;
  /** KiB: the broker process's RSS over connections, and its growth while the clients connected over connections. */
  brokerKbPerConnection: number;
  brokerDeltaKbPerConnection: number;
  brokerRssMb: number;
  cpuUsPerChange: Record<CpuGroup, number>;
  cpuSeconds: Record<CpuGroup, number>;
  loadavgBefore: number[];
  loadavgAfter: number[];
  storm: StormResult;
}

const round = (x: number): number => Math.round(x * 100) / 100;

async function replayCount(pipeline: TestPipeline): Promise<{ all: number; ok: number }> {
  const text = await (await fetch(pipeline.router.metricsUrl)).text();
  const ok = text.split('\n').filter((l) => l.startsWith(`${ROUTER_METRICS.replayRequests}{`) && l.includes('outcome="ok"'));
  return { all: parseCounter(text, ROUTER_METRICS.replayRequests), ok: parseCounter(ok.join('\n'), ROUTER_METRICS.replayRequests) };
}

async function oneRun(brokerName: BrokerName, run: number): Promise<RunResult> {
  const seed = `bench-clients-${randomUUID()}`;
  const mosquitto = brokerName === 'mosquitto' ? await startMosquitto() : undefined;
  const children: ChildProcess[] = [];
  let pipeline: TestPipeline | undefined;
  let history: HistoryRecorder | undefined;
  try {
    pipeline = await startTestPipeline({
      prefix: `bench-clients-${brokerName}`,
      serviceDefaults: true,
      shards: PARAMS.shards,
      services: 'processes',
      logLevel: process.env.BENCH_CLIENTS_LOG ?? 'silent',
      ...(mosquitto
        ? {
            mqttUrl: mosquitto.tcpUrl,
            // Mosquitto publishes no IoT lifecycle events: the router publishes to every project (each has subscribers here anyway).
            env: { ROUTER_SUBSCRIPTION_EVENTS: 'off' },
          }
        : {}),
    });
    const p = pipeline;
    for (const pid of [p.capture.pid, p.router.pid]) if (pid) started.add(pid);
    const broker = mosquitto ?? aedesOf(p);
    history = await startHistoryRecorder(p.databaseUrl, { slotName: uniqueName('bench_clients_truth') });
    const projectsPerWorkspace = Math.max(1, Math.round(PARAMS.projects / PARAMS.workspaces));
    const tenantOptions = { workspaces: PARAMS.workspaces, projectsPerWorkspace, seed };
    const tenants = await setupWorkloadTenants(p.databaseUrl, tenantOptions);
    const token = await grantObserverKnownToRouter({ databaseUrl: p.databaseUrl, replayUrl: p.router.replayUrl, token: p.token }, tenants.workspaces, 60_000);

    // Client c's subscriptions: projects c·k … c·k + k − 1 (mod the project count), distinct within a client.
    const projects: Assignment[] = tenants.workspaces.flatMap((w) => w.projects.map((projectId) => ({ workspaceId: w.id, projectId })));
    const k = PARAMS.subscriptionsPerClient;
    const clientsOf = Array.from({ length: PARAMS.subscriberProcesses }, (_, proc) => Array.from({ length: PARAMS.clients }, (_, c) => c).filter((c) => c % PARAMS.subscriberProcesses === proc));
    const shares = clientsOf.map((cs) => cs.flatMap((c) => Array.from({ length: k }, (_, j) => projects[(c * k + j) % projects.length]!)));

    for (let i = 0; i < shares.length; i++) {
      children.push(forkSubscriberProcess());
    }
    // Each child has loaded the SDK once it answers: its RSS then is the baseline.
    await Promise.all(children.map((c) => ask(c, { type: 'progress' }, 'progress')));
    const sdkRss = () => children.reduce((n, c) => n + rssKb(c.pid!), 0);
    const sdkBefore = sdkRss();
    const brokerBefore = rssKb(broker.pid());
    const connectFrom = Date.now();
    await Promise.all(
      children.map(async (child, i) => {
        const live = nextReport(child, 'live', liveTimeoutMs(PARAMS.clients * k) + (shares[i]!.length / k) * PARAMS.connectSpacingMs);
        send(child, { type: 'start', url: broker.wsUrl, replayUrl: p.router.replayUrl, token, assignments: shares[i]!, subscriptionsPerClient: k, connectSpacingMs: PARAMS.connectSpacingMs, clientIdPrefix: 'bench-clients' });
        try {
          await live;
        } catch (err) {
          const pr = await ask(child, { type: 'progress' }, 'progress');
          const count = (s: string) => pr.statuses.filter((x) => x === s).length;
          throw new Error(`${(err as Error).message}: ${count('live')} live, ${count('connecting')} connecting, ${count('recovering')} recovering, ${count('offline')} offline; errors: ${pr.errors.slice(0, 3).join('; ')}`);
        }
      }),
    );
    const connectSeconds = (Date.now() - connectFrom) / 1000;
    const sdkLive = sdkRss();
    const brokerLive = rssKb(broker.pid());
    console.log(`${brokerName} run ${run}: ${PARAMS.clients} clients live in ${connectSeconds.toFixed(1)} s; SDK RSS ${(sdkBefore / 1024).toFixed(0)} → ${(sdkLive / 1024).toFixed(0)} MB, broker ${(brokerBefore / 1024).toFixed(0)} → ${(brokerLive / 1024).toFixed(0)} MB`);

    const workload = { databaseUrl: p.databaseUrl, ...tenantOptions, concurrency: PARAMS.workloadConnections };
    let changesPerTransaction = 3;
    const warm = await runWorkload({ ...workload, ratePerSec: PARAMS.targetChangesPerS / changesPerTransaction, durationMs: PARAMS.warmupSeconds * 1000 });
    if (warm.committedTransactions > 0) changesPerTransaction = warm.rowChanges / warm.committedTransactions;
    const txPerS = PARAMS.targetChangesPerS / changesPerTransaction;

    // Measured phase: steady latency and CPU.
    const readers: Record<CpuGroup, () => number> = {
      ...pipelineCpuReaders(p, children),
      mosquitto: mosquitto ? acrossIncarnations(() => mosquitto.pids()) : () => 0,
    };
    const cpu = new CpuMeter(readers);
    const loadavgBefore = loadavg().map(round);
    cpu.sample();
    const measureFrom = Date.now();
    const measured: WorkloadStats = await runWorkload({ ...workload, ratePerSec: txPerS, durationMs: PARAMS.measureSeconds * 1000 });
    const measureTo = Date.now();
    const cpuTotals = cpu.totals() as Record<CpuGroup, number>;
    const loadavgAfter = loadavg().map(round);
    const sdkUnderLoad = sdkRss();
    const brokerUnderLoad = rssKb(broker.pid());

    // Storm: the workload goes on; the broker is cut under every client at once and comes back after the outage.
    const storm = runWorkload({ ...workload, ratePerSec: txPerS, durationMs: PARAMS.stormSeconds * 1000 });
    const committedBeforeCut = countByProject(await history.collect());
    const replaySamples: CounterSample[] = [];
    const okBefore = await replayCount(p);
    const cutAt = Date.now();
    replaySamples.push({ at: cutAt, value: okBefore.all });
    await broker.stop();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const at = Date.now();
        replaySamples.push({ at, value: (await replayCount(p)).all });
        await sleep(Math.max(0, POLL_MS - (Date.now() - at)));
      }
    })();
    await sleep(PARAMS.outageMs);
    await broker.start();
    const restartedAt = Date.now();
    let recoveredAt: number | null = null;
    let seenDown = false;
    const assignedProjects = shares.map((s) => s.map((a) => a.projectId));
    const subscriptions = PARAMS.clients * k;
    // When half, 95% and all of the subscriptions were back (the SDK's backoff spreads them out).
    const shareRecovered: Record<'p50' | 'p95', number | null> = { p50: null, p95: null };
    while (Date.now() - cutAt < RECOVERY_TIMEOUT_MS) {
      const progress = await Promise.all(children.map((c) => ask(c, { type: 'progress' }, 'progress')));
      seenDown ||= progress.some((pr) => pr.statuses.some((s) => s !== 'live'));
      const back = progress.reduce((n, pr, c) => n + pr.statuses.filter((s, i) => s === 'live' && pr.counts[i]! >= (committedBeforeCut.get(assignedProjects[c]![i]!) ?? 0)).length, 0);
      if (seenDown && shareRecovered.p50 === null && back >= subscriptions * 0.5) shareRecovered.p50 = Date.now();
      if (seenDown && shareRecovered.p95 === null && back >= subscriptions * 0.95) shareRecovered.p95 = Date.now();
      if (seenDown && back === subscriptions) {
        recoveredAt = Date.now();
        break;
      }
      await sleep(POLL_MS);
    }
    // The confirming replay request each subscription sends 3 s after its SUBACK belongs to the storm's load too.
    await sleep(5000);
    sampling = false;
    await sampler;
    const okAfter = await replayCount(p);
    const stormStats = await storm;

    // Drain: every subscription has its project's whole history.
    const truth = await history.collect();
    const truthByProject = new Map<string, HistoryEvent[]>();
    for (const e of truth) if (e.projectId) truthByProject.set(e.projectId, [...(truthByProject.get(e.projectId) ?? []), e]);
    const expected = countByProject(truth);
    const drainFrom = Date.now();
    while (!caughtUp(await Promise.all(children.map((c) => ask(c, { type: 'progress' }, 'progress'))), assignedProjects, expected)) {
      if (Date.now() - drainFrom > DRAIN_TIMEOUT_MS) {
        console.log(`${brokerName} run ${run}: not every subscription has its history ${DRAIN_TIMEOUT_MS / 1000} s after the workload stopped`);
        break;
      }
      await sleep(POLL_MS);
    }
    await sleep(1000); // a duplicate delivered late would show up now
    const results = await Promise.all(children.map((c) => ask(c, { type: 'collect' }, 'result')));
    const delivered: Delivered[] = results.flatMap((r) => r.delivered);
    const totals = { lost: 0, lostAtTail: 0, duplicates: 0, orderViolations: 0, unexpected: 0, resyncs: 0 };
    const latencies: number[] = [];
    for (const d of delivered) {
      const check = checkSubscription(truthByProject.get(d.projectId) ?? [], d);
      totals.lost += check.lost;
      totals.lostAtTail += check.lostAtTail;
      totals.duplicates += check.duplicates;
      totals.orderViolations += check.orderViolations;
      totals.unexpected += check.unexpected;
      totals.resyncs += d.resyncs;
      for (const l of latenciesIn(d, measureFrom, measureTo)) latencies.push(l);
    }

    const rates = ratePerBin(replaySamples, cutAt, RATE_BIN_MS);
    const perSecond = ratePerBin(replaySamples, cutAt, 1000);
    const stormRequests = replaySamples[replaySamples.length - 1]!.value - okBefore.all;
    const connections = PARAMS.clients;
    const result: RunResult = {
      broker: brokerName,
      clients: PARAMS.clients,
      subscriptions: PARAMS.clients * k,
      connectSeconds: round(connectSeconds),
      p50: percentile(latencies, 50),
      p95: percentile(latencies, 95),
      p99: percentile(latencies, 99),
      samples: latencies.length,
      changesPerS: round(measured.rowChanges / (measured.elapsedMs / 1000)),
      ...totals,
      sdkErrors: results.reduce((n, r) => n + r.errors.length, 0),
      sdkKbPerConnection: round((sdkLive - sdkBefore) / connections),
      sdkKbPerConnectionUnderLoad: round((sdkUnderLoad - sdkBefore) / connections),
      brokerKbPerConnection: round(brokerUnderLoad / connections),
      brokerDeltaKbPerConnection: round((brokerLive - brokerBefore) / connections),
      brokerRssMb: round(brokerUnderLoad / 1024),
      cpuUsPerChange: Object.fromEntries(CPU_GROUPS.map((g) => [g, cpuUsPerChange(cpuTotals[g], measured.rowChanges)])) as Record<CpuGroup, number>,
      cpuSeconds: Object.fromEntries(CPU_GROUPS.map((g) => [g, round(cpuTotals[g])])) as Record<CpuGroup, number>,
      loadavgBefore,
      loadavgAfter,
      storm: {
        recoverySeconds: recoveredAt === null ? null : round((recoveredAt - cutAt) / 1000),
        afterRestartSeconds: recoveredAt === null ? null : round((recoveredAt - restartedAt) / 1000),
        halfRecoveredSeconds: shareRecovered.p50 === null ? null : round((shareRecovered.p50 - cutAt) / 1000),
        p95RecoveredSeconds: shareRecovered.p95 === null ? null : round((shareRecovered.p95 - cutAt) / 1000),
        replayRatePerS: rates.map(Math.round),
        replayRequests: stormRequests,
        replayPeakPerS: Math.round(Math.max(0, ...rates)),
        replayBusiestSecondShare: stormRequests > 0 ? round(Math.max(0, ...perSecond) / stormRequests) : 0,
        replayNotOk: okAfter.all - okBefore.all - (okAfter.ok - okBefore.ok),
      },
    };
    console.log(`${brokerName} run ${run}: ${JSON.stringify({ ...result, storm: { ...result.storm, replayRatePerS: undefined } })} storm workload ${stormStats.rowChanges} changes`);
    console.log(`${brokerName} run ${run}: replay requests/s in ${RATE_BIN_MS} ms bins from the cut: ${result.storm.replayRatePerS.join(' ')}`);
    if (results.some((r) => r.errors.length)) console.log(`sdk errors: ${results.flatMap((r) => r.errors).slice(0, 3).join('; ')}`);
    return result;
  } finally {
    for (const c of children) c.kill();
    await history?.stop().catch(() => undefined);
    await pipeline?.stop();
    await mosquitto?.dispose();
    started.clear();
  }
}

function countByProject(events: readonly HistoryEvent[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of events) if (e.projectId) counts.set(e.projectId, (counts.get(e.projectId) ?? 0) + 1);
  return counts;
}

/** Every subscription live, with at least its project's `committed` changes. */
function caughtUp(progress: Extract<SubscriberReport, { type: 'progress' }>[], projects: string[][], committed: Map<string, number>): boolean {
  return progress.every((pr, c) => pr.statuses.every((s) => s === 'live') && pr.counts.every((n, i) => n >= (committed.get(projects[c]![i]!) ?? 0)));
}

/** Open files this process (and the children, Mosquitto, which inherit it) may hold: the soft limit. */
function openFilesLimit(): number {
  return Number(/^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? Number.NaN);
}

type Runs = Record<BrokerName, RunResult[]>;
type Failure = { broker: BrokerName; run: number; error: string };

/** The result file from the runs so far (written after every run: aedes runs in this process, and a crash of it ends the benchmark). */
function writeResults(runs: Runs, failures: readonly Failure[], loadAtStart: number[]): string {
  const metrics: Record<string, number | null> = { clients: PARAMS.clients, subscriptions_per_client: PARAMS.subscriptionsPerClient };
  const all = [...runs.aedes, ...runs.mosquitto];
  for (const key of ['lost', 'duplicates', 'orderViolations'] as const) metrics[key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = all.length ? all.reduce((n, r) => n + r[key], 0) : null;
  for (const b of BROKERS) {
    const rs = runs[b];
    const med = (f: (r: RunResult) => number | null) => {
      const values = rs.map(f).filter((v): v is number => v !== null && !Number.isNaN(v));
      return values.length ? round(median(values)) : null;
    };
    Object.assign(metrics, {
      [`${b}_runs`]: rs.length,
      [`${b}_rate_changes_per_s`]: med((r) => r.changesPerS),
      [`${b}_commit_to_client_p50_ms`]: med((r) => r.p50),
      [`${b}_commit_to_client_p95_ms`]: med((r) => r.p95),
      [`${b}_commit_to_client_p99_ms`]: med((r) => r.p99),
      [`${b}_connect_s`]: med((r) => r.connectSeconds),
      [`${b}_sdk_kb_per_connection`]: med((r) => r.sdkKbPerConnection),
      [`${b}_sdk_kb_per_connection_under_load`]: med((r) => r.sdkKbPerConnectionUnderLoad),
      [`${b}_broker_kb_per_connection`]: med((r) => r.brokerKbPerConnection),
      [`${b}_broker_delta_kb_per_connection`]: med((r) => r.brokerDeltaKbPerConnection),
      [`${b}_storm_recovery_s`]: med((r) => r.storm.recoverySeconds),
      [`${b}_storm_after_restart_s`]: med((r) => r.storm.afterRestartSeconds),
      [`${b}_storm_half_recovered_s`]: med((r) => r.storm.halfRecoveredSeconds),
      [`${b}_storm_p95_recovered_s`]: med((r) => r.storm.p95RecoveredSeconds),
      [`${b}_storm_replay_peak_per_s`]: med((r) => r.storm.replayPeakPerS),
      [`${b}_storm_replay_busiest_second_share`]: med((r) => r.storm.replayBusiestSecondShare),
      ...Object.fromEntries(CPU_GROUPS.map((g) => [`${b}_cpu_us_per_change_${g}`, med((r) => r.cpuUsPerChange[g])])),
    });
  }
  return writeBenchResult(
    'clients',
    {
      ...PARAMS,
      brokers: BROKERS,
      mosquitto: `${MOSQUITTO} (private process, own config, ephemeral ports, websockets listener, allow_anonymous: no TaskFlow authorization)`,
      openFilesLimit: openFilesLimit(),
      loadavgAtStart: loadAtStart,
      loadavgAtEnd: loadavg().map(round),
      sharedHost: 'the 2-core host was shared with other sessions',
      failures,
      perRun: runs,
    },
    metrics,
  );
}

async function main(): Promise<void> {
  if (PARAMS.subscriptionsPerClient > 50) throw new Error('BENCH_CLIENTS_SUBSCRIPTIONS: at most 50 per connection (IoT Core)');
  // aedes holds every client's socket in this process, Mosquitto in its own: both need one file each (plus a margin).
  const files = openFilesLimit();
  if (files < PARAMS.clients + 1000) throw new Error(`open files limit ${files} < ${PARAMS.clients + 1000}: raise it (ulimit -n) before running ${PARAMS.clients} clients`);
  const loadAtStart = loadavg().map(round);
  const runs: Runs = { aedes: [], mosquitto: [] };
  const failures: Failure[] = [];
  let current: { broker: BrokerName; run: number } | undefined;
  // aedes shares this process: a crash of it (seen: RangeError in mqemitter's queue at 2,000 clients) is a finding to record.
  process.once('uncaughtException', (err) => {
    console.log(`uncaught in ${current?.broker ?? '-'} run ${current?.run ?? '-'}: ${err.stack ?? err.message}`);
    failures.push({ broker: current?.broker ?? 'aedes', run: current?.run ?? 0, error: `process crashed: ${err.message}` });
    console.log(`wrote ${writeResults(runs, failures, loadAtStart)}`);
    for (const pid of started) {
      try {
        process.kill(pid);
      } catch {
        // already gone
      }
    }
    void stopStackProcess().finally(() => process.exit(1));
  });
  await startStackProcess();
  try {
    for (let r = 1; r <= PARAMS.runs; r++) {
      for (const b of BROKERS) {
        current = { broker: b, run: r };
        try {
          runs[b].push(await oneRun(b, r));
        } catch (err) {
          // A broker that cannot carry the clients is a finding, not the end of the benchmark.
          console.log(`${b} run ${r} failed: ${(err as Error).message}`);
          failures.push({ broker: b, run: r, error: (err as Error).message });
        }
        writeResults(runs, failures, loadAtStart);
      }
    }
  } finally {
    await stopStackProcess();
  }
  const path = writeResults(runs, failures, loadAtStart);
  console.log(`wrote ${path}\n${JSON.stringify(JSON.parse(readFileSync(path, 'utf8')).metrics)}`);
}

await main();
