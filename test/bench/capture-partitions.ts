// `npm run bench:capture-partitions` → test/bench/results/capture-partitions.json. Capture in 1 vs
// 2 partitions (capture/partitions.ts) on this machine (test/bench/README.md "capture-partitions"):
// drain throughput, CPU seconds per change of each walsender (every walsender decodes all of the
// WAL; its row filter drops the other partitions' rows after decoding) and of each capture
// process, and what the readers cost the writers (saturated TPS, p95 commit latency at a fixed rate).
//
// One logical Postgres 17 (the local stack's), pgbench (PG15 client) with one-row INSERTs into
// tasks over WORKSPACES workspaces, 8 clients. As in bench:capture, Postgres and pgbench are pinned
// to CPU 0 and the readers (capture processes, kinesalite in this process) to CPU 1 (BENCH_PIN=0
// shares both); a walsender is a Postgres backend and so stays on CPU 0 with the writers, unless a
// configuration below moves it to CPU 1 (taskset on pg_replication_slots.active_pid), which is how
// production has it: the decoding cost on the database's cores, the writers' latency measured
// beside it.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { partitionName, workspacePartition } from '../../capture/partitions.js';
import { migrate } from '../../db/migrate.js';
import { setupWorkloadTenants } from '../../db/workload.js';
import { parseLsn } from '../../lib/event-id.js';
import { stackEnv } from '../../lib/stack-info.js';
import { startStack } from '../../infra/local/stack.js';
import { type ServiceProcess, startServiceProcess } from '../support/service-process.js';
import { cpuSeconds, cpuUsPerChange, median, writeBenchResult } from './report.js';
import { DB_CPU, OTHER_CPU, pinCluster, taskset } from './cpu-pinning.js';
import { fixedRateP95, pgbench } from './pgbench.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const FIXED_RATE = Number(process.env.BENCH_FIXED_RATE ?? 2000);
const BACKLOG_TX = Number(process.env.BENCH_BACKLOG_TX ?? 100_000);
const WORKSPACES = 16;
const CLIENTS = 8;
const COMPRESSION = process.env.BENCH_CAPTURE_COMPRESSION ?? 'zstd';
const PIN = process.env.BENCH_PIN !== '0';
const SLOT = 'bench_parts';
const CAPTURE_READY = ['metrics endpoint', 'streaming from the slot'];

/** Reader configurations of the write-overhead runs: partitions, and where the walsenders run. */
const CONFIGS = [
  { name: 'none', partitions: 0, walsenderCpu: DB_CPU },
  { name: 'p1', partitions: 1, walsenderCpu: DB_CPU },
  { name: 'p1_walsender_cpu1', partitions: 1, walsenderCpu: OTHER_CPU },
  { name: 'p2', partitions: 2, walsenderCpu: DB_CPU },
  { name: 'p2_walsender_cpu1', partitions: 2, walsenderCpu: OTHER_CPU },
] as const;

let admin: pg.Client;
const scalar = async (sql: string, params: unknown[] = []) => (await admin.query<{ v: string }>(sql, params)).rows[0]?.v ?? '';
const walLsn = async () => parseLsn(await scalar('SELECT pg_current_wal_lsn()::text AS v'));

const slotsOf = (partitions: number) => Array.from({ length: partitions }, (_, index) => partitionName(SLOT, { index, count: partitions }));

async function slotsCaughtUp(slots: readonly string[], target: bigint, timeoutMs = 600_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await admin.query<{ lsn: string | null }>('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = ANY($1)', [slots]);
    if (r.rows.length === slots.length && r.rows.every((x) => x.lsn && parseLsn(x.lsn) >= target)) return performance.now();
    if (Date.now() > deadline) throw new Error(`slots ${slots.join(', ')} did not reach the target in time`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

interface Readers {
  captures: ServiceProcess[];
  /** Each capture's CPU seconds and the clock when it was streaming (its own start-up left out). */
  readyAt: { cpu: number; at: number }[];
  walsenders: number[];
  stop(): Promise<void>;
}

/** N capture processes (one per partition), streaming; their walsenders found by slot and placed on `walsenderCpu`. */
async function startReaders(env: Record<string, string>, partitions: number, walsenderCpu: string): Promise<Readers> {
  const started = await Promise.all(
    Array.from({ length: partitions }, async (_, index) => {
      const capture = await startServiceProcess('capture', { ...env, CAPTURE_PARTITIONS: String(partitions), CAPTURE_PARTITION: String(index), CAPTURE_INSTANCE_ID: `bench-${partitions}-${index}` }, CAPTURE_READY);
      return { capture, ready: { cpu: cpuSeconds(capture.child.pid!), at: performance.now() } };
    }),
  );
  const captures = started.map((s) => s.capture);
  const walsenders: number[] = [];
  for (const slot of slotsOf(partitions)) {
    const pid = Number(await scalar('SELECT active_pid::text AS v FROM pg_replication_slots WHERE slot_name = $1', [slot]));
    if (!pid) throw new Error(`no walsender on ${slot}`);
    if (PIN) taskset(walsenderCpu, pid);
    walsenders.push(pid);
  }
  return { captures, readyAt: started.map((s) => s.ready), walsenders, stop: async () => void (await Promise.all(captures.map((c) => c.stop()))) };
}

const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-capture-partitions-'));
  chmodSync(dir, 0o755);
  if (PIN) taskset(OTHER_CPU, process.pid);
  const load = [loadavg()];
  console.log('bench:capture-partitions: starting the stack');
  const stack = await startStack({ ephemeral: true, shardCount: 4 });
  try {
    if (PIN) pinCluster(stack.info.postgres.dataDir);
    admin = new pg.Client({ connectionString: stack.info.postgres.url });
    await admin.connect();
    const port = stack.info.postgres.port;
    await migrate(stack.info.postgres.url);
    const tenants = await setupWorkloadTenants(stack.info.postgres.url, { workspaces: WORKSPACES, projectsPerWorkspace: 1, seed: 'bench-capture-partitions', tasksPerProject: 1 });
    const scripts = tenants.workspaces.map((w, i) => {
      const file = join(dir, `insert-${i}.sql`);
      writeFileSync(file, `INSERT INTO tasks (id, workspace_id, project_id, title) VALUES (gen_random_uuid(), '${w.id}', '${w.projects[0]}', 'bench');\n`);
      return file;
    });
    // Development mode: capture runs as the stack's superuser and creates the partitions' publications.
    const env = { ...stackEnv(stack.info), TASKFLOW_ENV: 'development', CAPTURE_SLOT: SLOT, CAPTURE_ACK_INTERVAL_MS: '200', CAPTURE_ACCEPT_SLOT_GAP: 'true', CAPTURE_COMPRESSION: COMPRESSION };
    const allSlots = [...slotsOf(1), ...slotsOf(2)];
    // First starts create the slots; each run then starts with its slots at the WAL's end.
    await (await startReaders(env, 1, DB_CPU)).stop();
    await (await startReaders(env, 2, DB_CPU)).stop();
    const advanceAll = async () => {
      for (const slot of allSlots) await scalar('SELECT pg_replication_slot_advance($1, pg_current_wal_lsn())::text AS v', [slot]);
    };

    const writes = Object.fromEntries(CONFIGS.map((c) => [c.name, { tps: [] as number[], p95: [] as number[] }]));
    const drains = { 1: [] as DrainRun[], 2: [] as DrainRun[] };
    for (let r = 0; r < ROUNDS; r++) {
      console.log(`round ${r + 1}/${ROUNDS} (load ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
      load.push(loadavg());
      // Interleaved, order reversed every other round, so drift in the shared host's load falls on all alike.
      for (const c of r % 2 === 0 ? CONFIGS : [...CONFIGS].reverse()) {
        await advanceAll();
        const readers = c.partitions ? await startReaders(env, c.partitions, c.walsenderCpu) : undefined;
        writes[c.name]!.tps.push((await pgbench({ port, scripts, clients: CLIENTS, pin: PIN }, ['-T', String(SECONDS)])).tps);
        if (readers) await slotsCaughtUp(slotsOf(c.partitions), await walLsn());
        writes[c.name]!.p95.push(await fixedRateP95({ port, scripts, clients: CLIENTS, pin: PIN }, { seconds: SECONDS, rate: FIXED_RATE, dir }));
        if (readers) {
          await slotsCaughtUp(slotsOf(c.partitions), await walLsn());
          await readers.stop();
        }
        console.log(`  ${c.name}: ${round(writes[c.name]!.tps.at(-1)!, 0)} tx/s saturated, p95 ${round(writes[c.name]!.p95.at(-1)!)} ms at ${FIXED_RATE}/s`);
      }
      for (const n of r % 2 === 0 ? ([1, 2] as const) : ([2, 1] as const)) {
        const d = await drain(env, n, port, scripts);
        drains[n].push(d);
        console.log(`  drain p${n}: ${round(d.events / d.seconds, 0)} events/s, walsender CPU s ${d.walsenderCpu.map((x) => round(x)).join(', ')}, capture CPU s ${d.captureCpu.map((x) => round(x)).join(', ')}`);
      }
    }
    load.push(loadavg());

    const tpsNone = median(writes.none!.tps);
    const p95None = median(writes.none!.p95);
    const metrics: Record<string, number | null> = {};
    for (const c of CONFIGS.slice(1)) {
      metrics[`${c.name}_write_overhead_pct`] = round(((tpsNone - median(writes[c.name]!.tps)) / tpsNone) * 100);
      metrics[`${c.name}_fixed_rate_commit_p95_increase_pct`] = round(((median(writes[c.name]!.p95) - p95None) / p95None) * 100);
    }
    for (const n of [1, 2] as const) {
      const runs = drains[n];
      metrics[`p${n}_drain_events_per_s`] = round(median(runs.map((d) => d.events / d.seconds)), 0);
      // per walsender: CPU over the changes committed (all of the WAL); the sum over walsenders: the database's decoding CPU
      metrics[`p${n}_walsender_cpu_us_per_change_each`] = round(median(runs.map((d) => cpuUsPerChange(median(d.walsenderCpu), d.events))), 1);
      metrics[`p${n}_walsenders_cpu_us_per_change_total`] = round(median(runs.map((d) => cpuUsPerChange(d.walsenderCpu.reduce((a, b) => a + b, 0), d.events))), 1);
      metrics[`p${n}_capture_cpu_us_per_change_total`] = round(median(runs.map((d) => cpuUsPerChange(d.captureCpu.reduce((a, b) => a + b, 0), d.events))), 1);
      metrics[`p${n}_drain_walsender_max_cpu_share`] = round(median(runs.map((d) => Math.max(...d.walsenderCpu) / d.seconds)), 3);
    }
    metrics.p2_vs_p1_drain_ratio = round(metrics.p2_drain_events_per_s! / metrics.p1_drain_events_per_s!, 3);
    metrics.p2_vs_p1_database_decode_cpu_ratio = round(metrics.p2_walsenders_cpu_us_per_change_total! / metrics.p1_walsenders_cpu_us_per_change_total!, 3);
    const params = {
      rounds: ROUNDS,
      seconds_per_run: SECONDS,
      clients: CLIENTS,
      workspaces: WORKSPACES,
      // pgbench picks a workspace's script uniformly: the partitions' shares of the changes
      workspaces_per_partition_of_2: [0, 1].map((k) => tenants.workspaces.filter((w) => workspacePartition(w.id, 2) === k).length),
      transaction: `one-row INSERT into tasks, ${WORKSPACES} workspaces (pgbench, PG15 client)`,
      fixed_rate_tx_per_s: FIXED_RATE,
      backlog_transactions: BACKLOG_TX,
      baseline: 'the same wal_level=logical cluster with no reader (its slots inactive), not bench:capture\'s wal_level=replica cluster',
      postgres: 'embedded 17, fsync=off (ephemeral), wal_level=logical',
      cpus: PIN ? `Postgres and pgbench on CPU ${DB_CPU}; capture processes and kinesalite (this process) on CPU ${OTHER_CPU}; walsenders on CPU ${DB_CPU} except in *_walsender_cpu1` : 'shared',
      capture: `separate processes (taskflow capture, one per partition), aggregation on, compression ${COMPRESSION}, ack every 200 ms`,
      host: 'shared with other sessions (2 cores); CPU seconds per change are the load-insensitive figures, throughput and latency are not',
      loadavg_1_5_15: load.map((l) => l.map((x) => round(x, 2))),
      raw: { writes, drains },
    };
    console.log(metrics);
    console.log(`wrote ${writeBenchResult('capture-partitions', params, metrics)}`);
  } finally {
    await admin?.end().catch(() => undefined);
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface DrainRun {
  events: number;
  seconds: number;
  walsenderCpu: number[];
  captureCpu: number[];
}

/** A backlog of one-row transactions written with no reader, then drained by `partitions` captures from the start. */
async function drain(env: Record<string, string>, partitions: number, port: number, scripts: string[]): Promise<DrainRun> {
  for (const slot of slotsOf(partitions)) await scalar('SELECT pg_replication_slot_advance($1, pg_current_wal_lsn())::text AS v', [slot]);
  const perClient = Math.ceil(BACKLOG_TX / CLIENTS);
  await pgbench({ port, scripts, clients: CLIENTS, pin: PIN }, ['-t', String(perClient)]);
  const end = await walLsn();
  // The walsenders stay on the database's CPU: their decoding is what the database pays. Each is
  // a backend started by its capture's connection, so its CPU since birth is its whole drain.
  // Timed from the first capture streaming (as bench:capture's drain, process start-up left out).
  const readers = await startReaders(env, partitions, DB_CPU);
  const done = await slotsCaughtUp(slotsOf(partitions), end);
  const run = {
    events: perClient * CLIENTS,
    seconds: (done - Math.min(...readers.readyAt.map((r) => r.at))) / 1000,
    walsenderCpu: readers.walsenders.map((pid) => cpuSeconds(pid)),
    captureCpu: readers.captures.map((c, i) => cpuSeconds(c.child.pid!) - readers.readyAt[i]!.cpu),
  };
  await readers.stop();
  return run;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
