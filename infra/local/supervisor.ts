// Runs pipeline services as child processes for `taskflow dev`: output prefixed with the
// service name, restarted with full-jitter backoff when one crashes, stopped (SIGTERM, then
// SIGKILL) on shutdown. Children are bound to this process (pdeathsig) and in their own process
// group, so a terminal Ctrl-C reaches only the launcher, which stops them before the engines.
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { backoffDelay, type BackoffPolicy } from '../../lib/backoff.js';
import { spawnBound, terminate } from './processes.js';

export interface ServiceSpec {
  name: string;
  command: string;
  args: string[];
  env: Record<string, string | undefined>;
  cwd: string;
}

export interface Supervisor {
  readonly names: string[];
  pids(): number[];
  /** The running process of one service, if it is up (it changes with every restart). */
  pid(name: string): number | undefined;
  stop(): Promise<void>;
}

/**
 * A service that stayed up this long is healthy: its crash restarts it at once (a restart is on
 * the recovery path, bench:recovery), and a crash soon after that start backs off from the first
 * step (≤ 0.5 s). A crash loop shows within seconds of each start; a longer threshold would make
 * a second crash within half a minute wait seconds more for nothing.
 */
const HEALTHY_AFTER_MS = 10_000;
const RESTART_BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 15_000 };

/** After a crash: at once if the service had been up for HEALTHY_AFTER_MS, else the next backoff step. */
export function restartPlan(uptimeMs: number, attempt: number, random: number): { attempt: number; delayMs: number } {
  if (uptimeMs > HEALTHY_AFTER_MS) return { attempt: 0, delayMs: 0 };
  return { attempt: attempt + 1, delayMs: backoffDelay(attempt + 1, random, RESTART_BACKOFF) };
}

export function superviseServices(specs: readonly ServiceSpec[], write: (line: string) => void = (l) => console.log(l)): Supervisor {
  let stopping = false;
  const running = new Map<string, ChildProcess>();
  const timers = new Set<NodeJS.Timeout>();

  function start(spec: ServiceSpec, attempt: number): void {
    const startedAt = Date.now();
    const child = spawnBound(spec.command, spec.args, { cwd: spec.cwd, env: spec.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true, deathSignal: 'TERM' });
    running.set(spec.name, child);
    const prefix = `[${spec.name}]`;
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream }).on('line', (line) => write(`${prefix} ${line}`));
    }
    child.once('exit', (code, signal) => {
      running.delete(spec.name);
      if (stopping) return;
      const { attempt: nextAttempt, delayMs: delay } = restartPlan(Date.now() - startedAt, attempt, Math.random());
      write(`${prefix} exited (${code ?? signal}); restarting in ${(delay / 1000).toFixed(1)} s`);
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!stopping) start(spec, nextAttempt);
      }, delay);
      timers.add(timer);
    });
  }

  for (const spec of specs) start(spec, 0);

  return {
    names: specs.map((s) => s.name),
    pids: () => [...running.values()].flatMap((c) => (c.pid ? [c.pid] : [])),
    pid: (name) => running.get(name)?.pid,
    async stop() {
      stopping = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await Promise.all([...running.values()].map((child) => terminate(child, 'SIGTERM', 10_000)));
    },
  };
}
