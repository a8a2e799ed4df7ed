// Replay ≡ live across a schema change (issue 17): Postgres → capture → Kinesis → router → MQTT and
// the replay API, on a database taken from v1 (migrations up to 0005) through 0006 expand, the
// due_at backfill and 0007 contract while one capture and one router run. A web SDK client that
// received every change live, one that joined half-way (replay, then live) and one that replayed
// the whole changelog after the fact must see the same changes (ids, seqs, envelopes) and fold
// them into the same board state — v1 events read as their v2 upcast on both paths — which is
// the project's tasks and comments as Postgres holds them (labels, due_at, edited_at).
// Old clients: the web SDK as released before v2 (clients/web-sdk/test/fixtures/released, typed
// by the v1 schemas), live and replaying, gets the same changes and sees what it understood
// before — a due_date on every task change until the contract, v1 history included.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { type RunningCapture } from '../../capture/main.js';
import { backfillDueAt, needsDueAtBackfill } from '../../db/backfill.js';
import { migrate } from '../../db/migrate.js';
import type { Broker } from '../../infra/local/broker.js';
import { tableEnvVar } from '../../lib/config.js';
import { signDevToken } from '../../lib/jwt.js';
import { createLogger } from '../../lib/logger.js';
import { loadConfig as loadRouterConfig } from '../../router/config.js';
import { startRouter, type RunningRouter } from '../../router/service.js';
import { createClient, type FullChange } from '@taskflow/realtime';
import * as released from '../../clients/web-sdk/test/fixtures/released/realtime-0.1.0/index.js';
import { startTestCapture } from '../support/capture.js';
import { type HistoryRecorder, startHistoryRecorder } from '../support/history.js';
import { captureDatabaseUrl, createTestDatabaseUpTo, createTestStream, createTestTables, startTestBroker, testStackEnv, uniqueName } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

const JWT_SECRET = `replay-versions-${randomUUID()}`;
const quiet = createLogger('replay-versions', process.env.REPLAY_TEST_LOG ?? 'silent');
const [WS, PROJECT, OBSERVER] = [randomUUID(), randomUUID(), randomUUID()];
const TASKS = Array.from({ length: 6 }, () => randomUUID());
const COMMENTS = Array.from({ length: 2 }, () => randomUUID());

let dbUrl: string;
let db: pg.Client;
let broker: Broker;
let history: HistoryRecorder;
let capture: RunningCapture;
let router: RunningRouter;
let token: string;
const clients: { close(): void }[] = [];

beforeAll(async () => {
  dbUrl = await createTestDatabaseUpTo('replay_versions', '0005');
  const stream = await createTestStream('replay-versions');
  const tables = await createTestTables('replay-versions');
  broker = await startTestBroker();
  history = await startHistoryRecorder(dbUrl, { slotName: uniqueName('replay_truth') });
  const env = {
    ...testStackEnv(),
    ...Object.fromEntries(Object.entries(tables).map(([key, name]) => [tableEnvVar(key), name])),
    DATABASE_URL: captureDatabaseUrl(dbUrl),
    CHANGE_STREAM_NAME: stream,
    CAPTURE_SLOT: uniqueName('replay_capture'),
    CAPTURE_ACK_INTERVAL_MS: '100',
    CAPTURE_HEARTBEAT_INTERVAL_MS: '300',
    MQTT_URL: broker.tcpUrl,
    ROUTER_POLL_INTERVAL_MS: '100',
    ROUTER_BATCH_WINDOW_MS: '50',
    ROUTER_PUBLISHES_PER_SECOND: '1000',
    REPLAY_PORT: '0',
    METRICS_PORT: '0',
    JWT_SECRET,
  };
  capture = await startTestCapture(env, quiet);
  router = await startRouter(loadRouterConfig(env), quiet);
  db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  await db.query('BEGIN');
  await db.query(`INSERT INTO workspaces (id, name, slug) VALUES ($1, 'Replay versions', $2)`, [WS, `replay-${WS}`]);
  await db.query(`INSERT INTO users (id, email, display_name) VALUES ($1, $2, 'observer')`, [OBSERVER, `${OBSERVER}@example.test`]);
  await db.query(`INSERT INTO projects (id, workspace_id, name) VALUES ($1, $2, 'Board')`, [PROJECT, WS]);
  await db.query(`INSERT INTO memberships (id, workspace_id, user_id, project_id, role) VALUES ($1, $2, $3, NULL, 'viewer')`, [randomUUID(), WS, OBSERVER]);
  await db.query('COMMIT');
  token = await signDevToken(new TextEncoder().encode(JWT_SECRET), OBSERVER);
  await waitFor(
    async () => (await fetch(`${router.replayUrl}/v1/workspaces/${WS}/projects/${PROJECT}/changes?after=0&limit=1`, { headers: { authorization: `Bearer ${token}` } })).status === 200,
    () => 'the router to learn the observer membership',
  );
}, 90_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await db?.end();
  await router?.stop('graceful');
  await capture?.close();
  await history?.stop();
  await broker?.stop();
});

/** A subscriber of the project from seq 1: what it received, in order. */
function subscribe(): FullChange[] {
  const seen: FullChange[] = [];
  const client = createClient({ url: broker.wsUrl, token, replayUrl: router.replayUrl, backoff: { baseMs: 100, maxMs: 1000 } });
  clients.push(client);
  client.subscribeProject(WS, PROJECT, {
    fromSeq: 1,
    onChange: (c) => {
      if (c.mode !== 'full') throw new Error(`a thin change (${c.id}): the router publishes these full`);
      seen.push(c);
    },
    onResync: () => {
      throw new Error('resync: the changelog reaches back to seq 1 in this test');
    },
  });
  return seen;
}

/** The same with the web SDK release before v2: its own client, its v1 types. */
function subscribeReleased(): released.FullChange[] {
  const seen: released.FullChange[] = [];
  const client = released.createClient({ url: broker.wsUrl, token, replayUrl: router.replayUrl, backoff: { baseMs: 100, maxMs: 1000 } });
  clients.push(client);
  client.subscribeProject(WS, PROJECT, {
    fromSeq: 1,
    onChange: (c) => {
      if (c.mode !== 'full') throw new Error(`a thin change (${c.id})`);
      seen.push(c);
    },
    onResync: () => {
      throw new Error('resync: the changelog reaches back to seq 1 in this test');
    },
  });
  return seen;
}

type Row = Record<string, unknown>;

/** The board's state from the changes: each row's latest image, merged over TOAST-omitted columns; deletes and truncates remove. */
function fold(changes: readonly FullChange[]): Map<string, Row> {
  const rows = new Map<string, Row>();
  for (const { event } of changes) {
    const data = event.data as { op?: string; table?: string; tables?: string[]; key?: { id?: string }; after?: Row | null };
    if (data.tables) {
      for (const key of [...rows.keys()]) if (data.tables.includes(key.split('/')[0]!)) rows.delete(key);
      continue;
    }
    const key = `${data.table}/${data.key?.id}`;
    if (data.op === 'd') rows.delete(key);
    else rows.set(key, { ...rows.get(key), ...data.after });
  }
  return rows;
}

const instant = (v: unknown): string | null => (v === null || v === undefined ? null : new Date(v as string).toISOString());

describe('replay and live across a v1 → v2 schema change', () => {
  it('a client that replays the changelog ends where the live client did, and both where Postgres is', async () => {
    const live = subscribe();
    const releasedLive = subscribeReleased();
    const truthOfProject = async () => (await history.collect()).filter((e) => e.projectId === PROJECT).map((e) => e.id);
    let truthLength = 0;
    const caughtUp = (seen: readonly FullChange[], what: string) =>
      waitFor(
        async () => {
          truthLength = (await truthOfProject()).length;
          return seen.length >= truthLength && truthLength > 0;
        },
        () => `${what}: ${seen.length} of ${truthLength} changes`,
        30_000,
      );

    // v1: the columns of the first release.
    for (const [i, id] of TASKS.slice(0, 4).entries()) {
      await db.query(`INSERT INTO tasks (id, workspace_id, project_id, title, description, due_date) VALUES ($1, $2, $3, $4, 'v1 era', $5)`, [id, WS, PROJECT, `Task ${i}`, i % 2 === 0 ? `2026-12-0${i + 1}` : null]);
    }
    await db.query(`INSERT INTO comments (id, workspace_id, project_id, task_id, author_id, body) VALUES ($1, $2, $3, $4, $5, 'first')`, [COMMENTS[0], WS, PROJECT, TASKS[0], OBSERVER]);
    await db.query(`UPDATE tasks SET due_date = DATE '2026-12-24', status = 'in_progress' WHERE id = $1`, [TASKS[1]]);
    await db.query('DELETE FROM tasks WHERE id = $1', [TASKS[3]]);
    await caughtUp(live, 'the live client after the v1 writes');
    const v1Seen = live.length;

    // Expand (0006): 0007 refuses until the backfill. Writes of both releases in the window.
    const refusal = await migrate(dbUrl).then(
      () => null,
      (err: unknown) => err,
    );
    expect(needsDueAtBackfill(refusal)).toBe(true);
    const joiner = subscribe(); // joins half-way: replays the v1 part, then live
    await db.query(`UPDATE tasks SET labels = ARRAY['ops', 'needs review'] WHERE id = $1`, [TASKS[0]]);
    await db.query(`UPDATE tasks SET due_date = DATE '2027-01-15' WHERE id = $1`, [TASKS[2]]); // a writer of the old release
    await db.query(`INSERT INTO tasks (id, workspace_id, project_id, title, labels, due_at) VALUES ($1, $2, $3, 'v2 era', '{launch}', '2026-12-04T15:30:00+01:00')`, [TASKS[4], WS, PROJECT]);
    await db.query(`UPDATE comments SET body = 'first, edited', edited_at = now() WHERE id = $1`, [COMMENTS[0]]);
    await db.query(`INSERT INTO comments (id, workspace_id, project_id, task_id, author_id, body) VALUES ($1, $2, $3, $4, $5, 'second')`, [COMMENTS[1], WS, PROJECT, TASKS[4], OBSERVER]);

    // Backfill, contract (0007 and the later files), and v2-only writes.
    await backfillDueAt(dbUrl, { batchSize: 2 });
    const dueDates = await db.query<{ id: string; due_date: string | null }>(`SELECT id, to_char(due_date, 'YYYY-MM-DD') AS due_date FROM tasks WHERE project_id = $1 ORDER BY id`, [PROJECT]);
    await migrate(dbUrl);
    await caughtUp(live, 'the live client at the contract');
    const beforeContract = live.length;
    await db.query(`INSERT INTO tasks (id, workspace_id, project_id, title, labels, due_at) VALUES ($1, $2, $3, 'after contract', '{}', NULL)`, [TASKS[5], WS, PROJECT]);
    await db.query(`UPDATE tasks SET due_at = '2027-02-01T09:00:00Z', labels = array_append(labels, 'late') WHERE id = $1`, [TASKS[1]]);
    await caughtUp(live, 'the live client after the v2 writes');
    await caughtUp(joiner, 'the client that joined half-way');

    const replayed = subscribe(); // after the fact: everything from the changelog
    const releasedReplayed = subscribeReleased();
    await caughtUp(replayed, 'the client replaying the changelog');
    await caughtUp(releasedLive, 'the released SDK, live');
    await caughtUp(releasedReplayed, 'the released SDK, replaying');

    const truth = await truthOfProject();
    expect(live.map((c) => c.event.id)).toEqual(truth);
    expect(live.map((c) => c.seq)).toEqual(truth.map((_, i) => i + 1));
    // Every v1-era change reached the clients upcast (due_at and labels beside due_date); every change is v2 on the wire.
    const v1Tasks = live.slice(0, v1Seen).filter((c) => c.event.type.startsWith('taskflow.task.') && (c.event.data as { after?: Row | null }).after);
    expect(v1Tasks.length).toBeGreaterThan(0);
    for (const c of v1Tasks) expect(Object.keys((c.event.data as { after?: Row | null }).after ?? {})).toEqual(expect.arrayContaining(['due_date', 'due_at', 'labels']));
    expect(new Set(live.filter((c) => c.event.type.startsWith('taskflow.task.') || c.event.type.startsWith('taskflow.comment.')).map((c) => c.event.dataschema))).toEqual(
      new Set(['taskflow://schemas/task/v2', 'taskflow://schemas/comment/v2']),
    );
    expect(joiner).toEqual(live);
    expect(replayed).toEqual(live);
    expect(fold(replayed)).toEqual(fold(live));

    // …and the state is what Postgres holds.
    const board = fold(live);
    const tasks = await db.query<{ id: string; title: string; status: string; labels: string[]; due_at: Date | null }>('SELECT id, title, status, labels, due_at FROM tasks WHERE project_id = $1 ORDER BY id', [PROJECT]);
    const comments = await db.query<{ id: string; body: string; edited_at: Date | null }>('SELECT id, body, edited_at FROM comments WHERE project_id = $1 ORDER BY id', [PROJECT]);
    const boardTasks = [...board].filter(([k]) => k.startsWith('tasks/')).map(([, r]) => ({ id: r.id, title: r.title, status: r.status, labels: r.labels, due_at: instant(r.due_at) }));
    expect(boardTasks.sort((a, b) => String(a.id).localeCompare(String(b.id)))).toEqual(tasks.rows.map((r) => ({ ...r, due_at: r.due_at?.toISOString() ?? null })));
    const boardComments = [...board].filter(([k]) => k.startsWith('comments/')).map(([, r]) => ({ id: r.id, body: r.body, edited_at: instant(r.edited_at) }));
    expect(boardComments.sort((a, b) => String(a.id).localeCompare(String(b.id)))).toEqual(comments.rows.map((r) => ({ ...r, edited_at: r.edited_at?.toISOString() ?? null })));
    // The v1 history upcast as the backfill converted it: due_date d is due_at d 00:00 UTC.
    expect(board.get(`tasks/${TASKS[0]}`)).toMatchObject({ labels: ['ops', 'needs review'] });
    expect(instant(board.get(`tasks/${TASKS[2]}`)?.due_at)).toBe('2027-01-15T00:00:00.000Z');

    // The released SDK: the same changes, and through the deprecation window the due dates it
    // understood (TaskRow.due_date of its v1 types), on the v1 history as on the window's events.
    expect(releasedLive).toEqual(live);
    expect(releasedReplayed).toEqual(live);
    let dated = 0;
    for (const [i, c] of releasedLive.entries()) {
      if (!released.isTableChange(c.event, 'tasks') || !c.event.data.after) continue;
      const after: Partial<released.TaskRow> = c.event.data.after;
      if (i < beforeContract) {
        expect({ seq: c.seq, has: 'due_date' in after }).toEqual({ seq: c.seq, has: true });
        if (after.due_date) dated += 1;
      } else expect(after).not.toHaveProperty('due_date'); // after the contract: no due date known (CONTRACTS.md rule 3)
    }
    // Folded with its own types up to the contract: the due dates and titles Postgres had then.
    const releasedBoard = new Map<string, Partial<released.TaskRow>>();
    for (const c of releasedLive.slice(0, beforeContract)) {
      if (!released.isTableChange(c.event, 'tasks')) continue;
      const id = String(c.event.data.key?.id);
      if (c.event.data.op === 'd') releasedBoard.delete(id);
      else releasedBoard.set(id, { ...releasedBoard.get(id), ...c.event.data.after });
    }
    expect([...releasedBoard].map(([id, r]) => ({ id, due_date: r.due_date })).sort((a, b) => a.id.localeCompare(b.id))).toEqual(dueDates.rows);
    expect(dated).toBeGreaterThanOrEqual(4);
    console.log(`replay ≡ live: ${truth.length} changes (${v1Seen} v1-era), 3 clients (live, joined half-way, replayed after) and 2 of the SDK released before v2 equal; board = Postgres; ${dated} due dates seen by the released SDK before the contract`);
  }, 120_000);
});
