// bench:startup — how long `npm start` takes to be up, and how much memory the whole thing
// (npm, the launcher, Postgres and its backends, the services) holds at rest.
// Each run is a real `npm start` on free ports with its own data directory: a cold start
// (initdb, migrations, seed) then a warm start reusing that directory, as a second `npm start`
// does. "Up" = the launcher's ready line. RSS = sum over the process tree, sampled at rest.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { median, writeBenchResult } from './report.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const REST_SECONDS = Number(process.env.BENCH_REST_SECONDS ?? 10);
const READY_TIMEOUT_MS = 60_000;
const ROOT = resolve(import.meta.dirname, '..', '..');

/** Sum of VmRSS (MB) of `pid` and all its descendants, from /proc. */
export function treeRssMb(pid: number): number {
  const children = new Map<number, number[]>();
  const rss = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]);
      const kb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      rss.set(Number(entry), kb);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // the process exited while we looked
    }
  }
  let totalKb = 0;
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    totalKb += rss.get(p) ?? 0;
    stack.push(...(children.get(p) ?? []));
  }
  return totalKb / 1024;
}

function waitForReady(child: ChildProcess): Promise<void> {
  return new Promise((resolveReady, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`not ready after ${READY_TIMEOUT_MS} ms:\n${output}`)), READY_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('taskflow dev ready')) {
        clearTimeout(timer);
        resolveReady();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited (${code}) before ready:\n${output}`));
    });
  });
}

async function oneStart(dataDir: string): Promise<{ startupS: number; rssMb: number }> {
  const stateFile = join(dataDir, 'bench-stack.json');
  const t0 = performance.now();
  const child = spawn('npm', ['start', '--', '--free-ports', '--data-dir', dataDir, '--state-file', stateFile], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group: stopped below like a terminal's Ctrl-C
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    await waitForReady(child);
    const startupS = (performance.now() - t0) / 1000;
    let rssMb = 0;
    for (let s = 0; s < REST_SECONDS; s++) {
      await new Promise((r) => setTimeout(r, 1000));
      rssMb = Math.max(rssMb, treeRssMb(child.pid!));
    }
    return { startupS, rssMb };
  } finally {
    process.kill(-child.pid!, 'SIGINT');
    await exited;
  }
}

async function main(): Promise<void> {
  const loadAtStart = loadavg()[0]!;
  const cold: number[] = [];
  const warm: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const dataDir = mkdtempSync(join(tmpdir(), 'taskflow-bench-startup-'));
    try {
      const first = await oneStart(dataDir);
      const second = await oneStart(dataDir);
      cold.push(first.startupS);
      warm.push(second.startupS);
      rss.push(second.rssMb);
      console.log(`run ${i + 1}: cold ${first.startupS.toFixed(2)} s, warm ${second.startupS.toFixed(2)} s, rss at rest ${second.rssMb.toFixed(0)} MB`);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  const path = writeBenchResult(
    'startup',
    // The figures only mean something on an idle machine: the load average says how idle it was.
    { runs: RUNS, restSeconds: REST_SECONDS, command: 'npm start -- --free-ports --data-dir <tmp>', loadavg1mAtStart: round(loadAtStart) },
    {
      startup_s_median: round(median(warm)),
      startup_cold_s_median: round(median(cold)),
      rss_mb_at_rest: round(median(rss)),
    },
  );
  console.log(`wrote ${path}`);
}

const round = (x: number): number => Math.round(x * 100) / 100;

await main();
