// Rebuild equals the incremental path: archive objects loaded as they arrive (out of order, one
// repeated, in several passes) give the same raw_events, truncations and curated state, row for
// row, as `rebuild` from the archive — in full and from a day on.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createLogger } from '../lib/logger.js';
import { FsObjectStore } from '../lib/object-store.js';
import { sampleEvent } from '../schemas/fixtures.js';
import { Loader } from './loader.js';
import { firstKeyOfDay, formatProgress, progressOf, rebuild, type RebuildProgress } from './rebuild.js';
import { DuckDbWarehouse } from './warehouse/duckdb.js';
import { CURATED, stateTable } from './warehouse/tables.js';

const logger = createLogger('rebuild-test', 'silent');
const PREFIX = 'raw/';
const TASKS = ['33333333-3333-4333-8333-0000000000a1', '33333333-3333-4333-8333-0000000000a2', '33333333-3333-4333-8333-0000000000a3'];
const key = (day: number, hour: number, n: number) =>
  `${PREFIX}2026/11/${String(day).padStart(2, '0')}/${String(hour).padStart(2, '0')}/taskflow-archive-1-2026-11-${String(day).padStart(2, '0')}-${String(hour).padStart(2, '0')}-00-0${n}-0000-4000-8000-00000000000${n}`;
const at = (day: number, hour: number, s: number) => `2026-11-${String(day).padStart(2, '0')}T${String(hour).padStart(2, '0')}:00:${String(s).padStart(2, '0')}.000000Z`;

/** Events over three days: creates, updates with an omitted column, a delete and re-create, a truncate, comments. */
function archive(): { key: string; events: object[] }[] {
  let lsn = 0x1000n;
  const next = () => (lsn += 0x10n);
  const objects: { key: string; events: object[] }[] = [];
  for (const [d, day] of [24, 25, 26].entries()) {
    const events: object[] = [];
    for (const [i, task] of TASKS.entries()) {
      const time = at(day, 1, i);
      if (d === 2 && i === 2) continue; // deleted the day before
      // The first day's events are task/comment v1, the rest v2 (a mixed-version archive; a v2
      // update of the last task carries no due_at change, so its upcast v1 due_at stays).
      const schemaVersion = d === 0 ? 1 : 2;
      if (d === 0) events.push(sampleEvent('task.created', { commitLsn: next(), entityId: task, time, schemaVersion, row: { title: `t${i}`, description: 'long' } }));
      else events.push(sampleEvent('task.updated', { commitLsn: next(), entityId: task, time, schemaVersion, row: { status: d === 1 ? 'in_progress' : 'done', title: `t${i}.${d}`, ...(i === 1 ? { labels: ['x'] } : {}) }, omitted: ['description'] }));
      events.push(sampleEvent('comment.created', { commitLsn: next(), entityId: `44444444-4444-4444-8444-00000000${d}${i}00`, time, schemaVersion }));
    }
    if (d === 1) events.push(sampleEvent('task.deleted', { commitLsn: next(), entityId: TASKS[2], time: at(day, 2, 0) }));
    if (d === 2) {
      events.push(sampleEvent('table.truncated', { commitLsn: next(), tables: ['comments'], time: at(day, 2, 0) }));
      events.push(sampleEvent('comment.created', { commitLsn: next(), entityId: '44444444-4444-4444-8444-0000000000ff', time: at(day, 2, 1) }));
    }
    // Each day in two objects.
    objects.push({ key: key(day, 1, 1), events: events.slice(0, 4) }, { key: key(day, 3, 2), events: events.slice(4) });
  }
  return objects;
}

const body = (events: object[]) => gzipSync(events.map((e) => `${JSON.stringify(e)}\n`).join(''));

/** Every table the rebuild re-creates, without load times. */
async function snapshot(w: DuckDbWarehouse): Promise<Record<string, unknown[]>> {
  const tables: Record<string, string> = {
    raw_events: 'SELECT id, day, time, type, workspace_id, project_id, tbl, op, key_id, CAST(event AS VARCHAR) AS event, object_key FROM raw_events ORDER BY id',
    truncations: 'SELECT * FROM truncations ORDER BY tbl, id',
    load_log: 'SELECT object_key, events, new_events FROM load_log ORDER BY object_key',
    ...Object.fromEntries(CURATED.map((e) => [stateTable(e), `SELECT * EXCLUDE (_merged_at) FROM ${stateTable(e)} ORDER BY id`])),
    ...Object.fromEntries(CURATED.map((e) => [e.table, `SELECT * FROM ${e.table} ORDER BY id`])),
  };
  const out: Record<string, unknown[]> = {};
  for (const [name, sql] of Object.entries(tables)) out[name] = (await w.query(sql)).map((r) => JSON.parse(JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as unknown);
  return out;
}

let dir: string;
let store: FsObjectStore;
let warehouse: DuckDbWarehouse;
let incremental: Record<string, unknown[]>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rebuild-test-'));
  store = new FsObjectStore(dir);
  warehouse = await DuckDbWarehouse.open(':memory:');
  const objects = archive();
  // Arrival out of order by days, in three passes (full listings: beyond any lookback); one
  // object's events arrive twice (a re-sent batch).
  const loader = new Loader(store, PREFIX, warehouse, logger, { fullListEveryMs: 0 });
  for (const pass of [[2, 0], [1, 5, 4], [3]]) {
    for (const i of pass) await store.put(objects[i]!.key, body(objects[i]!.events));
    await loader.loadNew();
  }
  await store.put(`${objects[3]!.key.slice(0, -1)}9`, body(objects[3]!.events));
  await loader.loadNew();
  incremental = await snapshot(warehouse);
});

afterAll(async () => {
  await warehouse.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('rebuild', () => {
  it('the incremental path holds what the test expects (a check that the comparison is not of empty tables)', () => {
    expect(incremental.raw_events!.length).toBe(archive().reduce((n, o) => n + o.events.length, 0));
    expect(incremental.tasks!.map((r) => (r as { status: string }).status)).toEqual(['done', 'done']);
    expect(incremental.tasks!.map((r) => (r as { labels: string[] }).labels)).toEqual([['planning'], ['x']]);
    expect(new Set(incremental.raw_events!.map((r) => JSON.parse((r as { event: string }).event).dataschema))).toEqual(
      new Set(['taskflow://schemas/task/v1', 'taskflow://schemas/task/v2', 'taskflow://schemas/comment/v1', 'taskflow://schemas/comment/v2', 'taskflow://schemas/truncate/v1']),
    );
    expect(incremental.comments).toHaveLength(1);
    expect(incremental.truncations).toHaveLength(1);
  });

  it('from the whole archive gives the incremental tables row for row, with progress', async () => {
    const seen: RebuildProgress[] = [];
    const last = await rebuild(store, PREFIX, warehouse, logger, { onProgress: (p) => seen.push(p) });
    expect(await snapshot(warehouse)).toEqual(incremental);
    expect(last).toMatchObject({ objects: 7, totalObjects: 7 });
    expect(seen.at(-1)!.etaS).toBe(0);
  });

  it('from a day on gives the same tables, loading only that day and later again', async () => {
    const seen: RebuildProgress[] = [];
    await rebuild(store, PREFIX, warehouse, logger, { from: '2026-11-25', onProgress: (p) => seen.push(p) });
    expect(await snapshot(warehouse)).toEqual(incremental);
    expect(seen.at(-1)!.totalObjects).toBe(5);
  });

  it('a day key and the progress line', () => {
    expect(firstKeyOfDay('raw/', '2026-11-25')).toBe('raw/2026/11/25/');
    expect(firstKeyOfDay('raw/', undefined)).toBe('');
    const p = progressOf({ objects: 2, events: 2000, bytes: 100 }, { objects: 4, bytes: 400 }, 2);
    expect(p).toEqual({ objects: 2, totalObjects: 4, events: 2000, eventsPerS: 1000, etaS: 6 });
    expect(formatProgress(p)).toBe('rebuild: 2/4 objects, 2000 events, 1000 events/s, ETA 6 s');
  });
});
