// Warehouse erasure on DuckDB (in memory; the loader process's own endpoint is tested in
// test/integration/gdpr-sink-warehouse.test.ts) and its Snowflake spelling against a recording
// session: the subject's raw events keep their rows but lose every identifier (ids, email, name,
// authored text, their encrypted fields), the curated state's values holding one are NULL, the
// history and metrics views follow, a repeat changes nothing, and no redelivery of the old
// objects brings a value back while a newer edit still lands.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { gzipSync } from 'node:zlib';
import { blankHolding, holdsAny, type SubjectIdentifiers } from '../../lib/erasure.js';
import { kidFor } from '../../lib/subject-keys.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { DuckDbWarehouse } from './duckdb.js';
import { blankedEvent } from './erasure.js';
import { type SnowflakeSession, SnowflakeWarehouse } from './snowflake.js';

const SUBJECT = '11111111-1111-4111-8111-0000000000e1';
const OTHER = '11111111-1111-4111-8111-0000000000e2';
const id = (s: string) => `33333333-3333-4333-8333-0000000000${s}`;
const [TASK, OTHER_TASK, COMMENT, OTHER_COMMENT, MEMBERSHIP] = [id('a1'), id('a2'), id('a3'), id('a4'), id('a5')];
const REMARK = 'my private remark "quoted"\nsecond line';
const IDS: SubjectIdentifiers = {
  subject: SUBJECT,
  email: 'ada@example.com',
  displayName: 'Ada Lovelace',
  authored: [
    { table: 'tasks', id: TASK, text: 'the plan only I know' },
    { table: 'comments', id: COMMENT, text: REMARK },
  ],
};
const encrypted = { enc: 'v1' as const, kid: kidFor(SUBJECT), iv: 'aXYxMjM0NTY3ODkw', ct: 'Y2lwaGVydGV4dA' };
const at = (s: number) => `2026-11-26T12:00:${String(s).padStart(2, '0')}.000000Z`;

const EVENTS = [
  sampleEvent('task.created', { commitLsn: 0x100n, time: at(1), entityId: TASK, row: { title: 'Launch', description: 'the plan only I know', created_by: SUBJECT, assignee_id: SUBJECT, status: 'todo' } }),
  sampleEvent('task.updated', { commitLsn: 0x110n, time: at(2), entityId: TASK, row: { title: 'Launch', status: 'done', created_by: SUBJECT, assignee_id: SUBJECT }, changed: ['status'], omitted: ['description'] }),
  sampleEvent('task.created', { commitLsn: 0x200n, time: at(3), entityId: OTHER_TASK, row: { title: 'Other', description: 'nothing personal', created_by: OTHER } }),
  sampleEvent('comment.created', { commitLsn: 0x300n, time: at(4), entityId: COMMENT, row: { task_id: TASK, author_id: SUBJECT, body: encrypted } }),
  sampleEvent('comment.created', { commitLsn: 0x400n, time: at(5), entityId: OTHER_COMMENT, row: { task_id: TASK, author_id: OTHER, body: 'ask ada@example.com' } }),
  sampleEvent('membership.created', { commitLsn: 0x500n, time: at(6), entityId: MEMBERSHIP, userId: SUBJECT }),
];
const object = (events: readonly object[]) => gzipSync(events.map((e) => `${JSON.stringify(e)}\n`).join(''));

let warehouse: DuckDbWarehouse;
beforeAll(async () => {
  warehouse = await DuckDbWarehouse.open(':memory:');
  await warehouse.loadObjects([{ key: 'raw/a', body: object(EVENTS.slice(0, 3)) }, { key: 'raw/b', body: object(EVENTS.slice(3)) }]);
});
afterAll(() => warehouse.close());

describe('blankHolding', () => {
  it('leaves a document without the needles as it is (same reference) and leaves none in one with them', () => {
    const json = fc.jsonValue();
    fc.assert(
      fc.property(json, fc.array(fc.string({ minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 3 }), (doc, needles) => {
        const out = blankHolding(doc, needles);
        // Keys are kept (a needle in a key survives); every value holding one is gone.
        const values = (v: unknown): string[] => (typeof v === 'string' ? [v] : Array.isArray(v) ? v.flatMap(values) : v && typeof v === 'object' ? Object.values(v).flatMap(values) : []);
        expect(values(out).some((s) => needles.some((n) => s.includes(n)))).toBe(false);
        if (!values(doc).some((s) => needles.some((n) => s.includes(n)))) expect(out).toBe(doc);
        expect(blankHolding(out, needles)).toBe(out); // idempotent
      }),
    );
  });

  it('drops an encrypted field under the subject\'s key, not another\'s', () => {
    const other = { ...encrypted, kid: kidFor(OTHER) };
    expect(blankHolding({ a: encrypted, b: other }, [], [kidFor(SUBJECT)])).toEqual({ a: null, b: other });
  });

  it('blanks only the row images and source of an event, never its envelope', () => {
    const e = { id: SUBJECT, type: 't', data: { op: 'c', key: { id: SUBJECT }, after: { created_by: SUBJECT }, source: { actor: { userId: SUBJECT } } } };
    expect(blankedEvent(e, [SUBJECT], [])).toEqual({ id: SUBJECT, type: 't', data: { op: 'c', key: { id: SUBJECT }, after: { created_by: null }, source: { actor: { userId: null } } } });
    expect(blankedEvent({ data: { after: { x: 'y' } } }, [SUBJECT], [])).toBeUndefined();
  });
});

describe('warehouse erasure on DuckDB', () => {
  it('purge then scan finds 0 in raw and curated; rows, counts and other people\'s values stay; a repeat changes nothing', async () => {
    expect(await warehouse.holding('warehouse-raw', IDS)).toEqual({ scanned: 6, found: 5 }); // the task's create and update, both comments, the membership
    const curatedBefore = await warehouse.holding('warehouse-curated', IDS);
    expect(curatedBefore.found).toBe(4); // the task, both comments, the membership

    expect(await warehouse.erase('warehouse-raw', IDS)).toEqual({ changed: 5 });
    // Values: the task's description, created_by, assignee_id; their comment's author_id and (encrypted) body; the other's body naming their email; the membership's user_id.
    expect(await warehouse.erase('warehouse-curated', IDS)).toEqual({ changed: 7 });
    expect(await warehouse.holding('warehouse-raw', IDS)).toEqual({ scanned: 6, found: 0 });
    expect(await warehouse.holding('warehouse-curated', IDS)).toEqual({ scanned: curatedBefore.scanned, found: 0 });
    expect(await warehouse.erase('warehouse-raw', IDS)).toEqual({ changed: 0 });
    expect(await warehouse.erase('warehouse-curated', IDS)).toEqual({ changed: 0 });

    const raw = await warehouse.query('SELECT CAST(event AS VARCHAR) AS e FROM raw_events');
    expect(raw).toHaveLength(6);
    for (const needle of [SUBJECT, 'ada@example.com', 'the plan only I know', kidFor(SUBJECT)]) expect(raw.some((r) => String(r.e).includes(needle))).toBe(false);
    expect(await warehouse.query(`SELECT id, title, description, created_by, status FROM tasks ORDER BY id`)).toEqual([
      { id: TASK, title: 'Launch', description: null, created_by: null, status: 'done' },
      { id: OTHER_TASK, title: 'Other', description: 'nothing personal', created_by: OTHER, status: 'todo' },
    ]);
    expect(await warehouse.query(`SELECT id, author_id, body FROM comments ORDER BY id`)).toEqual([
      { id: COMMENT, author_id: null, body: null },
      { id: OTHER_COMMENT, author_id: OTHER, body: null },
    ]);
    expect(await warehouse.query(`SELECT user_id FROM memberships`)).toEqual([{ user_id: null }]);
    // The history is a view over raw_events: its versions stay, without the values.
    expect(await warehouse.query(`SELECT status, description, created_by FROM tasks_history WHERE id = '${TASK}' ORDER BY event_id`)).toEqual([
      { status: 'todo', description: null, created_by: null },
      { status: 'done', description: null, created_by: null },
    ]);
    expect(await warehouse.query('SELECT comments_created::INTEGER AS n FROM metrics_comment_activity')).toEqual([{ n: 2 }]);
  });

  it('no redelivery of the old objects, in any order, brings a value back; a newer edit still lands', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...EVENTS), { maxLength: 8 }), fc.nat(), async (again, n) => {
        await warehouse.loadObjects([{ key: `raw/replay-${n}-${Math.random()}`, body: object(again) }]);
        expect((await warehouse.holding('warehouse-raw', IDS)).found).toBe(0);
        expect((await warehouse.holding('warehouse-curated', IDS)).found).toBe(0);
      }),
      { numRuns: 15 },
    );
    const edit = sampleEvent('task.updated', { commitLsn: 0x900n, time: at(9), entityId: TASK, row: { description: 'rewritten by the team' }, changed: ['description'] });
    await warehouse.loadObjects([{ key: 'raw/z', body: object([edit]) }]);
    expect(await warehouse.query(`SELECT description FROM tasks WHERE id = '${TASK}'`)).toEqual([{ description: 'rewritten by the team' }]);
  });
});

describe('warehouse erasure on Snowflake (recording session)', () => {
  it('the same purge in Snowflake spelling: :n binds, TO_JSON/PARSE_JSON, one UPDATE … FROM of the rewritten events', async () => {
    const calls: { sql: string; binds?: readonly string[] }[] = [];
    const theirs = EVENTS[0]!;
    const session: SnowflakeSession = {
      execute: (sql, binds) => {
        calls.push({ sql, ...(binds ? { binds } : {}) });
        if (sql.startsWith('SELECT id, TO_JSON(event)')) return Promise.resolve({ rows: [{ ID: theirs.id, EVENT: JSON.stringify(theirs) }], rowsAffected: 0 });
        if (sql.startsWith('UPDATE raw_events')) return Promise.resolve({ rows: [], rowsAffected: 1 });
        if (sql.startsWith('SELECT count(*)')) return Promise.resolve({ rows: [{ SCANNED: 10, FOUND: 0 }], rowsAffected: 0 });
        return Promise.resolve({ rows: [], rowsAffected: 0 });
      },
      destroy: () => Promise.resolve(),
    };
    const sf = new SnowflakeWarehouse(session, { stage: 's', fileFormat: 'f' });
    expect(await sf.erase('warehouse-raw', IDS)).toEqual({ changed: 1 });
    const after = calls.slice(calls.findIndex((c) => c.sql === 'DELETE FROM staged'));
    const starts = ['DELETE FROM staged', 'SELECT id, TO_JSON(event) AS', 'CREATE OR REPLACE TEMPORARY TABLE erased_raw', 'INSERT INTO erased_raw VALUES', 'UPDATE raw_events SET event', 'DROP TABLE IF EXISTS erased_raw'];
    expect(after.map((c, i) => c.sql.startsWith(starts[i]!))).toEqual(starts.map(() => true));
    expect(after[1]!.sql).toContain('CONTAINS(TO_JSON(event), :1)');
    expect(after[1]!.binds).toEqual(expect.arrayContaining([SUBJECT, 'ada@example.com', JSON.stringify(REMARK).slice(1, -1), kidFor(SUBJECT)]));
    const rewritten = JSON.parse(after[3]!.binds![1]!) as unknown;
    expect(holdsAny(rewritten, [SUBJECT, 'the plan only I know'])).toBe(false);
    expect(after[4]!.sql).toBe('UPDATE raw_events SET event = PARSE_JSON(e.event) FROM erased_raw e WHERE raw_events.id = e.id');

    calls.length = 0;
    expect(await sf.erase('warehouse-curated', IDS)).toEqual({ changed: 0 });
    expect(calls.map((c) => c.sql)).toContain(`UPDATE comments_state SET "body" = NULL WHERE (${Array.from({ length: calls[0]!.binds!.length }, (_, i) => `CONTAINS("body", :${i + 1})`).join(' OR ')})`);
    expect(calls.some((c) => c.sql.includes('dq_results'))).toBe(false);
    expect(calls.find((c) => c.sql.includes('"labels"'))?.sql).toContain(`ARRAY_TO_STRING("labels", ',')`);
    expect(await sf.holding('warehouse-raw', IDS)).toEqual({ scanned: 10, found: 0 });
    expect(calls.at(-1)!.sql).toMatch(/^SELECT count\(\*\) AS scanned, COUNT_IF\(\(CONTAINS\(TO_JSON\(event\), :1\)/);
  });
});
