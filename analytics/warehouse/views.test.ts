// History and product metrics views on DuckDB, from a handful of events loaded out of order.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { gzipSync } from 'node:zlib';
import { sampleEvent } from '../../schemas/fixtures.js';
import { DuckDbWarehouse, loadObject } from './duckdb.js';

const TASK = '33333333-3333-4333-8333-0000000000b1';
const at = (s: number) => `2026-11-26T12:00:${String(s).padStart(2, '0')}.000000Z`;
const created = sampleEvent('task.created', { commitLsn: 0x100n, entityId: TASK, time: at(0), row: { status: 'todo', description: 'big' } });
const started = sampleEvent('task.updated', { commitLsn: 0x200n, entityId: TASK, time: at(10), row: { status: 'in_progress' }, changed: ['status'], omitted: ['description'] });
const done = sampleEvent('task.updated', { commitLsn: 0x300n, entityId: TASK, time: at(30), row: { status: 'done' }, changed: ['status'], omitted: ['description'] });
const deleted = sampleEvent('task.deleted', { commitLsn: 0x400n, entityId: TASK, time: at(40) });
const comment = sampleEvent('comment.created', { commitLsn: 0x500n, time: at(41) });

let warehouse: DuckDbWarehouse;
beforeAll(async () => {
  warehouse = await DuckDbWarehouse.open(':memory:');
  const object = (events: object[]) => gzipSync(events.map((e) => `${JSON.stringify(e)}\n`).join(''));
  // The last versions arrive first.
  await loadObject(warehouse, 'raw/b', object([done, deleted, comment]));
  await loadObject(warehouse, 'raw/a', object([created, started]));
});
afterAll(async () => {
  await warehouse.close();
});

describe('views', () => {
  it('tasks_history has one row per version with valid_from/valid_to and omitted columns carried forward', async () => {
    const rows = await warehouse.query(`SELECT event_id, strftime(valid_from, '%S') AS f, strftime(valid_to, '%S') AS t, status, description FROM tasks_history WHERE id = '${TASK}' ORDER BY event_id`);
    expect(rows).toEqual([
      { event_id: created.id, f: '00', t: '10', status: 'todo', description: 'big' },
      { event_id: started.id, f: '10', t: '30', status: 'in_progress', description: 'big' },
      { event_id: done.id, f: '30', t: '40', status: 'done', description: 'big' },
    ]);
    expect(await warehouse.query(`SELECT count(*)::INTEGER AS n FROM tasks WHERE id = '${TASK}'`)).toEqual([{ n: 0 }]);
  });

  it('metrics: tasks created and completed per day, comment activity, time in status', async () => {
    expect(await warehouse.query('SELECT strftime(day, \'%Y-%m-%d\') AS day, tasks_created::INTEGER AS c, tasks_completed::INTEGER AS d FROM metrics_tasks_daily')).toEqual([
      { day: '2026-11-26', c: 1, d: 1 },
    ]);
    expect(await warehouse.query('SELECT comments_created::INTEGER AS n, authors::INTEGER AS a FROM metrics_comment_activity')).toEqual([{ n: 1, a: 1 }]);
    const time = await warehouse.query("SELECT status, seconds::INTEGER AS s FROM metrics_time_in_status WHERE status <> 'done' ORDER BY status");
    expect(time).toEqual([
      { status: 'in_progress', s: 20 },
      { status: 'todo', s: 10 },
    ]);
  });
});
