// bench:e2e — commit-to-client latency of many SDK subscribers through the whole local pipeline
// (workload → Postgres → capture → Kinesis → router → MQTT over WebSocket → web SDK) while the
// workload generator commits at a steady rate, and whether each subscriber saw exactly its
// project's committed history (truth: a test_decoding slot): lost, duplicates, order violations.
// Three router settings: `npm start`'s defaults (reading by enhanced fan-out through the stack's
// stand-in, as in production), its defaults reading by polling, and polling with batching off and
// the shortest sensible idle poll.
// Each run gets a fresh database, stream and tables on one ephemeral stack started here (its own
// process), and the same wiring as the pipeline tests (test/support/pipeline.ts) with capture and
// router as processes of their own; the broker runs in this process, and the SDK clients in child
// processes (e2e-subscribers.ts) so their receive times do not wait for the broker's event loop.
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { runWorkload, setupWorkloadTenants, type WorkloadStats } from '../../db/workload.js';
// The same launcher as jest's global setup/teardown: `taskflow stack --ephemeral` as a child.
import startStackProcess from '../setup/global-setup.mjs';
import stopStackProcess from '../setup/global-teardown.mjs';
import { ROUTER_METRICS } from '../../router/metrics.js';
import { startHistoryRecorder, type HistoryRecorder } from '../support/history.js';
import { grantObserverKnownToRouter, startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { sleep } from '../support/wait.js';
import { uniqueName } from '../support/stack.js';
import { AWS_REQUESTS_METRIC } from '../../lib/metrics.js';
import { bucketsSince, checkSubscription, histogramQuantile, latenciesIn, parseCounter, parseHistogram, parseLabeledCounter, percentile, type Buckets, type Delivered } from './e2e-analysis.js';
import type { Assignment } from './e2e-subscribers.js';
import { benchParam, coresPer10kChangesPerS, CpuMeter, cpuUsPerChange, median, PIPELINE_CPU_GROUPS, type PipelineCpuGroup, pipelineCpuReaders, writeBenchResult } from './report.js';
import { ask, forkSubscriberProcess, nextReport, send } from './subscriber-processes.js';

const PARAMS = {
  clients: benchParam('BENCH_E2E_CLIENTS', 200),
  projects: benchParam('BENCH_E2E_PROJECTS', 50),
  workspaces: benchParam('BENCH_E2E_WORKSPACES', 10),
  /** Target row changes per second (the workload paces transactions; calibrated below). */
  targetChangesPerS: benchParam('BENCH_E2E_RATE', 1000),
  measureSeconds: benchParam('BENCH_E2E_SECONDS', 20),
  warmupSeconds: benchParam('BENCH_E2E_WARMUP_SECONDS', 5),
  runs: benchParam('BENCH_E2E_RUNS', 3),
  subscriberProcesses: benchParam('BENCH_E2E_PROCESSES', 2),
  shards: benchParam('BENCH_E2E_SHARDS', 4),
  fastPollMs: benchParam('BENCH_E2E_FAST_POLL_MS', 50),
  workloadConnections: benchParam('BENCH_E2E_WORKLOAD_CONNECTIONS', 4),
};
/** Between two clients' connections in one subscriber process, and how long they may take to be live. */
const CONNECT_SPACING_MS = 20;
const LIVE_TIMEOUT_MS = 60_000;
/** How long to wait for the last changes to arrive after the workload stops. */
const DRAIN_TIMEOUT_MS = 60_000;
const BROWSER_RESULT = '.taskflow/e2e-browser.json';

interface Setting {
  name: 'defaults' | 'polling' | 'window0';
  env: Record<string, string>;
  routerReader: 'fanout' | 'polling';
}

const ALL_SETTINGS: Setting[] = [
  // Production's and `npm start`'s reader: enhanced fan-out (infra/aws/workloads.ts), through the
  // stack's stand-in (infra/local/fanout.ts), which reads as soon as kinesalite answered a put.
  { name: 'defaults', env: {}, routerReader: 'fanout' },
  // The router's defaults reading by polling, within its read budget (2 GetRecords/s per shard).
  { name: 'polling', env: {}, routerReader: 'polling' },
  // Batching off; the idle poll as short as is sensible locally (under load the reader is paced by
  // Kinesis' 5 GetRecords/s per shard anyway, see the README).
  // The shortest sensible polling locally: kinesalite has no 5 reads/s per shard limit (in
  // production this latency needs a push reader, enhanced fan-out).
  { name: 'window0', env: { ROUTER_BATCH_WINDOW_MS: '0', ROUTER_POLL_INTERVAL_MS: String(PARAMS.fastPollMs), ROUTER_MIN_CALL_SPACING_MS: String(PARAMS.fastPollMs) }, routerReader: 'polling' },
];
/** BENCH_E2E_SETTINGS=window0 runs one setting only (to investigate; the result file then lacks the others). */
/** BENCH_E2E_ROUTER_NODE_ARGS / BENCH_E2E_CAPTURE_NODE_ARGS: node arguments for that service, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof". */
const nodeArgs = (name: string) => (process.env[name] ?? '').split(' ').filter(Boolean);
const SERVICE_NODE_ARGS = { router: nodeArgs('BENCH_E2E_ROUTER_NODE_ARGS'), capture: nodeArgs('BENCH_E2E_CAPTURE_NODE_ARGS') };
const SETTINGS = ALL_SETTINGS.filter((s) => (process.env.BENCH_E2E_SETTINGS ?? 'defaults,polling,window0').split(',').includes(s.name));

interface RunResult {
  p50: number;
  p95: number;
  p99: number;
  samples: number;
  changesPerS: number;
  deliveredPerS: number;
  lost: number;
  /** Of the lost, those after the last delivered change of their subscription: still on their way when the drain timed out. */
  lostAtTail: number;
  duplicates: number;
  orderViolations: number;
  unexpected: number;
  resyncs: number;
  /** Subscriptions' drops to 'offline' (connections lost and re-established) during the run. */
  offlines: number;
  sdkErrors: number;
  eventLoopP99Ms: number;
  /** From the services' own histograms over the measured phase (estimates within bucket bounds). */
  commitToKinesisP50Ms: number;
  commitToKinesisP95Ms: number;
  commitToPublishP50Ms: number;
  commitToPublishP95Ms: number;
  messagesPublishedPerS: number;
  changesWithoutSubscriber: number;
  publishP95Ms: number;
  /** CPU microseconds per committed row change in the measured window, per process group (CPU_GROUPS). */
  cpuUsPerChange: Record<CpuGroup, number>;
  /** AWS API calls per committed row change in the measured window, by "service api command" (capture and router). */
  awsRequestsPerChange: Record<string, number>;
}

const CPU_GROUPS = PIPELINE_CPU_GROUPS;
type CpuGroup = PipelineCpuGroup;
/** A run's single-number figures (everything but the per-group CPU). */
type Figure = Exclude<keyof RunResult, 'cpuUsPerChange' | 'awsRequestsPerChange'>;

const STAGES = {
  commitToKinesis: { service: 'capture', histogram: 'taskflow_capture_commit_to_kinesis_seconds' },
  commitToPublish: { service: 'router', histogram: ROUTER_METRICS.commitToPublish },
} as const;
type Stage = keyof typeof STAGES;

interface Scrape {
  at: number;
  stages: Record<Stage, Buckets>;
  publishLatency: Buckets;
  messagesPublished: number;
  withoutSubscriber: number;
}

async function scrapeStages(pipeline: TestPipeline): Promise<Scrape> {
  const text = { capture: await (await fetch(pipeline.capture.metricsUrl)).text(), router: await (await fetch(pipeline.router.metricsUrl)).text() };
  return {
    at: Date.now(),
    stages: {
      commitToKinesis: parseHistogram(text[STAGES.commitToKinesis.service], STAGES.commitToKinesis.histogram),
      commitToPublish: parseHistogram(text[STAGES.commitToPublish.service], STAGES.commitToPublish.histogram),
    },
    publishLatency: parseHistogram(text.router, ROUTER_METRICS.publishLatency),
    messagesPublished: parseCounter(text.router, ROUTER_METRICS.messagesPublished),
    withoutSubscriber: parseCounter(text.router, ROUTER_METRICS.changesUnsubscribed),
  };
}

/** Each service's AWS API calls so far (lib/aws.ts counts them), by "service api command". */
async function awsRequests(pipeline: TestPipeline): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const service of ['capture', 'router'] as const) {
    for (const [labels, n] of parseLabeledCounter(await (await fetch(pipeline[service].metricsUrl)).text(), AWS_REQUESTS_METRIC)) {
      counts.set(`${service} ${labels.api} ${labels.command}`, n);
    }
  }
  return counts;
}

function requestsPerChange(before: Map<string, number>, after: Map<string, number>, changes: number): Record<string, number> {
  const perChange = [...after].map(([key, n]) => [key, Math.round(((n - (before.get(key) ?? 0)) / changes) * 10_000) / 10_000] as const);
  return Object.fromEntries(perChange.filter(([, r]) => r > 0).sort((a, b) => b[1] - a[1]));
}

function stageQuantiles(before: Scrape, after: Scrape) {
  const ms = (stage: Stage, q: number) => round(histogramQuantile(bucketsSince(before.stages[stage], after.stages[stage]), q) * 1000);
  return {
    // Router → broker publishes (one message per project and window), and each one's wait for the rate limit plus the broker's PUBACK.
    messagesPublishedPerS: round((after.messagesPublished - before.messagesPublished) / ((after.at - before.at) / 1000)),
    // Changes the router did not publish because it believed nobody subscribed to their project (every project has subscribers here: should stay 0).
    changesWithoutSubscriber: after.withoutSubscriber - before.withoutSubscriber,
    publishP95Ms: round(histogramQuantile(bucketsSince(before.publishLatency, after.publishLatency), 0.95) * 1000),
    commitToKinesisP50Ms: ms('commitToKinesis', 0.5),
    commitToKinesisP95Ms: ms('commitToKinesis', 0.95),
    commitToPublishP50Ms: ms('commitToPublish', 0.5),
    commitToPublishP95Ms: ms('commitToPublish', 0.95),
  };
}

/** Row changes per workload transaction: first a guess, then what the last warm-up measured. */
let changesPerTransaction = 3;

async function oneRun(setting: Setting, run: number): Promise<RunResult> {
  const seed = `bench-e2e-${randomUUID()}`;
  const pipeline = await startTestPipeline({
    prefix: `bench-e2e-${setting.name}`,
    serviceDefaults: true,
    shards: PARAMS.shards,
    // Capture and router in their own processes, as in production (one pod each).
    services: 'processes',
    serviceNodeArgs: SERVICE_NODE_ARGS,
    env: setting.env,
    routerReader: setting.routerReader,
    logLevel: process.env.BENCH_E2E_LOG ?? 'silent',
  });
  const children: ChildProcess[] = [];
  let history: HistoryRecorder | undefined;
  try {
    history = await startHistoryRecorder(pipeline.databaseUrl, { slotName: uniqueName('bench_e2e_truth') });
    const projectsPerWorkspace = Math.max(1, Math.round(PARAMS.projects / PARAMS.workspaces));
    const tenantOptions = { workspaces: PARAMS.workspaces, projectsPerWorkspace, seed };
    const tenants = await setupWorkloadTenants(pipeline.databaseUrl, tenantOptions);
    const token = await grantObserverKnownToRouter({ databaseUrl: pipeline.databaseUrl, replayUrl: pipeline.router.replayUrl, token: pipeline.token }, tenants.workspaces);

    const projects: Assignment[] = tenants.workspaces.flatMap((w) => w.projects.map((projectId) => ({ workspaceId: w.id, projectId })));
    const assignments = Array.from({ length: PARAMS.clients }, (_, i) => projects[i % projects.length]!);
    const shares = Array.from({ length: PARAMS.subscriberProcesses }, (_, p) => assignments.filter((_, i) => i % PARAMS.subscriberProcesses === p));
    const wsUrl = new URL(pipeline.broker.wsUrl);
    const live = shares.map(async (assigned) => {
      const child = forkSubscriberProcess();
      children.push(child);
      const started = nextReport(child, 'live', LIVE_TIMEOUT_MS + assigned.length * CONNECT_SPACING_MS);
      const url = `ws://127.0.0.1:${wsUrl.port}${wsUrl.pathname}`;
      send(child, { type: 'start', url, replayUrl: pipeline.router.replayUrl, token, assignments: assigned, connectSpacingMs: CONNECT_SPACING_MS });
      try {
        await started;
      } catch (err) {
        const p = await ask(child, { type: 'progress' }, 'progress');
        const count = (s: string) => p.statuses.filter((x) => x === s).length;
        throw new Error(`${(err as Error).message}: ${count('live')} live, ${count('connecting')} connecting, ${count('recovering')} recovering, ${count('offline')} offline; errors: ${p.errors.slice(0, 3).join('; ')}`);
      }
    });
    await Promise.all(live);

    // Warm-up: pipeline caches and connections warm, and the changes per transaction measured.
    const workload = { databaseUrl: pipeline.databaseUrl, ...tenantOptions, concurrency: PARAMS.workloadConnections };
    const warm = await runWorkload({ ...workload, ratePerSec: PARAMS.targetChangesPerS / changesPerTransaction, durationMs: PARAMS.warmupSeconds * 1000 });
    if (warm.committedTransactions > 0) changesPerTransaction = warm.rowChanges / warm.committedTransactions;

    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const stagesBefore = await scrapeStages(pipeline);
    const cpu = new CpuMeter(pipelineCpuReaders(pipeline, children));
    const requestsBefore = await awsRequests(pipeline);
    cpu.sample();
    const measureFrom = Date.now();
    // The monotonic clock V8's --cpu-prof timestamps use (µs): a service's profile can be cut to the measured phase.
    const monoFrom = process.hrtime.bigint() / 1000n;
    const measured: WorkloadStats = await runWorkload({ ...workload, ratePerSec: PARAMS.targetChangesPerS / changesPerTransaction, durationMs: PARAMS.measureSeconds * 1000 });
    const measureTo = Date.now();
    if (SERVICE_NODE_ARGS.router.length > 0 || SERVICE_NODE_ARGS.capture.length > 0) console.log(`${setting.name} run ${run}: measured phase ${monoFrom}-${process.hrtime.bigint() / 1000n} µs monotonic (--cpu-prof timestamps)`);
    const cpuSecondsByGroup = cpu.totals();
    const requestsAfter = await awsRequests(pipeline);
    loop.disable();

    const truth = await history.collect();
    const truthByProject = new Map<string, typeof truth>();
    for (const e of truth) if (e.projectId) truthByProject.set(e.projectId, [...(truthByProject.get(e.projectId) ?? []), e]);
    const expected = shares.map((assigned) => assigned.map((a) => truthByProject.get(a.projectId)?.length ?? 0));
    const drainStarted = Date.now();
    for (;;) {
      const progress = await Promise.all(children.map((c) => ask(c, { type: 'progress' }, 'progress')));
      const behind = progress.reduce((n, p, c) => n + p.counts.filter((count, i) => count < expected[c]![i]!).length, 0);
      if (behind === 0) break;
      if (Date.now() - drainStarted > DRAIN_TIMEOUT_MS) {
        const missing = progress.reduce((n, p, c) => n + p.counts.reduce((m, count, i) => m + Math.max(0, expected[c]![i]! - count), 0), 0);
        console.log(`${setting.name} run ${run}: ${behind} subscriptions still ${missing} changes short ${DRAIN_TIMEOUT_MS / 1000} s after the workload stopped`);
        break;
      }
      await sleep(250);
    }
    await sleep(1000); // a duplicate delivered late would show up now
    const stagesAfter = await scrapeStages(pipeline);
    const results = await Promise.all(children.map((c) => ask(c, { type: 'collect' }, 'result')));
    const delivered: Delivered[] = results.flatMap((r) => r.delivered);

    const totals = { lost: 0, lostAtTail: 0, duplicates: 0, orderViolations: 0, unexpected: 0, resyncs: 0, offlines: 0 };
    const latencies: number[] = [];
    const inWindow = new Set<string>();
    for (const d of delivered) {
      const check = checkSubscription(truthByProject.get(d.projectId) ?? [], d);
      totals.lost += check.lost;
      totals.lostAtTail += check.lostAtTail;
      totals.duplicates += check.duplicates;
      totals.orderViolations += check.orderViolations;
      totals.unexpected += check.unexpected;
      totals.resyncs += d.resyncs;
      totals.offlines += d.offlines;
      for (const l of latenciesIn(d, measureFrom, measureTo)) latencies.push(l);
      d.commitMs.forEach((t, i) => t >= measureFrom && t < measureTo && inWindow.add(d.ids[i]!));
    }
    const result: RunResult = {
      p50: percentile(latencies, 50),
      p95: percentile(latencies, 95),
      p99: percentile(latencies, 99),
      samples: latencies.length,
      changesPerS: round(measured.rowChanges / (measured.elapsedMs / 1000)),
      deliveredPerS: round(inWindow.size / ((measureTo - measureFrom) / 1000)),
      ...totals,
      sdkErrors: results.reduce((n, r) => n + r.errors.length, 0),
      eventLoopP99Ms: round(loop.percentile(99) / 1e6),
      ...stageQuantiles(stagesBefore, stagesAfter),
      cpuUsPerChange: Object.fromEntries(CPU_GROUPS.map((g) => [g, cpuUsPerChange(cpuSecondsByGroup[g]!, measured.rowChanges)])) as Record<CpuGroup, number>,
      awsRequestsPerChange: requestsPerChange(requestsBefore, requestsAfter, measured.rowChanges),
    };
    console.log(`${setting.name} run ${run}: ${JSON.stringify(result)}${results.some((r) => r.errors.length) ? ` sdk errors: ${results.flatMap((r) => r.errors).slice(0, 3).join('; ')}` : ''}`);
    return result;
  } finally {
    for (const c of children) c.kill();
    await history?.stop();
    await pipeline.stop();
  }
}

function browserCommitToScreenMs(): number | null {
  try {
    const value = (JSON.parse(readFileSync(BROWSER_RESULT, 'utf8')) as { browser_commit_to_screen_ms?: unknown }).browser_commit_to_screen_ms;
    return typeof value === 'number' ? value : null;
  } catch {
    return null;
  }
}

const round = (x: number): number => Math.round(x * 100) / 100;

async function main(): Promise<void> {
  const loadAtStart = loadavg()[0]!;
  // The engines (Postgres, kinesalite, dynalite) run in their own process, as jest's global setup
  // starts them: in production Kinesis and DynamoDB are remote services, and in this process
  // kinesalite's work delayed capture's PutRecords on the shared event loop.
  await startStackProcess();
  const runs: Record<Setting['name'], RunResult[]> = { defaults: [], polling: [], window0: [] };
  try {
    for (let r = 1; r <= PARAMS.runs; r++) {
      // Alternate the settings so a change in the machine's load affects both alike.
      for (const setting of SETTINGS) runs[setting.name].push(await oneRun(setting, r));
    }
  } finally {
    await stopStackProcess();
  }

  const med = (name: Setting['name'], key: Figure) => (runs[name].length ? round(median(runs[name].map((r) => r[key]))) : null);
  const sum = (key: Figure) => Object.values(runs).flat().reduce((n, r) => n + r[key], 0);
  const medCpu = (name: Setting['name'], group: CpuGroup) => (runs[name].length ? round(median(runs[name].map((r) => r.cpuUsPerChange[group]))) : null);
  const cores = (usPerChange: number | null) => (usPerChange === null ? null : coresPer10kChangesPerS(usPerChange));
  const browser = browserCommitToScreenMs();
  const metrics: Record<string, number | null> = {
    rate_events_per_s: med('defaults', 'changesPerS'),
    subscribers: PARAMS.clients,
    commit_to_client_p50_ms: med('defaults', 'p50'),
    commit_to_client_p95_ms: med('defaults', 'p95'),
    commit_to_client_p99_ms: med('defaults', 'p99'),
    // Totals over every run of every setting: each must be 0.
    lost: sum('lost'),
    duplicates: sum('duplicates'),
    order_violations: sum('orderViolations'),
    commit_to_client_p50_ms_polling: med('polling', 'p50'),
    commit_to_client_p95_ms_polling: med('polling', 'p95'),
    commit_to_client_p95_ms_window0: med('window0', 'p95'),
    // CPU per change (defaults, median of the runs): the figure the cost model turns into machines.
    ...Object.fromEntries(CPU_GROUPS.map((g) => [`cpu_us_per_change_${g}`, medCpu('defaults', g)])),
    cores_per_10k_changes_per_s_capture: cores(medCpu('defaults', 'capture')),
    cores_per_10k_changes_per_s_router: cores(medCpu('defaults', 'router')),
    cpu_us_per_change_router_polling: medCpu('polling', 'router'),
    cpu_us_per_change_router_window0: medCpu('window0', 'router'),
  };
  const path = writeBenchResult(
    'e2e',
    {
      ...PARAMS,
      settings: {
        defaults: "npm start's: router defaults (ROUTER_BATCH_WINDOW_MS 100), reading by enhanced fan-out (production's reader) through the stack's stand-in, which reads as soon as a put is answered",
        polling: 'router defaults (ROUTER_BATCH_WINDOW_MS 100, ROUTER_POLL_INTERVAL_MS 200), reading by polling within its read budget',
        window0: { reader: 'polling', ...ALL_SETTINGS[2]!.env },
      },
      changesPerTransaction: round(changesPerTransaction),
      loadavg1mAtStart: round(loadAtStart),
      browserResult: browser === null ? `none (${BROWSER_RESULT} absent: run test/e2e/demo-board.test.ts first)` : BROWSER_RESULT,
      // Medians per setting of everything measured, including where the time goes by stage.
      medians: Object.fromEntries(
        SETTINGS.map(({ name }) => [
          name,
          {
            ...Object.fromEntries((Object.keys(runs[name][0] ?? {}) as (keyof RunResult)[]).filter((k): k is Figure => k !== 'cpuUsPerChange' && k !== 'awsRequestsPerChange').map((k) => [k, med(name, k)])),
            cpuUsPerChange: Object.fromEntries(CPU_GROUPS.map((g) => [g, medCpu(name, g)])),
          },
        ]),
      ),
      perRun: runs,
    },
    // browser_commit_to_screen_ms is null when the browser test has not run (JSON has no NaN).
    { ...metrics, browser_commit_to_screen_ms: browser },
  );
  console.log(`wrote ${path}\n${JSON.stringify(metrics)}`);
}

await main();
