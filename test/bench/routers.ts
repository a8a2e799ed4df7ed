// bench:routers — the router service scaling across instances: 2 router processes on a 4-shard
// stream at a fixed change rate, reading by enhanced fan-out as `npm start` and production do.
// Capture and the routers run as `taskflow capture` / `taskflow router` processes with the stable
// worker ids a StatefulSet gives (router-0, router-1). A run: both routers start (time until the
// leases are 2/2), the workload commits at a steady rate, then router-1 is SIGKILLed (time until
// router-0 holds all 4), stays down, is restarted under the same id (time until 2/2 again), and
// the workload runs on. The leases table is read every 250 ms for the balance over time. Reported:
// throughput, commit → client p95 per phase and overall, CPU per change of each router (its CPU
// over the events it read, from its own taskflow_router_events_in_total), and what every SDK
// subscriber received against the test_decoding oracle (lost, duplicates, order violations).
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { runWorkload, setupWorkloadTenants } from '../../db/workload.js';
import { freePort } from '../../infra/local/processes.js';
import startStackProcess from '../setup/global-setup.mjs';
import stopStackProcess from '../setup/global-teardown.mjs';
import { startHistoryRecorder, type HistoryEvent, type HistoryRecorder } from '../support/history.js';
import { grantObserverKnownToRouter, startTestPipeline } from '../support/pipeline.js';
import { startServiceProcess, type ServiceProcess } from '../support/service-process.js';
import { dynamoClient, uniqueName } from '../support/stack.js';
import { sleep, waitFor } from '../support/wait.js';
import { ROUTER_METRICS } from '../../router/metrics.js';
import { checkSubscription, parseCounter, percentile, type Delivered } from './e2e-analysis.js';
import type { Assignment } from './e2e-subscribers.js';
import { acrossIncarnations, benchParam, CpuMeter, cpuUsPerChange, median, writeBenchResult } from './report.js';
import { ask, awaitSubscriptionsCaughtUp, forkSubscriberProcess, nextReport, send } from './subscriber-processes.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const PARAMS = {
  /** Workload transactions per second (≈ 3 row changes each). */
  txPerS: benchParam('BENCH_ROUTERS_RATE', 150),
  /** Each phase's length: both routers, router-1 down, both again. */
  phaseSeconds: benchParam('BENCH_ROUTERS_PHASE_SECONDS', 15),
  warmupSeconds: benchParam('BENCH_ROUTERS_WARMUP_SECONDS', 5),
  runs: benchParam('BENCH_ROUTERS_RUNS', 3),
  shards: 4,
  routers: 2,
  workspaces: benchParam('BENCH_ROUTERS_WORKSPACES', 8),
  projectsPerWorkspace: benchParam('BENCH_ROUTERS_PROJECTS_PER_WORKSPACE', 3),
  workloadConnections: 3,
};
const DRAIN_TIMEOUT_MS = 60_000;
const BALANCE_TIMEOUT_MS = 60_000;
const ROUTERS = ['router-0', 'router-1'] as const;
type Router = (typeof ROUTERS)[number];
type Phase = 'both' | 'alone' | 'rebalanced';

interface RunResult {
  /** ms from the routers' start (resp. the kill, the restart) until the leases were 2/2 (resp. 4/0, 2/2 again). */
  balancedAfterStartMs: number;
  takenOverAfterKillMs: number;
  rebalancedAfterRestartMs: number;
  /** Every change of the lease counts, ms after the routers' start: [ms, router-0, router-1]. */
  leaseTimeline: [number, number, number][];
  events: { killMs: number; restartMs: number };
  changes: number;
  changesPerS: number;
  p95: number;
  p95ByPhase: Record<Phase, number>;
  lost: number;
  duplicates: number;
  orderViolations: number;
  cpuSeconds: Record<Router | 'capture', number>;
  eventsIn: Record<Router, number>;
  cpuUsPerEvent: Record<Router, number>;
  routerCpuUsPerChange: number;
}

async function oneRun(run: number): Promise<RunResult> {
  const pipeline = await startTestPipeline({ prefix: 'bench-routers', serviceDefaults: true, shards: PARAMS.shards, services: 'none' });
  const dynamo = dynamoClient();
  const children: ChildProcess[] = [];
  const routers = new Map<Router, ServiceProcess>();
  const pids: Record<Router, number[]> = { 'router-0': [], 'router-1': [] };
  let capture: ServiceProcess | undefined;
  let history: HistoryRecorder | undefined;
  const timers: NodeJS.Timeout[] = [];
  try {
    const routerEnv = Object.fromEntries(await Promise.all(ROUTERS.map(async (r) => [r, { ...pipeline.env, KINESIS_WORKER_ID: r, REPLAY_PORT: String(await freePort()), METRICS_PORT: String(await freePort()) }] as const)));
    const startRouter = async (r: Router) => {
      const p = await startServiceProcess('router', routerEnv[r]!, ['router started']);
      routers.set(r, p);
      pids[r].push(p.child.pid!);
    };
    history = await startHistoryRecorder(pipeline.databaseUrl, { slotName: uniqueName('bench_routers_truth') });
    capture = await startServiceProcess('capture', pipeline.env, ['metrics endpoint', 'streaming from the slot']);

    // Each router's events read, summed over its incarnations (the last scrape of a killed one stands).
    const eventsByPid = new Map<number, number>();
    const scrape = async () => {
      for (const [r, p] of routers) {
        const res = await fetch(`http://127.0.0.1:${routerEnv[r]!.METRICS_PORT}/metrics`).catch(() => undefined);
        if (res?.ok) eventsByPid.set(p.child.pid!, parseCounter(await res.text(), ROUTER_METRICS.eventsIn));
      }
    };
    const cpu = new CpuMeter({
      ...Object.fromEntries(ROUTERS.map((r) => [r, acrossIncarnations(() => pids[r])])),
      capture: acrossIncarnations(() => [capture?.child.pid]),
    });

    // Lease counts per owner, every 250 ms, from the moment the routers start.
    const leasesTable = pipeline.env.DYNAMODB_TABLE_LEASES!;
    const leaseCounts = async (): Promise<[number, number]> => {
      const out = await dynamo.send(new ScanCommand({ TableName: leasesTable, ConsistentRead: true }));
      const owners = (out.Items ?? []).filter((i) => i.consumerName?.S === 'router').map((i) => i.leaseOwner?.S);
      return [owners.filter((o) => o === 'router-0').length, owners.filter((o) => o === 'router-1').length];
    };
    const timeline: [number, number, number][] = [];
    const routersStartedAt = Date.now();
    let latest: [number, number] = [0, 0];
    timers.push(
      setInterval(() => {
        void leaseCounts().then((c) => {
          latest = c;
          const last = timeline.at(-1);
          if (!last || last[1] !== c[0] || last[2] !== c[1]) timeline.push([Date.now() - routersStartedAt, c[0], c[1]]);
        });
      }, 250),
    );
    const until = async (want: [number, number], what: string) => {
      const from = Date.now();
      await waitFor(() => latest[0] === want[0] && latest[1] === want[1], `leases ${want.join('/')} (${what})`, BALANCE_TIMEOUT_MS);
      return Date.now() - from;
    };
    await Promise.all(ROUTERS.map(startRouter));
    await until([2, 2], 'after start');
    const balancedAfterStartMs = Date.now() - routersStartedAt;
    cpu.sample();
    timers.push(
      setInterval(() => {
        cpu.sample();
        void scrape();
      }, 250),
    );

    const tenantOptions = { workspaces: PARAMS.workspaces, projectsPerWorkspace: PARAMS.projectsPerWorkspace, seed: `bench-routers-${randomUUID()}` };
    const tenants = await setupWorkloadTenants(pipeline.databaseUrl, tenantOptions);
    const replayUrl = `http://127.0.0.1:${routerEnv['router-0']!.REPLAY_PORT}`; // router-0 stays up
    const token = await grantObserverKnownToRouter({ databaseUrl: pipeline.databaseUrl, replayUrl, token: pipeline.token }, tenants.workspaces);
    const assignments: Assignment[] = tenants.workspaces.flatMap((w) => w.projects.map((projectId) => ({ workspaceId: w.id, projectId })));
    const child = forkSubscriberProcess();
    children.push(child);
    const live = nextReport(child, 'live', 60_000);
    const wsUrl = new URL(pipeline.broker.wsUrl);
    send(child, { type: 'start', url: `ws://127.0.0.1:${wsUrl.port}${wsUrl.pathname}`, replayUrl, token, assignments, connectSpacingMs: 20 });
    await live;

    const abort = new AbortController();
    const workloadFrom = Date.now();
    const workload = runWorkload({ databaseUrl: pipeline.databaseUrl, ...tenantOptions, ratePerSec: PARAMS.txPerS, concurrency: PARAMS.workloadConnections, signal: abort.signal });
    let killAt = 0;
    let restartAt = 0;
    let measuredFrom = 0;
    let takenOverAfterKillMs = 0;
    let rebalancedAfterRestartMs = 0;
    try {
      await sleep(PARAMS.warmupSeconds * 1000);
      measuredFrom = Date.now();
      await sleep(PARAMS.phaseSeconds * 1000);
      await scrape();
      cpu.sample();
      killAt = Date.now();
      routers.get('router-1')!.child.kill('SIGKILL');
      routers.delete('router-1');
      console.log(`run ${run}: SIGKILL router-1`);
      takenOverAfterKillMs = await until([4, 0], 'after the kill');
      await sleep(Math.max(0, PARAMS.phaseSeconds * 1000 - (Date.now() - killAt)));
      restartAt = Date.now();
      await startRouter('router-1');
      rebalancedAfterRestartMs = await until([2, 2], 'after the restart');
      await sleep(Math.max(0, PARAMS.phaseSeconds * 1000 - (Date.now() - restartAt)));
    } finally {
      abort.abort();
    }
    const stats = await workload;
    const measuredTo = Date.now();

    const truth = await history.collect();
    const truthByProject = new Map<string, HistoryEvent[]>();
    for (const e of truth) if (e.projectId) truthByProject.set(e.projectId, [...(truthByProject.get(e.projectId) ?? []), e]);
    await awaitSubscriptionsCaughtUp(child, truthByProject, assignments, `run ${run}`, DRAIN_TIMEOUT_MS);
    await scrape();
    for (const t of timers) clearInterval(t);
    const cpuTotals = cpu.totals();
    const { delivered } = await ask(child, { type: 'collect' }, 'result');

    const totals = { lost: 0, duplicates: 0, orderViolations: 0 };
    for (const d of delivered) {
      const check = checkSubscription(truthByProject.get(d.projectId) ?? [], d);
      for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += check[key];
    }
    const phaseOf = (commit: number): Phase | undefined => (commit < measuredFrom ? undefined : commit < killAt ? 'both' : commit < restartAt ? 'alone' : 'rebalanced');
    const latencies: Record<Phase, number[]> = { both: [], alone: [], rebalanced: [] };
    for (const d of delivered as Delivered[]) {
      d.commitMs.forEach((commit, i) => {
        const phase = phaseOf(commit);
        if (phase) latencies[phase].push(d.receivedMs[i]! - commit);
      });
    }
    const all = Object.values(latencies).flat();
    const eventsIn = Object.fromEntries(ROUTERS.map((r) => [r, pids[r].reduce((n, pid) => n + (eventsByPid.get(pid) ?? 0), 0)])) as Record<Router, number>;
    const cpuSeconds = Object.fromEntries(Object.entries(cpuTotals).map(([k, v]) => [k, round(v)])) as RunResult['cpuSeconds'];
    const result: RunResult = {
      balancedAfterStartMs,
      takenOverAfterKillMs,
      rebalancedAfterRestartMs,
      leaseTimeline: timeline,
      events: { killMs: killAt - routersStartedAt, restartMs: restartAt - routersStartedAt },
      changes: truth.length,
      // Row changes the workload committed per second over its whole run (warm-up included).
      changesPerS: round(stats.rowChanges / ((measuredTo - workloadFrom) / 1000)),
      p95: round(percentile(all, 95)),
      p95ByPhase: { both: round(percentile(latencies.both, 95)), alone: round(percentile(latencies.alone, 95)), rebalanced: round(percentile(latencies.rebalanced, 95)) },
      ...totals,
      cpuSeconds,
      eventsIn,
      cpuUsPerEvent: Object.fromEntries(ROUTERS.map((r) => [r, cpuUsPerChange(cpuTotals[r] ?? 0, eventsIn[r])])) as Record<Router, number>,
      // Both routers' CPU since they were balanced over every change committed in that time (the warm-up's included).
      routerCpuUsPerChange: cpuUsPerChange((cpuTotals['router-0'] ?? 0) + (cpuTotals['router-1'] ?? 0), truth.length),
    };
    console.log(`run ${run}: ${JSON.stringify({ ...result, leaseTimeline: undefined })} workload ${stats.committedTransactions} tx`);
    console.log(`run ${run}: leases over time (ms after start, router-0, router-1): ${JSON.stringify(timeline)}`);
    return result;
  } finally {
    for (const t of timers) clearInterval(t);
    for (const c of children) c.kill();
    await Promise.all([...routers.values()].map((p) => p.stop()));
    await capture?.stop();
    await history?.stop();
    dynamo.destroy();
    await pipeline.stop();
  }
}

const round = (x: number): number => Math.round(x * 10) / 10;

async function main(): Promise<void> {
  const loadAtStart = loadavg()[0]!;
  await startStackProcess();
  const runs: RunResult[] = [];
  try {
    for (let r = 1; r <= PARAMS.runs; r++) runs.push(await oneRun(r));
  } finally {
    await stopStackProcess();
  }
  const loadAtEnd = loadavg()[0]!;
  const med = (f: (r: RunResult) => number) => round(median(runs.map(f)));
  const sum = (f: (r: RunResult) => number) => runs.reduce((n, r) => n + f(r), 0);
  const metrics: Record<string, number | null> = {
    leases_balanced_after_start_ms: med((r) => r.balancedAfterStartMs),
    leases_taken_over_after_kill_ms: med((r) => r.takenOverAfterKillMs),
    leases_rebalanced_after_restart_ms: med((r) => r.rebalancedAfterRestartMs),
    changes_per_s: med((r) => r.changesPerS),
    commit_to_client_p95_ms: med((r) => r.p95),
    commit_to_client_p95_ms_both: med((r) => r.p95ByPhase.both),
    commit_to_client_p95_ms_alone: med((r) => r.p95ByPhase.alone),
    commit_to_client_p95_ms_rebalanced: med((r) => r.p95ByPhase.rebalanced),
    cpu_us_per_event_router_0: med((r) => r.cpuUsPerEvent['router-0']),
    cpu_us_per_event_router_1: med((r) => r.cpuUsPerEvent['router-1']),
    cpu_us_per_change_routers: med((r) => r.routerCpuUsPerChange),
    lost: sum((r) => r.lost),
    duplicates: sum((r) => r.duplicates),
    order_violations: sum((r) => r.orderViolations),
  };
  const path = writeBenchResult(
    'routers',
    { ...PARAMS, reader: 'fanout (the stack stand-in, as npm start)', loadavg1mAtStart: round(loadAtStart), loadavg1mAtEnd: round(loadAtEnd), host: 'shared: other jobs ran on the same 2 cores', perRun: runs },
    metrics,
  );
  console.log(`wrote ${path}\n${JSON.stringify(metrics)}`);
}

await main();
