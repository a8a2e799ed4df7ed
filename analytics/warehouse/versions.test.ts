// The warehouse reads task and comment events of both schema versions (v1 before migration 0006,
// v2 after it), in one load and across loads: curated rows and history carry labels, due_at and
// due_date whatever version set them — a v1 row upcast (due_at its date at 00:00 UTC, labels []),
// a v2 row's due_date its due_at's UTC date — and an edited_at for comments.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { gzipSync } from 'node:zlib';
import { sampleEvent } from '../../schemas/fixtures.js';
import { DuckDbWarehouse, loadObject } from './duckdb.js';

const TASK_A = '33333333-3333-4333-8333-0000000000b1';
const TASK_B = '33333333-3333-4333-8333-0000000000b2';
const COMMENT = '44444444-4444-4444-8444-0000000000b1';
const body = (events: object[]) => gzipSync(events.map((e) => `${JSON.stringify(e)}\n`).join(''));
const plain = (rows: Record<string, unknown>[]) => JSON.parse(JSON.stringify(rows, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as Record<string, unknown>[];

let w: DuckDbWarehouse;
beforeEach(async () => {
  w = await DuckDbWarehouse.open(':memory:');
});
afterEach(async () => {
  await w.close();
});

const events = () => [
  // v1: A created with a due date, B created without one, a comment.
  sampleEvent('task.created', { commitLsn: 0x100n, entityId: TASK_A, schemaVersion: 1, row: { due_date: '2026-12-05', title: 'a1' } as never }),
  sampleEvent('task.created', { commitLsn: 0x110n, entityId: TASK_B, schemaVersion: 1, row: { due_date: null, title: 'b1' } as never }),
  sampleEvent('comment.created', { commitLsn: 0x120n, entityId: COMMENT, schemaVersion: 1 }),
  // v2: B gets labels and a due time late in the UTC day; the comment is edited.
  sampleEvent('task.updated', { commitLsn: 0x200n, entityId: TASK_B, schemaVersion: 2, row: { labels: ['ops', 'urgent'], due_at: '2026-12-07T23:30:00Z', title: 'b2' } }),
  sampleEvent('comment.updated', { commitLsn: 0x210n, entityId: COMMENT, schemaVersion: 2, row: { edited_at: '2026-12-02T10:00:00Z' } }),
];

async function tasks() {
  return plain(await w.query(`SELECT id, title, labels, strftime(timezone('UTC', due_at), '%Y-%m-%dT%H:%M:%SZ') AS due_at, CAST(due_date AS VARCHAR) AS due_date FROM tasks ORDER BY id`));
}

const EXPECTED = [
  { id: TASK_A, title: 'a1', labels: [], due_at: '2026-12-05T00:00:00Z', due_date: '2026-12-05' },
  { id: TASK_B, title: 'b2', labels: ['ops', 'urgent'], due_at: '2026-12-07T23:30:00Z', due_date: '2026-12-07' },
];

describe('warehouse across task/comment v1 and v2', () => {
  it('curated rows: v1 rows upcast, v2 rows with due_date from due_at; one object or one per event, in any order', async () => {
    await loadObject(w, 'raw/one', body(events()));
    expect(await tasks()).toEqual(EXPECTED);
    const comments = plain(await w.query(`SELECT strftime(timezone('UTC', edited_at), '%Y-%m-%dT%H:%M:%SZ') AS edited_at FROM comments`));
    expect(comments).toEqual([{ edited_at: '2026-12-02T10:00:00Z' }]);

    const other = await DuckDbWarehouse.open(':memory:');
    try {
      for (const [i, e] of events().entries()) await loadObject(other, `raw/${4 - i}`, body([e]));
      expect(plain(await other.query('SELECT * FROM tasks ORDER BY id'))).toEqual(plain(await w.query('SELECT * FROM tasks ORDER BY id')));
    } finally {
      await other.close();
    }
  });

  it('history keeps each version with the new columns (the v1 version upcast, not NULL)', async () => {
    await loadObject(w, 'raw/one', body(events()));
    const history = plain(
      await w.query(`SELECT id, title, labels, strftime(timezone('UTC', due_at), '%Y-%m-%dT%H:%M:%SZ') AS due_at, CAST(due_date AS VARCHAR) AS due_date FROM tasks_history ORDER BY id, event_id`),
    );
    expect(history).toEqual([
      EXPECTED[0],
      { id: TASK_B, title: 'b1', labels: [], due_at: null, due_date: null },
      EXPECTED[1],
    ]);
  });
});
