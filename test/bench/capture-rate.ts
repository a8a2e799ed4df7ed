// `npm run bench:capture-rate` → test/bench/results/capture-rate.json. Capture's CPU per change at a
// moderate fixed rate (bench:e2e's 1,000 changes/s of the workload generator's mixed transactions,
// ~3 changes each, 10 workspaces), where its fixed costs — a PutRecords request per linger, the
// acknowledgement and statistics timers, metrics — weigh most, and the bytes per change it puts on
// the stream. Capture alone (no router, no subscribers), as its own process, against an ephemeral
// stack (kinesalite in this process), variants alternating round by round (see test/bench/README.md
// "capture-rate"): the CPU figure is capture's own (/proc), so the host's load moves it less than
// wall-clock figures, and interleaving spreads what it does move over every variant alike.
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import pg from 'pg';
import { migrate } from '../../db/migrate.js';
import { runWorkload, setupWorkloadTenants } from '../../db/workload.js';
import { stackEnv } from '../../lib/stack-info.js';
import { startStack } from '../../infra/local/stack.js';
import { startServiceProcess } from '../support/service-process.js';
import { benchParam, cpuSeconds, cpuUsPerChange, histogramPercentile, median, subtractHistograms, writeBenchResult } from './report.js';

const PARAMS = {
  changesPerS: benchParam('BENCH_CAPTURE_RATE', 1000),
  seconds: benchParam('BENCH_CAPTURE_RATE_SECONDS', 15),
  warmupSeconds: benchParam('BENCH_CAPTURE_RATE_WARMUP_SECONDS', 5),
  rounds: benchParam('BENCH_ROUNDS', 3),
  workspaces: 10,
  projectsPerWorkspace: 5,
  connections: 4,
};
/**
 * BENCH_CAPTURE_VARIANTS: `name=compression[/lingerMs][@checkout]`, comma-separated; `/lingerMs`
 * sets CAPTURE_LINGER_MS (capture's default otherwise); `@checkout` runs capture from another
 * checkout of the repository (with its node_modules), e.g. the parent commit for an interleaved
 * before/after comparison. Default: this checkout without and with zstd.
 */
interface Variant {
  name: string;
  compression: string;
  lingerMs?: number;
  root?: string;
}
const VARIANTS: Variant[] = (process.env.BENCH_CAPTURE_VARIANTS ?? 'none=none,zstd=zstd').split(',').map((spec) => {
  const m = /^([\w-]+)=(none|gzip|zstd)(?:\/(\d+))?(?:@(.+))?$/.exec(spec.trim());
  if (!m) throw new Error(`BENCH_CAPTURE_VARIANTS: cannot read "${spec}" (name=compression[/lingerMs][@checkout])`);
  return { name: m[1]!, compression: m[2]!, ...(m[3] ? { lingerMs: Number(m[3]) } : {}), ...(m[4] ? { root: resolve(m[4]) } : {}) };
});
const COMMIT_TO_KINESIS = 'taskflow_capture_commit_to_kinesis_seconds';
/** BENCH_CAPTURE_NODE_ARGS profiles the capture process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof". */
const CAPTURE_NODE_ARGS = (process.env.BENCH_CAPTURE_NODE_ARGS ?? '').split(' ').filter(Boolean);
const SLOT = 'bench_capture_rate';
const PUBLICATION = 'taskflow_capture';

/** A sum from Prometheus text (a histogram's _sum or _count, a counter), whatever its labels; 0 when absent. */
function metricSum(text: string, name: string): number {
  let total = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) total += Number(m[1]);
  return total;
}

async function query(url: string, sql: string, params: unknown[] = []): Promise<string | undefined> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<{ v: string }>(sql, params)).rows[0]?.v;
  } finally {
    await c.end();
  }
}

async function caughtUp(url: string): Promise<void> {
  const target = await query(url, 'SELECT pg_current_wal_lsn()::text AS v');
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const ok = await query(url, 'SELECT (confirmed_flush_lsn >= $2::pg_lsn)::text AS v FROM pg_replication_slots WHERE slot_name = $1', [SLOT, target]);
    if (ok === 'true') return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('capture did not catch up in 120 s');
}

interface Run {
  cpuUsPerChange: number;
  bytesPerChange: number;
  requestsPerS: number;
  changesPerS: number;
  /** Commit time → Kinesis acknowledgement of the whole transaction (capture's histogram, interpolated). */
  commitToKinesisP50Ms: number;
  commitToKinesisP95Ms: number;
}

async function main(): Promise<void> {
  const stack = await startStack({ ephemeral: true, shardCount: 4 });
  const loadStart = loadavg()[0]!;
  try {
    const url = stack.info.postgres.url;
    await migrate(url);
    const tenants = { workspaces: PARAMS.workspaces, projectsPerWorkspace: PARAMS.projectsPerWorkspace, seed: 'bench-capture-rate' };
    await setupWorkloadTenants(url, tenants);
    await query(url, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')::text AS v", [SLOT]);
    const env = { ...stackEnv(stack.info), TASKFLOW_ENV: 'development', CAPTURE_SLOT: SLOT, CAPTURE_PUBLICATION: PUBLICATION, CAPTURE_ACCEPT_SLOT_GAP: 'true' };
    const workload = { databaseUrl: url, ...tenants, concurrency: PARAMS.connections };
    let changesPerTx = 3;
    const runs = new Map<string, Run[]>(VARIANTS.map((v) => [v.name, []]));
    for (let round = 0; round < PARAMS.rounds; round++) {
      // Alternating order round by round, so no variant always follows the same one.
      const order = round % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
      for (const v of order) {
        await query(url, 'SELECT pg_replication_slot_advance($1, pg_current_wal_lsn())::text AS v', [SLOT]);
        const cap = await startServiceProcess('capture', { ...env, CAPTURE_COMPRESSION: v.compression, ...(v.lingerMs === undefined ? {} : { CAPTURE_LINGER_MS: String(v.lingerMs) }) }, ['metrics endpoint', 'streaming from the slot'], { nodeArgs: CAPTURE_NODE_ARGS, ...(v.root ? { root: v.root } : {}) });
        try {
          const metricsUrl = String(cap.entries['metrics endpoint']!.url);
          const warm = await runWorkload({ ...workload, ratePerSec: PARAMS.changesPerS / changesPerTx, durationMs: PARAMS.warmupSeconds * 1000 });
          if (warm.committedTransactions > 0) changesPerTx = warm.rowChanges / warm.committedTransactions;
          await caughtUp(url);
          const before = await (await fetch(metricsUrl)).text();
          const cpu0 = cpuSeconds(cap.child.pid!);
          const measured = await runWorkload({ ...workload, ratePerSec: PARAMS.changesPerS / changesPerTx, durationMs: PARAMS.seconds * 1000 });
          await caughtUp(url);
          const cpu = cpuSeconds(cap.child.pid!) - cpu0;
          const after = await (await fetch(metricsUrl)).text();
          const delta = (name: string) => metricSum(after, name) - metricSum(before, name);
          const run: Run = {
            cpuUsPerChange: cpuUsPerChange(cpu, measured.rowChanges),
            bytesPerChange: Math.round((delta('taskflow_capture_batch_bytes_sum') / measured.rowChanges) * 10) / 10,
            requestsPerS: Math.round((delta('taskflow_capture_batch_bytes_count') / (measured.elapsedMs / 1000)) * 10) / 10,
            changesPerS: Math.round(measured.rowChanges / (measured.elapsedMs / 1000)),
            commitToKinesisP50Ms: Math.round(histogramPercentile(subtractHistograms(after, before, COMMIT_TO_KINESIS), COMMIT_TO_KINESIS, 0.5) * 10) / 10,
            commitToKinesisP95Ms: Math.round(histogramPercentile(subtractHistograms(after, before, COMMIT_TO_KINESIS), COMMIT_TO_KINESIS, 0.95) * 10) / 10,
          };
          runs.get(v.name)!.push(run);
          console.log(`round ${round + 1} ${v.name}: ${JSON.stringify(run)} load ${loadavg()[0]!.toFixed(1)}`);
        } finally {
          await cap.stop();
        }
      }
    }
    const metrics: Record<string, number> = {};
    for (const v of VARIANTS) {
      const r = runs.get(v.name)!;
      metrics[`${v.name}_cpu_us_per_change`] = median(r.map((x) => x.cpuUsPerChange));
      metrics[`${v.name}_bytes_per_change`] = median(r.map((x) => x.bytesPerChange));
      metrics[`${v.name}_put_requests_per_s`] = median(r.map((x) => x.requestsPerS));
      metrics[`${v.name}_commit_to_kinesis_p50_ms`] = median(r.map((x) => x.commitToKinesisP50Ms));
      metrics[`${v.name}_commit_to_kinesis_p95_ms`] = median(r.map((x) => x.commitToKinesisP95Ms));
    }
    const params = {
      ...PARAMS,
      changesPerTransaction: Math.round(changesPerTx * 100) / 100,
      variants: VARIANTS.map((v) => ({ ...v, root: v.root ? 'another checkout' : 'this checkout' })),
      capture: 'separate process (taskflow capture) with its defaults but compression (and CAPTURE_LINGER_MS where a variant sets it); kinesalite in the bench process; bytes: PutRecords data after aggregation and compression',
      loadavg1m: { start: Math.round(loadStart * 10) / 10, end: Math.round(loadavg()[0]! * 10) / 10 },
      raw: Object.fromEntries(runs),
    };
    console.log(metrics);
    console.log(`wrote ${writeBenchResult('capture-rate', params, metrics)}`);
  } finally {
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
