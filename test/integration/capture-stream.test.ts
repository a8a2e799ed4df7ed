// Capture against the local stack: real Postgres 17 (pgoutput), kinesalite, dynalite. Truth is an
// independent test_decoding slot (test/support/history.ts).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { changedColumnsTables } from '../../capture/changed-columns.js';
import { type RunningCapture } from '../../capture/main.js';
import { CAPTURED_TABLES } from '../../capture/slot-setup.js';
import { runWorkload, setupWorkloadTenants } from '../../db/workload.js';
import { DynamoDeadLetterStore } from '../../lib/dlq.js';
import { parseLsn } from '../../lib/event-id.js';
import { validateEvent } from '../../schemas/validate.js';
import { compareHistory, type HistoryRecorder, startHistoryRecorder } from '../support/history.js';
import { createTestDatabase, createTestStream, createTestTables, dynamoClient, kinesisClient, uniqueName } from '../support/stack.js';
import { StreamReader } from './capture-helpers.js';
import { waitFor } from '../support/wait.js';
import { startTestCapture, testCaptureEnv } from '../support/capture.js';

let dbUrl: string;
let db: pg.Client;
let capture: RunningCapture;
let kinesis: KinesisClient;
let reader: StreamReader;
let history: HistoryRecorder;
let tables: Record<string, string>;
/** A workspace and project of the test's own. */
let ws: { id: string; project: string };
const slot = uniqueName('capture_stream');

beforeAll(async () => {
  dbUrl = await createTestDatabase('capture_stream');
  const stream = await createTestStream('capture-stream', 2);
  tables = await createTestTables('capture-stream', ['dlq', 'checkpoints']);
  db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  const tenants = await setupWorkloadTenants(dbUrl, { workspaces: 1, projectsPerWorkspace: 1, seed: 'capture-fixture', tasksPerProject: 3 });
  ws = { id: tenants.workspaces[0]!.id, project: tenants.workspaces[0]!.projects[0]! };
  // Changed-column capture is opt-in per table (db/migrations/0005): these tests check it on tasks.
  await db.query("SELECT taskflow_capture_changed_columns('tasks')");
  history = await startHistoryRecorder(dbUrl, { slotName: uniqueName('truth') });
  capture = await startTestCapture(testCaptureEnv({ databaseUrl: dbUrl, stream, tables, slot }, { CAPTURE_HEARTBEAT_INTERVAL_MS: '300', CAPTURE_COMPRESSION: 'gzip' }));
  kinesis = kinesisClient();
  reader = new StreamReader(kinesis, stream);
}, 60_000);

afterAll(async () => {
  await capture?.close();
  await history?.stop();
  // slots are cluster-wide; capture never drops its own, the test does
  await db?.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => undefined);
  await db?.end();
  kinesis?.destroy();
});

async function caughtUp(): Promise<void> {
  const truth = await history.collect();
  await waitFor(async () => {
    await reader.poll();
    const seen = reader.ids();
    return truth.every((e) => seen.has(e.id));
  }, 'capture to put every committed change on the stream');
}

describe('capture', () => {
  it('creates its slot as a failover slot, so a PostgreSQL 17 standby keeps it across a promotion', async () => {
    const r = await db.query<{ failover: boolean }>('SELECT failover FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    expect(r.rows).toEqual([{ failover: true }]);
  });

  it('puts every kind of change on the stream with the right envelope, in commit order per workspace (generated workloads)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({ seed: fc.integer({ min: 1, max: 1_000_000 }), workspaces: fc.integer({ min: 1, max: 4 }), transactions: fc.integer({ min: 20, max: 120 }), concurrency: fc.integer({ min: 1, max: 4 }) }),
        async (w) => {
          await runWorkload({ databaseUrl: dbUrl, ratePerSec: Infinity, transactions: w.transactions, workspaces: w.workspaces, projectsPerWorkspace: 2, seed: w.seed, concurrency: w.concurrency });
          await caughtUp();
          const truth = await history.collect();
          const cmp = compareHistory(truth, reader.events);
          expect({ ...cmp, duplicated: [] }).toEqual({ lost: [], duplicated: [], outOfOrderByWorkspace: [], outOfOrderByProject: [], unexpected: [], misrouted: [] });
          const byId = new Map(reader.events.map((e, i) => [e.id, { e, raw: reader.raw[i]! }]));
          for (const t of truth) {
            const { e, raw } = byId.get(t.id)!;
            const valid = validateEvent(JSON.parse(raw));
            if (!valid.ok) throw new Error(`${valid.reason}: ${valid.message}`);
            expect({ table: e.data.table, op: e.data.op, key: e.data.key }).toEqual({ table: t.table, op: t.op, key: t.key });
            // an unchanged TOASTed column is left out, never null
            for (const col of e.data.omitted ?? []) expect(e.data.after).not.toHaveProperty(col);
          }
        },
      ),
      { numRuns: 3 },
    );
  });

  it('keeps unchanged TOASTed columns out of updates and lists them', async () => {
    const big = Array.from({ length: 4000 }, (_, i) => `${i}:${Math.random().toString(36)}`).join(' '); // > TOAST threshold, barely compressible
    const id = (await db.query<{ id: string }>("INSERT INTO tasks (id, workspace_id, project_id, title, description) VALUES (gen_random_uuid(), $1, $2, 'toast', $3) RETURNING id", [ws.id, ws.project, big])).rows[0]!.id;
    await db.query("UPDATE tasks SET status = 'done' WHERE id = $1", [id]);
    await caughtUp();
    const update = reader.events.find((e) => e.data.op === 'u' && e.data.key.id === id)!;
    expect(update.data.omitted).toEqual(['description']);
    expect(update.data.after).not.toHaveProperty('description');
    expect(update.data.after?.status).toBe('done');
    expect(update.data.changed).toEqual(['status']);
    const insert = reader.events.find((e) => e.data.op === 'c' && e.data.key.id === id)!;
    expect(insert.data.after?.description).toBe(big);
  });

  it('lists in `changed` exactly the columns an update changed (a title-only update says title), one statement or many rows', async () => {
    const ids = (await db.query<{ id: string }>('SELECT id FROM tasks WHERE workspace_id = $1 ORDER BY id LIMIT 3', [ws.id])).rows.map((r) => r.id);
    await db.query("UPDATE tasks SET status = 'todo' WHERE id = ANY($1::uuid[])", [ids]);
    await db.query("UPDATE tasks SET title = 'only the title' WHERE id = $1", [ids[0]]);
    await db.query('BEGIN');
    await db.query("UPDATE tasks SET status = 'review', title = title || '!' WHERE id = ANY($1::uuid[])", [ids]);
    await db.query("UPDATE tasks SET status = 'in_progress' WHERE id = $1", [ids[1]]);
    await db.query('UPDATE tasks SET title = title WHERE id = $1', [ids[2]]);
    await db.query('COMMIT');
    await caughtUp();
    const changed = (id: string) => reader.events.filter((e) => e.data.op === 'u' && e.data.key.id === id).map((e) => e.data.changed);
    expect(changed(ids[0]!).slice(-2)).toEqual([['title'], ['title', 'status']]);
    expect(changed(ids[1]!).slice(-2)).toEqual([['title', 'status'], ['status']]);
    expect(changed(ids[2]!).slice(-2)).toEqual([['title', 'status'], []]);
  });

  it('costs nothing by default: no table has the changed-columns trigger until it opts in', async () => {
    const fresh = new pg.Client({ connectionString: await createTestDatabase('changed_default') });
    await fresh.connect();
    try {
      expect(await changedColumnsTables(fresh, CAPTURED_TABLES)).toEqual([]);
      await fresh.query("SELECT taskflow_capture_changed_columns('comments')");
      await fresh.query("SELECT taskflow_capture_changed_columns('comments')"); // idempotent
      expect(await changedColumnsTables(fresh, CAPTURED_TABLES)).toEqual(['comments']);
      await fresh.query("SELECT taskflow_capture_changed_columns('comments', false)");
      expect(await changedColumnsTables(fresh, CAPTURED_TABLES)).toEqual([]);
    } finally {
      await fresh.end();
    }
  });

  it("claims no more than it knows: a table not opted in lists every column of `after`, and opting in or out takes effect at the next transaction", async () => {
    expect(await changedColumnsTables(db, CAPTURED_TABLES)).toEqual(['tasks']);
    await db.query("UPDATE projects SET name = name || '.' WHERE id = $1", [ws.project]);
    await db.query("SELECT taskflow_capture_changed_columns('projects')");
    await db.query("UPDATE projects SET name = name || '!' WHERE id = $1", [ws.project]);
    await db.query("SELECT taskflow_capture_changed_columns('projects', false)");
    await db.query("UPDATE projects SET name = name || '?' WHERE id = $1", [ws.project]);
    await caughtUp();
    const updates = reader.events.filter((e) => e.data.op === 'u' && e.data.table === 'projects' && e.data.key.id === ws.project).slice(-3);
    expect(updates.map((e) => e.data.changed)).toEqual([Object.keys(updates[0]!.data.after!), ['name'], Object.keys(updates[2]!.data.after!)]);
    expect(updates[0]!.data.changed).toContain('archived');
  });

  it('follows ALTER TABLE ADD/DROP COLUMN while streaming, passing an unknown type as text', async () => {
    const [t] = (await db.query<{ id: string }>('SELECT id FROM tasks WHERE workspace_id = $1 LIMIT 1', [ws.id])).rows;
    await db.query('ALTER TABLE tasks ADD COLUMN estimate int4, ADD COLUMN area point');
    await db.query("UPDATE tasks SET estimate = 3, area = '(1,2)' WHERE id = $1", [t!.id]);
    await db.query('ALTER TABLE tasks DROP COLUMN estimate, DROP COLUMN area');
    await db.query("UPDATE tasks SET title = 'after drop' WHERE id = $1", [t!.id]);
    await caughtUp();
    const updates = reader.events.filter((e) => e.data.op === 'u' && e.data.key.id === t!.id);
    const withEstimate = updates.find((e) => e.data.after?.estimate === 3)!;
    expect(withEstimate.data.after?.area).toBe('(1,2)');
    const afterDrop = updates.find((e) => e.data.after?.title === 'after drop')!;
    expect(afterDrop.data.after).not.toHaveProperty('estimate');
  });

  it('dead-letters an event too large for Kinesis with its reason and goes on', async () => {
    // ~1.8 MB of base64 noise: too large even gzipped
    const { rows } = await db.query<{ id: string }>(
      "INSERT INTO tasks (id, workspace_id, project_id, title, description) VALUES (gen_random_uuid(), $1, $2, 'huge', (SELECT string_agg(encode(sha256(random()::text::bytea), 'base64'), '') FROM generate_series(1, 40000))) RETURNING id",
      [ws.id, ws.project],
    );
    await db.query("INSERT INTO tasks (id, workspace_id, project_id, title) VALUES (gen_random_uuid(), $1, $2, 'next')", [ws.id, ws.project]);
    const dynamo = dynamoClient();
    try {
      const dlq = new DynamoDeadLetterStore(dynamo, tables.dlq);
      const entries = await waitFor(async () => {
        const list = await dlq.list({ source: 'capture' });
        return list.length > 0 ? list : undefined;
      }, 'the dead letter');
      expect(entries[0]).toMatchObject({ reason: 'RECORD_TOO_LARGE', origin: { table: 'tasks' } });
      expect(JSON.parse(Buffer.from(entries[0]!.payload).toString()).data.key.id).toBe(rows[0]!.id);
    } finally {
      dynamo.destroy();
    }
    await waitFor(async () => {
      await reader.poll();
      return reader.events.some((e) => e.data.after?.title === 'next');
    }, 'the next event');
  });

  it('puts a large but compressible event (over 1 MiB raw) on the stream gzipped', async () => {
    const { rows } = await db.query<{ id: string }>(
      "INSERT INTO tasks (id, workspace_id, project_id, title, description) VALUES (gen_random_uuid(), $1, $2, 'hex', (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 50000))) RETURNING id",
      [ws.id, ws.project],
    );
    await waitFor(async () => {
      await reader.poll();
      return reader.events.some((e) => e.data.key.id === rows[0]!.id);
    }, 'the large event');
  });

  it('advances the confirmed LSN on a database whose changes are not captured', async () => {
    // workspaces is not in the publication: nothing of ours to send, the slot must still move
    await db.query("INSERT INTO workspaces (id, name, slug) VALUES (gen_random_uuid(), 'idle', 'idle-' || md5(random()::text))");
    const { rows } = await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
    const target = parseLsn(rows[0]!.lsn);
    await waitFor(async () => {
      const r = await db.query<{ lsn: string }>('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [slot]);
      return parseLsn(r.rows[0]!.lsn) >= target;
    }, 'the slot to be confirmed past the uncaptured write', 20_000);
  });

  it('reports TRUNCATE as its own event for every workspace', async () => {
    await db.query('TRUNCATE comments');
    const t = await waitFor(async () => {
      await reader.poll();
      return reader.events.find((e) => e.type === 'taskflow.table.truncated');
    }, 'the truncate event');
    const truth = (await history.collect()).filter((e) => e.op === 't');
    expect(truth.map((e) => e.id)).toEqual([t.id]);
    expect(t).toMatchObject({ workspaceid: '*', data: { op: 't', table: 'comments', tables: ['comments'] } });
  });

  it('puts an erasure request recorded in gdpr_erasure_requests on the stream as taskflow.gdpr.erasure_requested', async () => {
    const [id, user] = [randomUUID(), randomUUID()];
    await db.query("INSERT INTO gdpr_erasure_requests (id, user_id, requested_at, deadline, reason) VALUES ($1, $2, now(), now() + interval '72 hours', 'art. 17')", [id, user]);
    const e = await waitFor(async () => {
      await reader.poll();
      return reader.events.find((x) => x.type === 'taskflow.gdpr.erasure_requested' && (x.data as { requestId?: string }).requestId === id);
    }, 'the erasure request event');
    expect(e).toMatchObject({ workspaceid: '*', subject: `users/${user}`, dataschema: 'taskflow://schemas/gdpr-erasure/v1', data: { requestId: id, userId: user, reason: 'art. 17' } });
    const data = e.data as unknown as { requestedAt: string; deadline: string };
    expect(Date.parse(data.deadline) - Date.parse(data.requestedAt)).toBe(72 * 3600 * 1000);
    expect(validateEvent(JSON.parse(JSON.stringify(e))).ok).toBe(true);
  });
});
