// The shared result format of every `npm run bench:<name>`: test/bench/results/<name>.json.
import { type ChildProcess, execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readStackInfo } from '../../lib/stack-info.js';

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'results');

export interface BenchResult {
  name: string;
  date: string;
  commit: string;
  machine: { cpus: number; node: string };
  params: Record<string, unknown>;
  /** null: not measured in this run (say why in params). */
  metrics: Record<string, number | null>;
}

/** A benchmark parameter from the environment: a positive number, or the fallback when unset. */
export function benchParam(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got ${raw}`);
  return value;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The fields of /proc/<pid>/stat after the command name (whose parentheses may hold spaces). */
function statFields(pid: number): string[] {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return text.slice(text.lastIndexOf(') ') + 2).split(' ');
}

/** User plus system CPU seconds of a process, from /proc (clock ticks of 1/100 s on Linux). */
export function cpuSeconds(pid: number): number {
  const f = statFields(pid);
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** The same, plus the exited children it has waited for: a Postgres postmaster's count then includes its ended backends. */
export function cpuSecondsWithReaped(pid: number): number {
  const f = statFields(pid);
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
}

/** Every live process's parent, from /proc. */
function parents(): Map<number, number> {
  const out = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      out.set(Number(name), Number(statFields(Number(name))[1]));
    } catch {
      // ended while we looked
    }
  }
  return out;
}

/** Resident memory of a process (VmRSS), KiB, from /proc. */
export function rssKb(pid: number): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN);
}

/** `pid` and every live descendant of it. */
export function processTree(pid: number): number[] {
  const byParent = new Map<number, number[]>();
  for (const [child, parent] of parents()) byParent.set(parent, [...(byParent.get(parent) ?? []), child]);
  const out: number[] = [];
  for (const queue = [pid]; queue.length > 0; ) {
    const next = queue.pop()!;
    out.push(next);
    queue.push(...(byParent.get(next) ?? []));
  }
  return out;
}

/** CPU seconds of a process and all its live descendants (each with its reaped children); throws once `pid` has gone. */
export function treeCpuSeconds(pid: number): number {
  let total = cpuSecondsWithReaped(pid);
  for (const member of processTree(pid).slice(1)) {
    try {
      total += cpuSecondsWithReaped(member);
    } catch {
      // ended while we looked: its parent's count holds it once reaped
    }
  }
  return total;
}

/** This process's own CPU seconds (user plus system), without its children. */
export function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * CPU seconds per group between the first sample() and totals(); each group is a reading that
 * only grows (cpuSeconds of a process, treeCpuSeconds of a service with its children or of the
 * Postgres postmaster with its backends: a descendant that ends moves into its parent's count).
 * Sampling during a run keeps the last reading of a group whose process has gone (its reader throws).
 */
export class CpuMeter {
  private readonly first = new Map<string, number>();
  private readonly latest = new Map<string, number>();

  constructor(private readonly readers: Record<string, () => number>) {}

  sample(): void {
    for (const [group, read] of Object.entries(this.readers)) {
      try {
        const seconds = read();
        if (!this.first.has(group)) this.first.set(group, seconds);
        this.latest.set(group, seconds);
      } catch {
        // the process has gone: its last reading stands
      }
    }
  }

  /** Seconds per group since the first sample. */
  totals(): Record<string, number> {
    this.sample();
    return Object.fromEntries(Object.keys(this.readers).map((g) => [g, (this.latest.get(g) ?? 0) - (this.first.get(g) ?? 0)]));
  }
}

/**
 * One growing reading over a service's incarnations, for a CpuMeter group whose process is killed
 * and restarted under new pids (bench:recovery): the sum of every pid's last reading, a pid that
 * has gone keeping its last one. Sample often, and right before a kill, so that last reading is
 * close to the process's end.
 */
export function acrossIncarnations(pids: () => readonly (number | undefined)[], read: (pid: number) => number = cpuSeconds): () => number {
  const last = new Map<number, number>();
  return () => {
    for (const pid of pids()) {
      if (pid === undefined) continue;
      try {
        last.set(pid, read(pid));
      } catch {
        // gone between the listing and the read: its last reading stands
      }
    }
    let total = 0;
    for (const seconds of last.values()) total += seconds;
    return total;
  };
}

/** CPU microseconds per change (0 when nothing changed). */
export function cpuUsPerChange(cpuSeconds: number, changes: number): number {
  return changes > 0 ? Math.round(((cpuSeconds * 1e6) / changes) * 10) / 10 : 0;
}

/** The cores a process would keep busy at 10,000 changes/s, at `usPerChange` CPU per change. */
export function coresPer10kChangesPerS(usPerChange: number): number {
  return Math.round(usPerChange * 1e4) / 1e6;
}

function currentCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** Writes the result file and returns its path. */
export function writeBenchResult(name: string, params: Record<string, unknown>, metrics: Record<string, number | null>): string {
  const result: BenchResult = {
    name,
    date: new Date().toISOString(),
    commit: currentCommit(),
    machine: { cpus: cpus().length, node: process.version },
    params,
    metrics,
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${name}.json`);
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
  return path;
}

/**
 * Where the CPU goes in a bench of the test pipeline with capture and router as processes
 * (bench:e2e, bench:clients): the two services; Postgres (postmaster and backends, the
 * walsender's decoding included); the engines' process (kinesalite, dynalite); this process
 * (the MQTT broker, the workload generator, the truth slot's reader); the SDK subscribers.
 */
export const PIPELINE_CPU_GROUPS = ['capture', 'router', 'postgres', 'engines', 'bench_broker_workload', 'subscribers'] as const;
export type PipelineCpuGroup = (typeof PIPELINE_CPU_GROUPS)[number];

/** Each PIPELINE_CPU_GROUPS group's CPU seconds so far, for a CpuMeter. */
export function pipelineCpuReaders(pipeline: { capture: { pid?: number }; router: { pid?: number } }, subscribers: readonly ChildProcess[]): Record<PipelineCpuGroup, () => number> {
  const stack = readStackInfo();
  // The postmaster's pid is the first line of its data directory's postmaster.pid.
  const postmaster = Number(readFileSync(`${stack.postgres.dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
  return {
    capture: () => treeCpuSeconds(pipeline.capture.pid!),
    router: () => treeCpuSeconds(pipeline.router.pid!),
    postgres: () => treeCpuSeconds(postmaster),
    engines: () => cpuSeconds(stack.pid),
    bench_broker_workload: selfCpuSeconds,
    subscribers: () => subscribers.reduce((n, c) => n + treeCpuSeconds(c.pid!), 0),
  };
}

/** Percentile from a Prometheus histogram's cumulative buckets (linear within a bucket), in ms. */
export function histogramPercentile(text: string, name: string, p: number): number {
  const buckets = [...text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"[^}]*\\} (\\d+)`, 'gm'))].map((m) => ({ le: m[1] === '+Inf' ? Infinity : Number(m[1]), n: Number(m[2]) }));
  const total = buckets[buckets.length - 1]?.n ?? 0;
  if (total === 0) return NaN;
  const rank = p * total;
  let prevLe = 0;
  let prevN = 0;
  for (const b of buckets) {
    if (b.n >= rank) {
      const le = Number.isFinite(b.le) ? b.le : prevLe;
      return (prevLe + ((rank - prevN) / Math.max(1, b.n - prevN)) * (le - prevLe)) * 1000;
    }
    prevLe = b.le;
    prevN = b.n;
  }
  return prevLe * 1000;
}

/** A histogram's buckets of `after` minus those of `before` (Prometheus text): what happened between two scrapes. */
export function subtractHistograms(after: string, before: string, name: string): string {
  const counts = (text: string) => new Map([...text.matchAll(new RegExp(`^(${name}_bucket\\{[^}]*\\}) (\\d+)`, 'gm'))].map((m) => [m[1]!, Number(m[2])]));
  const b = counts(before);
  return [...counts(after)].map(([k, v]) => `${k} ${v - (b.get(k) ?? 0)}`).join('\n');
}
