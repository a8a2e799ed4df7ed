// CPU pinning for the capture benches: the database and its writers on one core, the readers on
// the other, as production runs capture off the database host (test/bench/README.md "capture").
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The database's core (Postgres, pgbench); the readers and the emulated Kinesis get OTHER_CPU. */
export const DB_CPU = '0';
export const OTHER_CPU = '1';

/** Moves a process and all its threads to `cpu`; children it starts later inherit it. */
export function taskset(cpu: string, pid: number): void {
  const r = spawnSync('taskset', ['-a', '-cp', cpu, String(pid)], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`taskset -a -cp ${cpu} ${pid} failed`);
}

/** Moves a cluster (postmaster and every process it started) to the database CPU; backends it forks later inherit it. */
export function pinCluster(pgdata: string): void {
  const postmaster = Number(readFileSync(join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const children = spawnSync('pgrep', ['-P', String(postmaster)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
  for (const pid of [postmaster, ...children]) taskset(DB_CPU, pid);
}
