// bench:recovery — how long the pipeline takes to deliver again after a SIGKILL of capture or of
// the router, under load. Capture and router run as `taskflow dev` runs them: each its own
// process under the supervisor (infra/local/supervisor.ts), which restarts a crashed one, with
// the stable instance ids `taskflow dev` gives them. The workload generator commits at a steady
// rate; SDK subscribers (e2e-subscribers.ts, in a child process) watch every project; the bench
// SIGKILLs capture and router in turn. For each kill: the time from the kill to the first change
// committed after it reaching a subscriber, and commit→client latency of the changes committed
// in the 10 s after it. What every subscription received is checked against the test_decoding
// oracle (lost, duplicates, order violations). Where the time went is read from the services'
// own logs (restart, ready, streaming / leases taken).
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { runWorkload, setupWorkloadTenants, type WorkloadStats } from '../../db/workload.js';
// The same launcher as jest's global setup/teardown: `taskflow stack --ephemeral` as a child.
import startStackProcess from '../setup/global-setup.mjs';
import stopStackProcess from '../setup/global-teardown.mjs';
import { startHistoryRecorder, type HistoryEvent, type HistoryRecorder } from '../support/history.js';
import { grantObserverKnownToRouter, startTestPipeline, supervisePipelineServices, type PipelineService, type ServiceLogLine, type SupervisedPipelineServices } from '../support/pipeline.js';
import { sleep } from '../support/wait.js';
import { uniqueName } from '../support/stack.js';
import { checkSubscription, percentile, type Delivered } from './e2e-analysis.js';
import type { Assignment } from './e2e-subscribers.js';
import { acrossIncarnations, benchParam, CpuMeter, median, writeBenchResult } from './report.js';
import { ask, awaitSubscriptionsCaughtUp, forkSubscriberProcess, nextReport, send } from './subscriber-processes.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const PARAMS = {
  /** Workload transactions per second (the issue measured at ~300 tx/s). */
  txPerS: benchParam('BENCH_RECOVERY_RATE', 300),
  /** SIGKILLs of each service per run, alternating capture and router. */
  killsPerService: benchParam('BENCH_RECOVERY_KILLS', 3),
  /** Between two kills: longer than recovery plus the 10 s latency window. */
  spacingSeconds: benchParam('BENCH_RECOVERY_SPACING_SECONDS', 15),
  runs: benchParam('BENCH_RECOVERY_RUNS', 1),
  workspaces: benchParam('BENCH_RECOVERY_WORKSPACES', 4),
  projectsPerWorkspace: benchParam('BENCH_RECOVERY_PROJECTS_PER_WORKSPACE', 3),
  shards: benchParam('BENCH_RECOVERY_SHARDS', 2),
  warmupSeconds: benchParam('BENCH_RECOVERY_WARMUP_SECONDS', 5),
  workloadConnections: 3,
};
/** The issue's window: commit→client of the changes committed in the 10 s after a kill. */
const AFTER_KILL_WINDOW_MS = 10_000;
const DRAIN_TIMEOUT_MS = 60_000;
const SERVICES: readonly PipelineService[] = ['capture', 'router'];
type Service = PipelineService;

interface KillResult {
  service: Service;
  killAt: number;
  /** Kill → first change committed at or after the kill received by any subscriber, ms. */
  firstChangeMs: number | null;
  /** Where the time went, ms after the kill (null: not seen). */
  restartedMs: number | null;
  readyMs: number | null;
  /** capture: streaming from the slot; router: first lease taken. */
  workingMs: number | null;
  /** commit→client of changes committed in [kill, kill + 10 s), ms. */
  latencies: number[];
  /** Each start-up phase of the new process (PHASES), ms after the kill (null: not seen). */
  phases: Record<string, number | null>;
}

/**
 * The start-up phases a restarted process logs, in order, by the message of its first log line
 * of each (the services log them for this: cli/commands/*.ts, router/shard-processor.ts,
 * capture/service.ts). `spawned` is the process's own start (performance.timeOrigin in its
 * 'starting' line): kill → spawned is the supervisor's delay, spawned → loaded module loading.
 */
const PHASES: Record<Service, [phase: string, msg: string][]> = {
  capture: [
    ['loaded', 'starting'],
    ['metrics', 'metrics endpoint'],
    ['streaming', 'streaming from the slot'],
    ['firstRead', 'first change read'],
    ['firstPut', 'first records put'],
  ],
  router: [
    ['loaded', 'starting'],
    ['connected', 'publisher connected'],
    ['leases', 'lease taken'],
    ['started', 'router started'],
    ['firstRead', 'first batch read'],
    ['firstStaged', 'first batch staged'],
    ['firstPublished', 'first batch published'],
    // Not 'caught up': kinesalite always reports millisBehindLatest 0.
  ],
};

interface RunResult {
  kills: KillResult[];
  lost: number;
  lostAtTail: number;
  duplicates: number;
  orderViolations: number;
  unexpected: number;
  changes: number;
  cpuSeconds: Record<Service | 'subscribers', number>;
  workload: Pick<WorkloadStats, 'committedTransactions' | 'rowChanges' | 'achievedTxPerSec'>;
}

const firstAfter = (lines: readonly ServiceLogLine[], service: Service, after: number, test: (l: ServiceLogLine) => boolean): number | null => {
  const hit = lines.find((l) => l.service === service && l.at >= after && test(l));
  return hit ? hit.at - after : null;
};

async function oneRun(run: number): Promise<RunResult> {
  const pipeline = await startTestPipeline({ prefix: 'bench-recovery', serviceDefaults: true, shards: PARAMS.shards, services: 'none' });
  const children: ChildProcess[] = [];
  let history: HistoryRecorder | undefined;
  let services: SupervisedPipelineServices | undefined;
  let sampling: NodeJS.Timeout | undefined;
  try {
    services = await supervisePipelineServices(pipeline, { onWarning: (instance, line) => console.log(`${instance}: ${line.slice(0, 300)}`) });
    const { supervisor, lines, replayUrl } = services;
    // Each service's CPU summed over its incarnations; sampled every 250 ms and right before each
    // kill, so a killed process's last reading is close to its end.
    const cpu = new CpuMeter({
      ...Object.fromEntries(SERVICES.map((s) => [s, acrossIncarnations(() => [supervisor.pid(`${s}-0`)])])),
      subscribers: acrossIncarnations(() => children.map((c) => c.pid)),
    });
    cpu.sample();
    sampling = setInterval(() => cpu.sample(), 250);
    await services.ready();
    history = await startHistoryRecorder(pipeline.databaseUrl, { slotName: uniqueName('bench_recovery_truth') });
    const tenantOptions = { workspaces: PARAMS.workspaces, projectsPerWorkspace: PARAMS.projectsPerWorkspace, seed: `bench-recovery-${randomUUID()}` };
    const tenants = await setupWorkloadTenants(pipeline.databaseUrl, tenantOptions);
    const token = await grantObserverKnownToRouter({ databaseUrl: pipeline.databaseUrl, replayUrl, token: pipeline.token }, tenants.workspaces);

    // One subscription per project, in one child process (a browser each, as far as the broker knows).
    const assignments: Assignment[] = tenants.workspaces.flatMap((w) => w.projects.map((projectId) => ({ workspaceId: w.id, projectId })));
    const child = forkSubscriberProcess();
    children.push(child);
    const live = nextReport(child, 'live', 60_000);
    const wsUrl = new URL(pipeline.broker.wsUrl);
    send(child, { type: 'start', url: `ws://127.0.0.1:${wsUrl.port}${wsUrl.pathname}`, replayUrl, token, assignments, connectSpacingMs: 20 });
    await live;

    const abort = new AbortController();
    const workload = runWorkload({ databaseUrl: pipeline.databaseUrl, ...tenantOptions, ratePerSec: PARAMS.txPerS, concurrency: PARAMS.workloadConnections, signal: abort.signal });
    const kills: { service: Service; killAt: number }[] = [];
    try {
      await sleep(PARAMS.warmupSeconds * 1000);
      for (let i = 0; i < PARAMS.killsPerService * SERVICES.length; i++) {
        const service = SERVICES[i % SERVICES.length]!;
        const pid = supervisor.pid(`${service}-0`);
        if (pid === undefined) throw new Error(`${service} is not running at kill ${i + 1}`);
        cpu.sample();
        const killAt = Date.now();
        process.kill(pid, 'SIGKILL');
        kills.push({ service, killAt });
        console.log(`run ${run}: SIGKILL ${service} (pid ${pid})`);
        await sleep(PARAMS.spacingSeconds * 1000);
      }
    } finally {
      abort.abort();
    }
    const stats = await workload;

    const truth = await history.collect();
    const truthByProject = new Map<string, HistoryEvent[]>();
    for (const e of truth) if (e.projectId) truthByProject.set(e.projectId, [...(truthByProject.get(e.projectId) ?? []), e]);
    await awaitSubscriptionsCaughtUp(child, truthByProject, assignments, `run ${run}`, DRAIN_TIMEOUT_MS);
    const { delivered } = await ask(child, { type: 'collect' }, 'result');
    clearInterval(sampling);
    const cpuTotals = cpu.totals();

    const totals = { lost: 0, lostAtTail: 0, duplicates: 0, orderViolations: 0, unexpected: 0 };
    for (const d of delivered) {
      const check = checkSubscription(truthByProject.get(d.projectId) ?? [], d);
      for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += check[key];
    }
    // BENCH_RECOVERY_LOG=FILE keeps the services' log lines, to see where a recovery's time went.
    if (process.env.BENCH_RECOVERY_LOG) writeFileSync(process.env.BENCH_RECOVERY_LOG, lines.map((l) => `${l.service} ${l.at} ${l.entry ? JSON.stringify(l.entry) : l.msg}`).join('\n'));
    const killResults = kills.map(({ service, killAt }) => analyseKill(service, killAt, delivered, lines));
    for (const k of killResults) {
      console.log(
        `run ${run}: ${k.service} first change after ${fmt(k.firstChangeMs)} (${Object.entries(k.phases).map(([p, ms]) => `${p} ${fmt(ms)}`).join(', ')}), p95 of the next 10 s ${fmt(percentile(k.latencies, 95))}`,
      );
    }
    const result: RunResult = {
      kills: killResults,
      ...totals,
      changes: truth.length,
      cpuSeconds: { capture: round(cpuTotals.capture ?? 0), router: round(cpuTotals.router ?? 0), subscribers: round(cpuTotals.subscribers ?? 0) },
      workload: { committedTransactions: stats.committedTransactions, rowChanges: stats.rowChanges, achievedTxPerSec: round(stats.achievedTxPerSec) },
    };
    console.log(`run ${run}: ${JSON.stringify({ ...totals, changes: result.changes, cpuSeconds: result.cpuSeconds })}`);
    return result;
  } finally {
    clearInterval(sampling);
    for (const c of children) c.kill();
    await services?.stop();
    await history?.stop();
    await pipeline.stop();
  }
}

function analyseKill(service: Service, killAt: number, delivered: readonly Delivered[], lines: readonly ServiceLogLine[]): KillResult {
  let first: number | null = null;
  const latencies: number[] = [];
  for (const d of delivered) {
    d.commitMs.forEach((commit, i) => {
      if (commit < killAt) return;
      const received = d.receivedMs[i]!;
      if (first === null || received < first) first = received;
      if (commit < killAt + AFTER_KILL_WINDOW_MS) latencies.push(received - commit);
    });
  }
  const working = service === 'capture' ? (l: ServiceLogLine) => l.msg === 'streaming from the slot' : (l: ServiceLogLine) => l.msg === 'lease taken';
  return {
    service,
    killAt,
    firstChangeMs: first === null ? null : first - killAt,
    // The new incarnation's first log line.
    restartedMs: firstAfter(lines, service, killAt, (l) => l.entry !== undefined),
    readyMs: firstAfter(lines, service, killAt, (l) => l.msg === (service === 'capture' ? 'metrics endpoint' : 'router started')),
    workingMs: firstAfter(lines, service, killAt, working),
    latencies,
    phases: killPhases(service, killAt, lines),
  };
}

function killPhases(service: Service, killAt: number, lines: readonly ServiceLogLine[]): Record<string, number | null> {
  const starting = lines.find((l) => l.service === service && l.at >= killAt && l.msg === 'starting');
  const spawnedAt = starting?.entry?.processStartedAt;
  const phases: Record<string, number | null> = { spawned: typeof spawnedAt === 'number' ? spawnedAt - killAt : null };
  for (const [phase, msg] of PHASES[service]) phases[phase] = firstAfter(lines, service, killAt, (l) => l.msg === msg);
  return phases;
}

const round = (x: number): number => Math.round(x * 100) / 100;
const fmt = (ms: number | null): string => (ms === null || Number.isNaN(ms) ? '—' : `${(ms / 1000).toFixed(2)} s`);

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
  const kills = runs.flatMap((r) => r.kills);
  const firstChange = (service: Service) => kills.filter((k) => k.service === service).map((k) => (k.firstChangeMs === null ? Number.POSITIVE_INFINITY : k.firstChangeMs / 1000));
  const stat = (values: number[], f: (v: number[]) => number) => (values.length ? round(f(values)) : null);
  const sum = (key: 'lost' | 'duplicates' | 'orderViolations' | 'changes') => runs.reduce((n, r) => n + r[key], 0);
  const cpuOf = (group: keyof RunResult['cpuSeconds']) => round(runs.reduce((n, r) => n + r.cpuSeconds[group], 0));
  const changes = sum('changes');
  const phase = (service: Service, key: 'restartedMs' | 'readyMs' | 'workingMs' | 'firstChangeMs') => {
    const values = kills.filter((k) => k.service === service && k[key] !== null).map((k) => k[key]!);
    return values.length ? round(median(values) / 1000) : null;
  };
  // Medians over kills of each start-up phase, seconds after the SIGKILL.
  const startup = (service: Service) => {
    const names = ['spawned', ...PHASES[service].map(([p]) => p)];
    const mine = kills.filter((k) => k.service === service);
    const med = (name: string) => {
      const values = mine.map((k) => k.phases[name]).filter((v): v is number => v !== null && v !== undefined);
      return values.length ? round(median(values) / 1000) : null;
    };
    return { ...Object.fromEntries(names.map((n) => [n, med(n)])), firstChange: phase(service, 'firstChangeMs') };
  };
  const metrics: Record<string, number | null> = {
    capture_first_change_after_kill_s_p50: stat(firstChange('capture'), median),
    capture_first_change_after_kill_s_max: stat(firstChange('capture'), (v) => Math.max(...v)),
    router_first_change_after_kill_s_p50: stat(firstChange('router'), median),
    router_first_change_after_kill_s_max: stat(firstChange('router'), (v) => Math.max(...v)),
    commit_to_client_p95_ms_after_kill: stat(kills.flatMap((k) => k.latencies), (v) => percentile(v, 95)),
    commit_to_client_p95_ms_after_capture_kill: stat(kills.filter((k) => k.service === 'capture').flatMap((k) => k.latencies), (v) => percentile(v, 95)),
    commit_to_client_p95_ms_after_router_kill: stat(kills.filter((k) => k.service === 'router').flatMap((k) => k.latencies), (v) => percentile(v, 95)),
    lost: sum('lost'),
    duplicates: sum('duplicates'),
    order_violations: sum('orderViolations'),
    changes,
    capture_cpu_seconds: cpuOf('capture'),
    router_cpu_seconds: cpuOf('router'),
    subscribers_cpu_seconds: cpuOf('subscribers'),
    capture_cpu_us_per_change: changes ? round((cpuOf('capture') / changes) * 1e6) : null,
    router_cpu_us_per_change: changes ? round((cpuOf('router') / changes) * 1e6) : null,
  };
  const path = writeBenchResult(
    'recovery',
    {
      ...PARAMS,
      afterKillWindowMs: AFTER_KILL_WINDOW_MS,
      loadavg1mAtStart: round(loadAtStart),
      loadavg1mAtEnd: round(loadAtEnd),
      host: 'shared: other jobs ran on the same 2 cores during the run',
      // Medians over kills of where the time went, seconds after the SIGKILL.
      phases: Object.fromEntries(SERVICES.map((s) => [s, { restarted: phase(s, 'restartedMs'), ready: phase(s, 'readyMs'), working: phase(s, 'workingMs'), firstChange: phase(s, 'firstChangeMs') }])),
      startupPhases: Object.fromEntries(SERVICES.map((s) => [s, startup(s)])),
      perKill: kills.map((k) => ({ service: k.service, firstChangeMs: k.firstChangeMs, restartedMs: k.restartedMs, readyMs: k.readyMs, workingMs: k.workingMs, phasesMs: k.phases, p95Ms: round(percentile(k.latencies, 95)), samples: k.latencies.length })),
      perRun: runs.map((r) => ({ lost: r.lost, lostAtTail: r.lostAtTail, duplicates: r.duplicates, orderViolations: r.orderViolations, unexpected: r.unexpected, changes: r.changes, cpuSeconds: r.cpuSeconds, workload: r.workload })),
    },
    metrics,
  );
  console.log(`wrote ${path}\n${JSON.stringify(metrics)}`);
}

await main();
