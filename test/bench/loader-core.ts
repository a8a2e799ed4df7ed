// bench:loader-core — the loader's warehouse work alone, without the stack: OBJECTS archive objects
// of PER_OBJECT events each (the project's mix: task creates and updates, comments, project
// updates over 8 workspaces), loaded one object per transaction into a DuckDB file, as the loader
// does at 1 s Firehose buffering. Reports CPU µs per change (this process: DuckDB runs in it),
// overall and over the first and last tenth of the objects (the state tables grow meanwhile).
// BENCH_HISTORY events (older ids and days) are in raw_events before the first load: what a
// load costs as the warehouse's history grows (30 days at 1,000 changes/s: 2.6 billion).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { randomUUID } from 'node:crypto';
import { sampleEvent } from '../../schemas/fixtures.js';
import { DuckDbWarehouse } from '../../analytics/warehouse/duckdb.js';
import { loadavg } from 'node:os';
import { benchParam, writeBenchResult } from './report.js';

const OBJECTS = benchParam('BENCH_OBJECTS', 60);
const PER_OBJECT = benchParam('BENCH_PER_OBJECT', 1000);
const HISTORY = process.env.BENCH_HISTORY === '0' ? 0 : benchParam('BENCH_HISTORY', 1_000_000);

const workspaces = Array.from({ length: 8 }, () => randomUUID());
const projects = workspaces.flatMap((ws) => Array.from({ length: 4 }, () => ({ ws, id: randomUUID() })));
const tasks: { ws: string; project: string; id: string }[] = [];
let lsn = 0x1000000n;
let seq = 0;
function nextEvent(): object {
  lsn += 0x100n;
  const time = new Date(Date.UTC(2026, 11, 1) + seq++ * 1).toISOString();
  const r = (seq * 2654435761) % 100;
  const p = projects[seq % projects.length]!;
  if (r < 20 || tasks.length < 50) {
    const t = { ws: p.ws, project: p.id, id: randomUUID() };
    tasks.push(t);
    return sampleEvent('task.created', { commitLsn: lsn, entityId: t.id, workspaceId: t.ws, projectId: t.project, time });
  }
  const t = tasks[(seq * 7919) % tasks.length]!;
  if (r < 80) return sampleEvent('task.updated', { commitLsn: lsn, entityId: t.id, workspaceId: t.ws, projectId: t.project, time, row: { status: (['todo', 'in_progress', 'done'] as const)[seq % 3]! } });
  if (r < 95) return sampleEvent('comment.created', { commitLsn: lsn, entityId: randomUUID(), workspaceId: t.ws, projectId: t.project, time });
  return sampleEvent('project.updated', { commitLsn: lsn, entityId: p.id, workspaceId: p.ws, time });
}

const dir = mkdtempSync(join(tmpdir(), 'bench-loader-'));
const warehouse = await DuckDbWarehouse.open(join(dir, 'w.duckdb'), { threads: 1 }); // as the loader opens it
// History: ids below the bench's first LSN, two days before its events, inserted in id order as loads do.
if (HISTORY > 0) await warehouse.query(`INSERT INTO raw_events SELECT printf('%016X-%08d', i, 0), DATE '2026-11-29' + CAST(i * 2 // ${HISTORY} AS INTEGER), TIMESTAMPTZ '2026-11-29 00:00:00+00' + to_milliseconds(i),
  'task.updated', 'ws', 'p', 'tasks', 'u', 'k', json_object('id', printf('%016X-%08d', i, 0)), 'raw/history', now() FROM range(${HISTORY}) t(i)`);
const bodies = Array.from({ length: OBJECTS }, () => gzipSync(Array.from({ length: PER_OBJECT }, () => `${JSON.stringify(nextEvent())}\n`).join('')));
const loadAtStart = Math.round(loadavg()[0]! * 100) / 100;
const before = process.cpuUsage();
const started = performance.now();
const slices: number[] = [];
for (const [i, body] of bodies.entries()) {
  const c = process.cpuUsage();
  await warehouse.loadObjects([{ key: `raw/2026/12/01/00/o-${String(i).padStart(6, '0')}`, body }]);
  const d = process.cpuUsage(c);
  slices.push((d.user + d.system) / PER_OBJECT);
}
const cpu = process.cpuUsage(before);
const changes = OBJECTS * PER_OBJECT;
await warehouse.close();
rmSync(dir, { recursive: true, force: true });
const tenth = Math.max(1, Math.floor(OBJECTS / 10));
const avg = (xs: number[]) => Math.round(xs.reduce((a, b) => a + b, 0) / xs.length);
const metrics = {
  changes,
  wall_s: Math.round(performance.now() - started) / 1000,
  cpu_us_per_change: Math.round((cpu.user + cpu.system) / changes),
  cpu_us_per_change_first_tenth: avg(slices.slice(0, tenth)),
  cpu_us_per_change_last_tenth: avg(slices.slice(-tenth)),
};
const path = writeBenchResult('loader-core', { objects: OBJECTS, per_object: PER_OBJECT, history: HISTORY, threads: 1, load_average_at_start: loadAtStart }, metrics);
console.log(`bench:loader-core: ${JSON.stringify(metrics)}\nwritten to ${path}`);
