// bench:consumers — does reading the change stream with more consumers slow the router down?
// (test/bench/README.md "consumers"). The project's workload through capture and the router (each
// its own process, their production defaults and read budgets), first with the router as the
// stream's only reader, then with search, notifications, audit and the analytics archiver reading
// the same stream (each its own process, its default read budget). Measured: the router's commit
// → publish p95 (its own histogram: commit time to the broker's PUBACK, every project published,
// ROUTER_SUBSCRIPTION_EVENTS=off), the ratio of the two, CPU seconds per process and the host's
// busy CPU. Two rates, because on a 2-core host four more processes take CPU from capture and the
// router whatever they read: `uncontended` (BENCH_CONSUMERS_UNCONTENDED_RATE) leaves the host CPU
// to spare, so its ratio is what the target is about — readers sharing the stream must not starve
// the router; `contended` (BENCH_CONSUMERS_RATE) is the earlier figure, CPU contention included.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { runWorkload, setupWorkloadTenants } from '../../db/workload.js';
import { ROUTER_METRICS } from '../../router/metrics.js';
import startStackProcess from '../setup/global-setup.mjs';
import stopStackProcess from '../setup/global-teardown.mjs';
import { startTestPipeline } from '../support/pipeline.js';
import { startServiceProcess, type ServiceProcess } from '../support/service-process.js';
import { bucketsSince, histogramQuantile, parseHistogram } from './e2e-analysis.js';
import { benchParam, cpuSeconds, median, treeCpuSeconds, writeBenchResult } from './report.js';
import { readStackInfo } from '../../lib/stack-info.js';

const PARAMS = {
  targetChangesPerS: benchParam('BENCH_CONSUMERS_RATE', 300),
  uncontendedChangesPerS: benchParam('BENCH_CONSUMERS_UNCONTENDED_RATE', 60),
  measureSeconds: benchParam('BENCH_CONSUMERS_SECONDS', 20),
  warmupSeconds: benchParam('BENCH_CONSUMERS_WARMUP_SECONDS', 5),
  runs: benchParam('BENCH_CONSUMERS_RUNS', 3),
  shards: benchParam('BENCH_CONSUMERS_SHARDS', 2),
  workspaces: 8,
  projectsPerWorkspace: 4,
};
const CAPTURE_COMMIT_TO_KINESIS = 'taskflow_capture_commit_to_kinesis_seconds';
const CONSUMERS = ['search', 'notifications', 'audit', 'archiver'] as const;
const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
type Scenario = 'uncontended' | 'contended';
/** Host CPU busy at or above this over the uncontended runs: the host had none to spare, and the target's figure is not taken. */
const HOST_BUSY_LIMIT = 0.9;
const RATE: Record<Scenario, number> = { uncontended: PARAMS.uncontendedChangesPerS, contended: PARAMS.targetChangesPerS };

/** Busy and total CPU ticks of the whole host (every session's processes, not only this bench's), from /proc/stat. */
function hostTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - f[4]!, total }; // idle and iowait are not busy
}

interface RunResult {
  p50Ms: number;
  p95Ms: number;
  /** Capture's part of it: commit → put on Kinesis (its histogram), p95. */
  captureP95Ms: number;
  changes: number;
  loadAverage: number;
  /** Fraction of the host's CPU busy over the measured window (all processes on it). */
  hostBusy: number;
  /** CPU seconds over the measured window, per process (and the engines' process). */
  cpu: Record<string, number>;
}

/** SIGTERM, then SIGKILL after `ms`: a consumer that does not exit must not hang the bench (say which). */
async function stopWithin(name: string, s: ServiceProcess, ms: number): Promise<void> {
  const timer = setTimeout(() => {
    console.warn(`bench:consumers: ${name} did not exit ${ms} ms after SIGTERM; killed`);
    s.child.kill('SIGKILL');
  }, ms);
  await s.stop();
  clearTimeout(timer);
}

async function oneRun(scenario: Scenario, withConsumers: boolean, run: number): Promise<RunResult> {
  const name = `bench-consumers-${scenario}-${withConsumers ? 'all' : 'alone'}-${run}`;
  const rate = RATE[scenario];
  // Notifications publishes to users' topics as its service identity, which the broker must admit as production's does.
  const pipeline = await startTestPipeline({ prefix: name, serviceDefaults: true, shards: PARAMS.shards, services: 'processes', env: { ROUTER_SUBSCRIPTION_EVENTS: 'off' }, logLevel: 'silent', serviceUsers: ['service:notifications'] });
  const dir = mkdtempSync(join(tmpdir(), 'bench-consumers-'));
  const consumers: Partial<Record<(typeof CONSUMERS)[number], ServiceProcess>> = {};
  try {
    if (withConsumers) {
      const env = { ...pipeline.env, LOG_LEVEL: 'warn' };
      consumers.search = await startServiceProcess('search', { ...env, SEARCH_DB_PATH: join(dir, 'search.db'), SEARCH_PORT: '0' }, ['search started']);
      consumers.notifications = await startServiceProcess('notifications', { ...env, NOTIFICATIONS_PORT: '0', NOTIFICATIONS_MQTT_PASSWORD: await pipeline.token('service:notifications', 24 * 3600) }, ['notifications started']);
      consumers.audit = await startServiceProcess('audit', { ...env, AUDIT_STORE_DIR: join(dir, 'audit'), AUDIT_KEY: 'bench-consumers-audit-key-0123456789abcdef' }, ['audit started']);
      consumers.archiver = await startServiceProcess(['analytics', 'archive'], env, ['archiver started']);
    }
    const tenants = { workspaces: PARAMS.workspaces, projectsPerWorkspace: PARAMS.projectsPerWorkspace, seed: `bench-consumers-${run}` };
    await setupWorkloadTenants(pipeline.databaseUrl, tenants);
    const workload = { databaseUrl: pipeline.databaseUrl, ...tenants, concurrency: 4 };
    const warm = await runWorkload({ ...workload, ratePerSec: rate / 3, durationMs: PARAMS.warmupSeconds * 1000 });
    const perTx = warm.committedTransactions > 0 ? warm.rowChanges / warm.committedTransactions : 3;

    const scrape = async () => parseHistogram(await (await fetch(pipeline.router.metricsUrl)).text(), ROUTER_METRICS.commitToPublish);
    const scrapeCapture = async () => parseHistogram(await (await fetch(pipeline.capture.metricsUrl)).text(), CAPTURE_COMMIT_TO_KINESIS);
    const captureBefore = await scrapeCapture();
    const engines = readStackInfo().pid;
    const pids: Record<string, number> = { capture: pipeline.capture.pid!, router: pipeline.router.pid!, engines, ...Object.fromEntries(Object.entries(consumers).map(([k, s]) => [k, s.child.pid!])) };
    const cpuOf = (k: string) => (k === 'engines' ? cpuSeconds(pids[k]!) : treeCpuSeconds(pids[k]!));
    const before = await scrape();
    const cpuBefore = Object.fromEntries(Object.keys(pids).map((k) => [k, cpuOf(k)]));
    const loadSamples: number[] = [];
    const sampler = setInterval(() => loadSamples.push(loadavg()[0]!), 2_000);
    const hostBefore = hostTicks();
    const stats = await runWorkload({ ...workload, ratePerSec: rate / perTx, durationMs: PARAMS.measureSeconds * 1000 });
    const hostAfter = hostTicks();
    clearInterval(sampler);
    // The last changes published (the router's count of them reaches the workload's).
    const deadline = Date.now() + 30_000;
    let after = await scrape();
    const counted = (b: Map<number, number>) => Math.max(0, ...b.values());
    while (Date.now() < deadline && counted(bucketsSince(before, after)) < stats.rowChanges) {
      await new Promise((r) => setTimeout(r, 250));
      after = await scrape();
    }
    const cpu = Object.fromEntries(Object.keys(pids).map((k) => [k, round(cpuOf(k) - cpuBefore[k]!)]));
    const window = bucketsSince(before, after);
    return {
      p50Ms: round(histogramQuantile(window, 0.5) * 1000),
      p95Ms: round(histogramQuantile(window, 0.95) * 1000),
      captureP95Ms: round(histogramQuantile(bucketsSince(captureBefore, await scrapeCapture()), 0.95) * 1000),
      changes: stats.rowChanges,
      loadAverage: round(median(loadSamples.length ? loadSamples : [loadavg()[0]!])),
      hostBusy: round((hostAfter.busy - hostBefore.busy) / Math.max(1, hostAfter.total - hostBefore.total)),
      cpu,
    };
  } finally {
    for (const [name, s] of Object.entries(consumers)) await stopWithin(name, s, 15_000);
    await pipeline.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

type Results = Record<Scenario, { alone: RunResult[]; all: RunResult[] }>;
const noResults = (): Results => ({ uncontended: { alone: [], all: [] }, contended: { alone: [], all: [] } });

async function measure(): Promise<Results> {
  const results = noResults();
  await startStackProcess();
  try {
    // Interleaved, so that a change in the host's load falls on every series.
    for (let r = 1; r <= PARAMS.runs; r++) {
      for (const scenario of ['uncontended', 'contended'] as const) {
        for (const withConsumers of [false, true]) {
          const result = await oneRun(scenario, withConsumers, r);
          results[scenario][withConsumers ? 'all' : 'alone'].push(result);
          console.log(`bench:consumers run ${r} ${scenario} ${withConsumers ? 'with 4 consumers' : 'router alone'}: ${JSON.stringify(result)}`);
        }
      }
    }
  } finally {
    await stopStackProcess();
  }
  return results;
}

/** The per-run lines an earlier (e.g. interrupted) bench printed, back into results: BENCH_CONSUMERS_FROM_LOG=<its output>. */
function resultsFromLog(path: string): Results {
  const results = noResults();
  for (const m of readFileSync(path, 'utf8').matchAll(/^bench:consumers run \d+ (uncontended|contended) (router alone|with 4 consumers): (\{.*\})$/gm)) {
    results[m[1] as Scenario][m[2] === 'router alone' ? 'alone' : 'all'].push(JSON.parse(m[3]!) as RunResult);
  }
  return results;
}

async function main(): Promise<void> {
  const loadAtStart = loadavg()[0]!;
  const fromLog = process.env.BENCH_CONSUMERS_FROM_LOG;
  const results = fromLog ? resultsFromLog(fromLog) : await measure();
  const med = (rs: RunResult[], f: (r: RunResult) => number) => round(median(rs.map(f)));
  const series = (scenario: Scenario): Record<string, number | null> => {
    const { alone, all } = results[scenario];
    const ratios = alone.slice(0, all.length).map((a, i) => all[i]!.p95Ms / a.p95Ms);
    // The histogram's top bucket is 10 s: a p95 there is "10 s or more", no ratio can be taken.
    const saturated = [...alone, ...all].some((r) => r.p95Ms >= 10_000);
    const totalCpu = (r: RunResult) => Object.values(r.cpu).reduce((a, b) => a + b, 0);
    const m: Record<string, number | null> = {
      router_p95_ratio_with_4_consumers: saturated ? null : round(med(all, (r) => r.p95Ms) / med(alone, (r) => r.p95Ms)),
      router_p95_ratio_per_run_median: saturated ? null : round(median(ratios)),
      router_p95_at_histogram_top_runs: [...alone, ...all].filter((r) => r.p95Ms >= 10_000).length,
      router_commit_to_publish_p50_ms_alone: med(alone, (r) => r.p50Ms),
      router_commit_to_publish_p95_ms_alone: med(alone, (r) => r.p95Ms),
      router_commit_to_publish_p50_ms_with_4_consumers: med(all, (r) => r.p50Ms),
      router_commit_to_publish_p95_ms_with_4_consumers: med(all, (r) => r.p95Ms),
      capture_commit_to_kinesis_p95_ms_alone: med(alone, (r) => r.captureP95Ms),
      capture_commit_to_kinesis_p95_ms_with_4_consumers: med(all, (r) => r.captureP95Ms),
      changes_per_run: med(all, (r) => r.changes),
      load_average_alone: med(alone, (r) => r.loadAverage),
      load_average_with_4_consumers: med(all, (r) => r.loadAverage),
      host_cpu_busy_alone: med(alone, (r) => r.hostBusy),
      host_cpu_busy_with_4_consumers: med(all, (r) => r.hostBusy),
      // This bench's own processes (services + engines) in cores over the window, of the host's cpus().length.
      bench_cores_used_alone: med(alone, (r) => totalCpu(r) / PARAMS.measureSeconds),
      bench_cores_used_with_4_consumers: med(all, (r) => totalCpu(r) / PARAMS.measureSeconds),
      ...Object.fromEntries(['capture', 'router', 'engines'].map((k) => [`cpu_s_${k}_alone`, med(alone, (r) => r.cpu[k]!)])),
      ...Object.fromEntries(['capture', 'router', 'engines', ...CONSUMERS].map((k) => [`cpu_s_${k}_with_4_consumers`, med(all, (r) => r.cpu[k]!)])),
      ...Object.fromEntries(['capture', 'router', ...CONSUMERS].map((k) => [`cpu_us_per_change_${k}`, round(median(all.map((r) => (1e6 * r.cpu[k]!) / r.changes)), 0)])),
    };
    return Object.fromEntries(Object.entries(m).map(([k, v]) => [`${scenario}_${k}`, v]));
  };
  const uncontended = series('uncontended');
  // The target's figure (≤ 1.2): readers sharing the stream must not starve the router, measured
  // where the host has CPU to spare — none when it had not (a shared host busy with other work).
  const spareCpu = [uncontended.uncontended_host_cpu_busy_alone, uncontended.uncontended_host_cpu_busy_with_4_consumers].every((b) => b !== null && b !== undefined && b < HOST_BUSY_LIMIT);
  const metrics: Record<string, number | null> = {
    router_p95_ratio_with_4_consumers: spareCpu ? uncontended.uncontended_router_p95_ratio_with_4_consumers! : null,
    ...uncontended,
    ...series('contended'),
  };
  const path = writeBenchResult(
    'consumers',
    {
      ...PARAMS,
      cores: cpus().length,
      runs_done: Object.fromEntries((['uncontended', 'contended'] as const).flatMap((sc) => [[`${sc}_alone`, results[sc].alone.length], [`${sc}_with_4_consumers`, results[sc].all.length]])),
      ...(fromLog ? { from_log: 'aggregated from the per-run lines of an earlier bench:consumers output (BENCH_CONSUMERS_FROM_LOG), not measured now' } : { load_average_at_start: round(loadAtStart) }),
      target_figure: `router_p95_ratio_with_4_consumers = uncontended_router_p95_ratio_with_4_consumers when the host had CPU to spare in those runs (median host_cpu_busy_* < ${HOST_BUSY_LIMIT}), else null. At the uncontended rate on a quiet host a rise measures the readers sharing the stream (the engines process they all read from, the read budgets), not four more processes on 2 cores; contended_* is the same at the contended rate, where capture and the router wait for CPU (capture_commit_to_kinesis_p95_*)`,
      latency: "the router's commit → publish histogram (commit time to the broker's PUBACK), every project published (ROUTER_SUBSCRIPTION_EVENTS=off); not through an SDK subscriber",
      read_budgets: 'defaults: router polling at 2 calls/s + 1 MB/s per shard, each consumer 0.75 calls/s + 0.25 MB/s (kinesalite enforces no limit); production reads the router by fan-out (ROUTER_READER=fanout), kinesalite has none',
      host: 'shared with other sessions running tests: figures include their load (host_cpu_busy_* counts every process on the host)',
      cpu_note: 'cpu_s_* over the measured window; engines = kinesalite + dynalite (one process); cpu_us_per_change_* from the with-consumers runs; bench_cores_used_* = the sum of cpu_s_* / measured seconds',
    },
    metrics,
  );
  console.log(`bench:consumers: ${JSON.stringify(metrics)}\nwritten to ${path}`);
}

await main();
