// bench:analytics — the analytics path under sustained load (test/bench/README.md "analytics"):
// the project's workload on Postgres at BENCH_TX_PER_SEC for BENCH_SECONDS, with capture, the
// archiver and the loader each in its own process, the engines (and the Firehose stand-in) in
// `taskflow stack`'s. Measured from the warehouse itself: commit → queryable per event
// (raw_events.loaded_at, the load transaction that also MERGEs the curated tables, minus the
// event's commit time), the loader's rows/s (its own load-time histogram), lost and duplicated
// events against the WAL (test_decoding), and CPU seconds per process.
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { DuckDbWarehouse } from '../../analytics/warehouse/duckdb.js';
import { ANALYTICS_METRICS, LOADER_METRICS } from '../../analytics/metrics.js';
import { runWorkload } from '../../db/workload.js';
import { tableEnvVar } from '../../lib/config.js';
import startStackProcess from '../setup/global-setup.mjs';
import stopStackProcess from '../setup/global-teardown.mjs';
import { startHistoryRecorder } from '../support/history.js';
import { startServiceProcess, type ServiceProcess } from '../support/service-process.js';
import { captureDatabaseUrl, createTestDatabase, createTestStream, createTestTables, stack, testStackEnv, uniqueName } from '../support/stack.js';
import { benchParam, cpuSecondsWithReaped, median, writeBenchResult } from './report.js';

const PARAMS = { txPerSec: benchParam('BENCH_TX_PER_SEC', 350), seconds: benchParam('BENCH_SECONDS', 60), runs: benchParam('BENCH_RUNS', 1), shards: 4 };
const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;


function metricValue(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

interface RunResult {
  changes: number;
  changesPerS: number;
  p50: number;
  p95: number;
  max: number;
  loaderRowsPerS: number;
  loaderRowsPerCpuS: number;
  lost: number;
  duplicates: number;
  archiveRepeats: number;
  /** p50 / p95 of each stage (seconds), see stageBreakdown. */
  stages: Record<string, number>;
  loadAverage: number;
  cpu: Record<string, number>;
  cpuPerChangeMs: number;
  /** Per change: the archive's bytes as stored (gzip) and as NDJSON; the Firehose records the archiver put and their bytes. */
  archiveBytesPerChange: number;
  ndjsonBytesPerChange: number;
  firehoseRecordsPerChange: number;
  firehoseBytesPerRecord: number;
}

/** The archive's objects: bytes as stored and gunzipped. */
function archiveBytes(dir: string): { stored: number; ndjson: number } {
  let stored = 0;
  let ndjson = 0;
  for (const f of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!f.isFile()) continue;
    const body = readFileSync(join(f.parentPath, f.name));
    stored += body.length;
    ndjson += gunzipSync(body).length;
  }
  return { stored, ndjson };
}

const quantile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;

/**
 * Where commit → queryable goes, per event: commit → its object's delivery by Firehose (the
 * object file's mtime: capture, Kinesis, the archiver and the Firehose buffer), delivery → the
 * loader's transaction (loaded_at: the loader's poll, listing and queue behind earlier loads).
 */
function stageBreakdown(rows: readonly Record<string, unknown>[], archiveDir: string): Record<string, number> {
  const delivered = new Map<string, number>();
  const upstream: number[] = [];
  const pickup: number[] = [];
  for (const r of rows) {
    const key = String(r.object_key);
    let at = delivered.get(key);
    if (at === undefined) delivered.set(key, (at = statSync(join(archiveDir, key)).mtimeMs / 1000));
    upstream.push(at - Number(r.t));
    pickup.push(Number(r.l) - at);
  }
  upstream.sort((a, b) => a - b);
  pickup.sort((a, b) => a - b);
  return {
    commit_to_delivered_p50_s: round(quantile(upstream, 0.5)),
    commit_to_delivered_p95_s: round(quantile(upstream, 0.95)),
    delivered_to_loaded_p50_s: round(quantile(pickup, 0.5)),
    delivered_to_loaded_p95_s: round(quantile(pickup, 0.95)),
  };
}

async function oneRun(run: number): Promise<RunResult> {
  const info = stack();
  const dbUrl = await createTestDatabase(`bench_analytics_${run}`);
  const [stream, tables] = await Promise.all([createTestStream(`bench-analytics-${run}`, PARAMS.shards), createTestTables(`bench-analytics-${run}`, ['leases', 'dlq', 'checkpoints'])]);
  const warehousePath = join(info.dataDir, `warehouse-bench-${run}.duckdb`);
  // Every run's Firehose delivers under the same prefix: a run's loader must not load the
  // previous runs' objects first (their drain saw every one of their events delivered).
  rmSync(join(info.s3.dir, 'taskflow-archive', info.firehose.prefix), { recursive: true, force: true });
  const env: Record<string, string> = {
    ...testStackEnv(),
    DATABASE_URL: captureDatabaseUrl(dbUrl), // capture's replication role; the workload writes as the application
    CHANGE_STREAM_NAME: stream,
    [tableEnvVar('leases')]: tables.leases!,
    [tableEnvVar('dlq')]: tables.dlq!,
    [tableEnvVar('checkpoints')]: tables.checkpoints!,
    CAPTURE_SLOT: uniqueName(`bench_analytics_${run}`),
    // Local settings, as `npm start` would use for a developer: poll often, the stack's 1 s Firehose buffer.
    KINESIS_POLL_INTERVAL_MS: '50',
    KINESIS_MIN_CALL_SPACING_MS: '50',
    ARCHIVE_PREFIX: `${info.firehose.prefix}`,
    WAREHOUSE_PATH: warehousePath,
    LOADER_POLL_INTERVAL_MS: '100',
    DQ_INTERVAL_MS: '0',
    METRICS_PORT: '0',
  };
  const history = await startHistoryRecorder(dbUrl, { slotName: uniqueName('bench_analytics_truth') });
  const services: Record<string, ServiceProcess> = {};
  try {
    services.capture = await startServiceProcess('capture', env, ['metrics endpoint', 'streaming from the slot']);
    services.archiver = await startServiceProcess(['analytics', 'archive'], env, ['archiver started']);
    services.loader = await startServiceProcess(['analytics', 'load'], env, ['loader started']);
    const loaderMetricsUrl = String(services.loader.entries['loader started']!.metrics);
    const archiverMetricsUrl = String(services.archiver.entries['archiver started']!.metrics);
    const pids = { capture: services.capture.child.pid!, archiver: services.archiver.child.pid!, loader: services.loader.child.pid!, stack: info.pid };
    const cpuBefore = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSecondsWithReaped(pid)]));
    const benchCpuBefore = process.cpuUsage();
    const started = Date.now();
    const loadSamples: number[] = [];
    const sampler = setInterval(() => loadSamples.push(loadavg()[0]!), 5_000);
    const stats = await runWorkload({ databaseUrl: dbUrl, ratePerSec: PARAMS.txPerSec, durationMs: PARAMS.seconds * 1000, workspaces: 8, projectsPerWorkspace: 4, seed: 100 + run, concurrency: 4 });
    clearInterval(sampler);
    const truth = await history.collect();
    const workloadSeconds = (Date.now() - started) / 1000;
    // Drain: every committed change queryable (the loader's load log says so), or 120 s.
    const deadline = Date.now() + 120_000;
    let loadedEvents = 0;
    while (Date.now() < deadline) {
      const text = await (await fetch(loaderMetricsUrl)).text();
      loadedEvents = text
        .split('\n')
        .filter((l) => l.startsWith(`${LOADER_METRICS.events}{`) && l.includes('new="true"'))
        .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
      if (loadedEvents >= truth.length) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const cpu = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, round(cpuSecondsWithReaped(pid) - cpuBefore[k]!)]));
    const benchCpu = process.cpuUsage(benchCpuBefore);
    cpu.bench_workload = round((benchCpu.user + benchCpu.system) / 1e6);
    const metricsText = await (await fetch(loaderMetricsUrl)).text();
    const loadSeconds = metricValue(metricsText, `${LOADER_METRICS.loadSeconds}_sum`);
    const archiverText = await (await fetch(archiverMetricsUrl)).text();
    const firehose = { records: metricValue(archiverText, ANALYTICS_METRICS.archiverFirehoseRecords), bytes: metricValue(archiverText, ANALYTICS_METRICS.archiverFirehoseBytes) };
    await services.loader.stop();
    delete services.loader;

    const warehouse = await DuckDbWarehouse.open(warehousePath);
    try {
      const ids = new Set((await warehouse.query('SELECT id FROM raw_events')).map((r) => String(r.id)));
      const lost = truth.filter((e) => !ids.has(e.id)).length;
      const [counts] = await warehouse.query('SELECT (SELECT count(*) FROM raw_events)::INTEGER AS raw, (SELECT count(DISTINCT id) FROM raw_events)::INTEGER AS distinct_ids, (SELECT sum(events) FROM load_log)::INTEGER AS archived');
      const [lat] = await warehouse.query(`SELECT quantile_cont(s, 0.5) AS p50, quantile_cont(s, 0.95) AS p95, max(s) AS max FROM (SELECT epoch(loaded_at - time) AS s FROM raw_events)`);
      const changes = truth.length;
      const perEvent = await warehouse.query('SELECT object_key, epoch(time) AS t, epoch(loaded_at) AS l FROM raw_events');
      const archive = archiveBytes(join(info.s3.dir, 'taskflow-archive', info.firehose.prefix));
      return {
        changes,
        changesPerS: round(stats.rowChanges / workloadSeconds, 0),
        p50: round(Number(lat!.p50)),
        p95: round(Number(lat!.p95)),
        max: round(Number(lat!.max)),
        loaderRowsPerS: round(Number(counts!.archived) / loadSeconds, 0),
        // What the loader would do with a core of its own: its rows per CPU second.
        loaderRowsPerCpuS: round(Number(counts!.archived) / cpu.loader!, 0),
        lost,
        duplicates: Number(counts!.raw) - Number(counts!.distinct_ids),
        archiveRepeats: Number(counts!.archived) - Number(counts!.raw),
        stages: stageBreakdown(perEvent, join(info.s3.dir, 'taskflow-archive')),
        loadAverage: round(median(loadSamples.length ? loadSamples : [loadavg()[0]!])),
        cpu,
        cpuPerChangeMs: round((1000 * (cpu.capture! + cpu.archiver! + cpu.loader!)) / changes, 3),
        archiveBytesPerChange: round(archive.stored / changes, 0),
        ndjsonBytesPerChange: round(archive.ndjson / changes, 0),
        firehoseRecordsPerChange: round(firehose.records / changes, 4),
        firehoseBytesPerRecord: firehose.records > 0 ? round(firehose.bytes / firehose.records, 0) : 0,
      };
    } finally {
      await warehouse.close();
    }
  } finally {
    for (const s of Object.values(services)) await s.stop();
    await history.stop();
  }
}

async function main(): Promise<void> {
  const loadAtStart = loadavg()[0]!;
  await startStackProcess();
  const runs: RunResult[] = [];
  try {
    for (let r = 1; r <= PARAMS.runs; r++) {
      const result = await oneRun(r);
      console.log(`bench:analytics run ${r}: ${JSON.stringify(result)}`);
      runs.push(result);
    }
  } finally {
    await stopStackProcess();
  }
  const med = (key: keyof Omit<RunResult, 'cpu' | 'stages'>) => round(median(runs.map((r) => r[key] as number)), 3);
  const cpuKeys = Object.keys(runs[0]!.cpu);
  const metrics: Record<string, number | null> = {
    changes_per_s: med('changesPerS'),
    changes: med('changes'),
    commit_to_warehouse_p50_s: med('p50'),
    commit_to_warehouse_p95_s: med('p95'),
    commit_to_warehouse_max_s: med('max'),
    loader_rows_per_s: med('loaderRowsPerS'),
    loader_rows_per_cpu_s: med('loaderRowsPerCpuS'),
    lost: Math.max(...runs.map((r) => r.lost)),
    duplicates: Math.max(...runs.map((r) => r.duplicates)),
    archive_repeats: med('archiveRepeats'),
    cpu_ms_per_change: med('cpuPerChangeMs'),
    archive_bytes_per_change: med('archiveBytesPerChange'),
    ndjson_bytes_per_change: med('ndjsonBytesPerChange'),
    firehose_records_per_change: med('firehoseRecordsPerChange'),
    firehose_bytes_per_record: med('firehoseBytesPerRecord'),
    load_average_during: med('loadAverage'),
    ...Object.fromEntries(Object.keys(runs[0]!.stages).map((k) => [k, round(median(runs.map((r) => r.stages[k]!)))])),
    ...Object.fromEntries(['capture', 'archiver', 'loader'].map((k) => [`cpu_us_per_change_${k}`, round(median(runs.map((r) => (1e6 * r.cpu[k]!) / r.changes)), 0)])),
    ...Object.fromEntries(cpuKeys.map((k) => [`cpu_s_${k}`, round(median(runs.map((r) => r.cpu[k]!)))])),
  };
  const path = writeBenchResult(
    'analytics',
    {
      ...PARAMS,
      load_average_at_start: round(loadAtStart),
      host: 'shared with other sessions running tests: figures include their load',
      firehose_buffering: 'the stack stand-in: 8 MB / 1 s',
      cpu_note: 'cpu_s_stack = kinesalite + dynalite + the Firehose stand-in (one process); cpu_ms_per_change counts capture + archiver + loader',
    },
    metrics,
  );
  console.log(`bench:analytics: ${JSON.stringify(metrics)}\nwritten to ${path}`);
}

await main();
