// bench:consumers — does reading the change stream with more consumers slow the router down?
// (test/bench/README.md "consumers"). The project's workload at BENCH_CONSUMERS_RATE row
// changes/s through capture and the router (each its own process, their production defaults and
// read budgets), first with the router as the stream's only reader, then with search,
// notifications, audit and the analytics archiver reading the same stream (each its own process,
// its default read budget). Measured: the router's commit → publish p95 (its own histogram:
// commit time to the broker's PUBACK, every project published, ROUTER_SUBSCRIPTION_EVENTS=off),
// the ratio of the two, and CPU seconds per process.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
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

interface RunResult {
  p50Ms: number;
  p95Ms: number;
  /** Capture's part of it: commit → put on Kinesis (its histogram), p95. */
  captureP95Ms: number;
  changes: number;
  loadAverage: number;
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

async function oneRun(withConsumers: boolean, run: number): Promise<RunResult> {
  const name = `bench-consumers-${withConsumers ? 'all' : 'alone'}-${run}`;
  const pipeline = await startTestPipeline({ prefix: name, serviceDefaults: true, shards: PARAMS.shards, services: 'processes', env: { ROUTER_SUBSCRIPTION_EVENTS: 'off' }, logLevel: 'silent' });
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
    const warm = await runWorkload({ ...workload, ratePerSec: PARAMS.targetChangesPerS / 3, durationMs: PARAMS.warmupSeconds * 1000 });
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
    const stats = await runWorkload({ ...workload, ratePerSec: PARAMS.targetChangesPerS / perTx, durationMs: PARAMS.measureSeconds * 1000 });
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
      cpu,
    };
  } finally {
    for (const [name, s] of Object.entries(consumers)) await stopWithin(name, s, 15_000);
    await pipeline.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const loadAtStart = loadavg()[0]!;
  await startStackProcess();
  const alone: RunResult[] = [];
  const all: RunResult[] = [];
  try {
    // Interleaved, so that a change in the host's load falls on both.
    for (let r = 1; r <= PARAMS.runs; r++) {
      alone.push(await oneRun(false, r));
      console.log(`bench:consumers run ${r} router alone: ${JSON.stringify(alone.at(-1))}`);
      all.push(await oneRun(true, r));
      console.log(`bench:consumers run ${r} with 4 consumers: ${JSON.stringify(all.at(-1))}`);
    }
  } finally {
    await stopStackProcess();
  }
  const med = (rs: RunResult[], f: (r: RunResult) => number) => round(median(rs.map(f)));
  const ratios = alone.map((a, i) => all[i]!.p95Ms / a.p95Ms);
  const saturated = [...alone, ...all].some((r) => r.p95Ms >= 10_000);
  const metrics: Record<string, number | null> = {
    // The histogram's top bucket is 10 s: a p95 there is "10 s or more", no ratio can be taken.
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
    ...Object.fromEntries(['capture', 'router', 'engines'].map((k) => [`cpu_s_${k}_alone`, med(alone, (r) => r.cpu[k]!)])),
    ...Object.fromEntries(['capture', 'router', 'engines', ...CONSUMERS].map((k) => [`cpu_s_${k}_with_4_consumers`, med(all, (r) => r.cpu[k]!)])),
    ...Object.fromEntries(['capture', 'router', ...CONSUMERS].map((k) => [`cpu_us_per_change_${k}`, round(median(all.map((r) => (1e6 * r.cpu[k]!) / r.changes)), 0)])),
  };
  const path = writeBenchResult(
    'consumers',
    {
      ...PARAMS,
      runs_done: alone.length,
      load_average_at_start: round(loadAtStart),
      latency: "the router's commit → publish histogram (commit time to the broker's PUBACK), every project published (ROUTER_SUBSCRIPTION_EVENTS=off); not through an SDK subscriber",
      read_budgets: 'defaults: router 2 calls/s + 1 MB/s per shard, each consumer 0.75 calls/s + 0.25 MB/s (kinesalite enforces no limit)',
      host: 'shared with other sessions running tests: figures include their load',
      cpu_note: 'cpu_s_* over the measured window; engines = kinesalite + dynalite (one process); cpu_us_per_change_* from the with-consumers runs',
    },
    metrics,
  );
  console.log(`bench:consumers: ${JSON.stringify(metrics)}\nwritten to ${path}`);
}

await main();
