// pgbench (Debian's client) as the application writing to a bench's Postgres: saturated or
// fixed-rate runs of one-row INSERT scripts, from the database's side of the CPU split when pinned
// (test/bench/cpu-pinning.ts), so the application's own latency is not inflated by the readers
// it is compared with. A child process, never blocking: kinesalite may run in the bench's process.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DB_CPU } from './cpu-pinning.js';

export interface PgbenchTarget {
  port: number;
  /** Transaction scripts (`-f`), one per client group. */
  scripts: readonly string[];
  clients: number;
  /** Run pgbench on the database's CPU. */
  pin: boolean;
}

export function pgbench(t: PgbenchTarget, args: string[]): Promise<{ tps: number; transactions: number }> {
  const [cmd, pre] = t.pin ? ['taskset', ['-c', DB_CPU, 'pgbench']] : ['pgbench', []];
  const child = spawn(cmd, [...pre, '-n', '-h', '127.0.0.1', '-p', String(t.port), '-U', 'postgres', '-c', String(t.clients), '-j', '2', ...t.scripts.flatMap((s) => ['-f', s]), ...args, 'taskflow'], {
    env: { ...process.env, PGPASSWORD: 'taskflow' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`pgbench exited with ${code}`));
      const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(out)?.[1] ?? NaN);
      const transactions = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1] ?? NaN);
      resolve({ tps, transactions });
    });
  });
}

/** p95 commit latency (ms) at a fixed rate for `seconds`, from pgbench's per-transaction log (written under `dir`). */
export async function fixedRateP95(t: PgbenchTarget, opts: { seconds: number; rate: number; dir: string }): Promise<number> {
  const logDir = mkdtempSync(join(opts.dir, 'pgblog-'));
  await pgbench(t, ['-T', String(opts.seconds), '-R', String(opts.rate), '-l', `--log-prefix=${join(logDir, 'pgb')}`]);
  const latencies = readdirSync(logDir).flatMap((f) =>
    readFileSync(join(logDir, f), 'utf8')
      .trim()
      .split('\n')
      .map((line) => Number(line.split(' ')[2]) / 1000),
  );
  rmSync(logDir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  return latencies[Math.ceil(0.95 * latencies.length) - 1]!;
}
