// Search end to end: Postgres → capture → Kinesis → `taskflow search` (its own process, as in
// production) → SQLite FTS5 → the search API. A change committed in Postgres is findable by
// those its memberships allow; the service SIGKILLed and restarted under load ends with an index
// equal to the WAL oracle's final state (test/support/history.ts) and the rows Postgres holds —
// nothing lost, nothing doubled, no stale or TOAST-emptied text; a TRUNCATE (workspace "*", on
// its own shard) empties the table in every workspace.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutRecordCommand } from '@aws-sdk/client-kinesis';
import pg from 'pg';
import { type RunningCapture } from '../../capture/main.js';
import { runWorkload, type WorkloadTenants, workloadTenantIds } from '../../db/workload.js';
import { DynamoDeadLetterStore } from '../../lib/dlq.js';
import { signDevToken } from '../../lib/jwt.js';
import { createLogger } from '../../lib/logger.js';
import type { SearchDocument } from '../../search/documents.js';
import { SqliteSearchIndex } from '../../search/sqlite-index.js';
import { type HistoryEvent, startHistoryRecorder, type HistoryRecorder } from '../support/history.js';
import { sleep, waitFor } from '../support/wait.js';
import { captureDatabaseUrl, createTestDatabase, createTestStream, createTestTables, dynamoClient, kinesisClient, testStackEnv, uniqueName } from '../support/stack.js';
import { startTestCapture } from '../support/capture.js';

const SECRET = `search-it-${randomUUID()}`;
const WORKLOAD = { workspaces: 3, projectsPerWorkspace: 2, seed: 'search-it' } as const;
const dir = mkdtempSync(join(tmpdir(), 'search-it-'));
const logFile = join(dir, 'search.log');
writeFileSync(logFile, '');

let env: Record<string, string>;
let db: pg.Client;
let capture: RunningCapture;
let history: HistoryRecorder;
const searches: ChildProcess[] = [];

function startSearchProcess(): ChildProcess {
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, ['bin/taskflow.js', 'search'], { env: { ...process.env, ...env, NODE_OPTIONS: '', LOG_LEVEL: 'info' }, stdio: ['ignore', log, log] });
  closeSync(log);
  searches.push(child);
  return child;
}

/** The API and metrics addresses of the n-th search process to have started (1-based). */
async function searchStarted(n: number): Promise<{ api: string; metrics: string }> {
  return waitFor(
    () =>
      readFileSync(logFile, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"msg":"search started"'))
        .map((l) => JSON.parse(l) as { api: string; metrics: string })[n - 1],
    () => `search process ${n} to start:\n${readFileSync(logFile, 'utf8').slice(-3000)}`,
    60_000,
    100,
  );
}

/** The source database as the application writes to it (capture logs in as the replication role). */
let sourceDatabaseUrl: string;

beforeAll(async () => {
  const databaseUrl = await createTestDatabase('search_it');
  sourceDatabaseUrl = databaseUrl;
  const [stream, tables] = await Promise.all([createTestStream('search-it', 2), createTestTables('search-it', ['leases', 'dlq', 'checkpoints'])]);
  env = {
    ...testStackEnv(),
    DATABASE_URL: captureDatabaseUrl(databaseUrl),
    CHANGE_STREAM_NAME: stream,
    DYNAMODB_TABLE_LEASES: tables.leases!,
    DYNAMODB_TABLE_DLQ: tables.dlq!,
    DYNAMODB_TABLE_CHECKPOINTS: tables.checkpoints!,
    CAPTURE_SLOT: uniqueName('search_it'),
    CAPTURE_ACK_INTERVAL_MS: '100',
    SEARCH_DB_PATH: join(dir, 'index', 'search.db'),
    SEARCH_PORT: '0',
    METRICS_PORT: '0',
    JWT_SECRET: SECRET,
    KINESIS_POLL_INTERVAL_MS: '50',
    KINESIS_MIN_CALL_SPACING_MS: '0',
    KINESIS_FAILOVER_MS: '2000',
  };
  db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  history = await startHistoryRecorder(databaseUrl, { slotName: uniqueName('search_truth') });
  capture = await startTestCapture(env, createLogger('search-it-capture', 'silent'));
  startSearchProcess();
}, 120_000);

afterAll(async () => {
  for (const s of searches) if (s.exitCode === null && s.signalCode === null) s.kill('SIGKILL');
  await capture?.close().catch(() => undefined);
  await history?.stop().catch(() => undefined);
  await db?.end();
  rmSync(dir, { recursive: true, force: true });
});

const token = (userId: string) => signDevToken(new TextEncoder().encode(SECRET), userId);

/** `q`: the words, or a query string of its own (`label=…&due_before=…`) when it holds an '='. */
async function search(api: string, ws: string, q: string, userId: string): Promise<{ status: number; titles: string[] }> {
  const query = q.includes('=') ? q : `q=${encodeURIComponent(q)}`;
  const res = await fetch(`${api}/v1/workspaces/${ws}/search?${query}`, { headers: { authorization: `Bearer ${await token(userId)}` } });
  const body = (await res.json()) as { hits?: { title: string; text: string }[] };
  return { status: res.status, titles: (body.hits ?? []).map((h) => h.title || h.text) };
}

/** What the index must hold for these workspaces: the oracle's live rows, with Postgres' current text. */
async function expectedDocuments(events: readonly HistoryEvent[], workspaces: readonly string[]): Promise<Map<string, SearchDocument[]>> {
  const last = new Map<string, HistoryEvent>();
  for (const e of events) {
    if (e.op === 't') {
      for (const [key, l] of last) if (l.table === e.table) last.delete(key);
      continue;
    }
    if (e.table !== 'tasks' && e.table !== 'comments') continue;
    const key = `${e.workspaceId}/${e.table}/${e.key.id}`;
    if (e.op === 'd') last.delete(key);
    else last.set(key, e);
  }
  const tasks = await db.query<{ id: string; title: string; description: string | null; status: string; labels: string[]; due_at: Date | null }>(
    'SELECT id, title, description, status, labels, due_at FROM tasks WHERE workspace_id = ANY($1)',
    [workspaces],
  );
  const comments = await db.query<{ id: string; body: string; task_id: string }>('SELECT id, body, task_id FROM comments WHERE workspace_id = ANY($1)', [workspaces]);
  const rows = new Map<string, { title: string; text: string; status: string | null; taskId: string | null; labels: string[]; dueAt: string | null }>([
    ...tasks.rows.map((r) => [`tasks/${r.id}`, { title: r.title, text: r.description ?? '', status: r.status, taskId: null, labels: r.labels, dueAt: r.due_at?.toISOString() ?? null }] as const),
    ...comments.rows.map((r) => [`comments/${r.id}`, { title: '', text: r.body, status: null, taskId: r.task_id, labels: [] as string[], dueAt: null }] as const),
  ]);
  const out = new Map<string, SearchDocument[]>(workspaces.map((w) => [w, []]));
  for (const [, e] of [...last].sort(([a], [b]) => a.localeCompare(b))) {
    const row = rows.get(`${e.table}/${e.key.id}`);
    if (!out.has(e.workspaceId)) continue;
    out.get(e.workspaceId)!.push({
      workspaceId: e.workspaceId,
      table: e.table as SearchDocument['table'],
      id: e.key.id!,
      version: e.id,
      projectId: e.projectId ?? null,
      title: row?.title ?? '(row missing in Postgres)',
      text: row?.text ?? '',
      status: row?.status ?? null,
      taskId: row?.taskId ?? null,
      labels: row?.labels ?? [],
      dueAt: row?.dueAt ?? null,
    });
  }
  return out;
}

/** The index as a reader of its file sees it (another connection, as the CLI's). */
async function indexedDocuments(workspaces: readonly string[]): Promise<Map<string, SearchDocument[]>> {
  const index = new SqliteSearchIndex(env.SEARCH_DB_PATH!);
  try {
    return new Map(await Promise.all(workspaces.map(async (w) => [w, await index.documents(w)] as const)));
  } finally {
    await index.close();
  }
}

async function expectIndexMatchesOracle(workspaces: readonly string[]): Promise<void> {
  let expected = new Map<string, SearchDocument[]>();
  let actual = new Map<string, SearchDocument[]>();
  await waitFor(
    async () => {
      expected = await expectedDocuments(await history.collect(), workspaces);
      actual = await indexedDocuments(workspaces);
      return JSON.stringify([...expected]) === JSON.stringify([...actual]);
    },
    () => `the index to match the oracle (${[...actual.values()].flat().length} documents indexed, ${[...expected.values()].flat().length} expected)`,
    60_000,
  ).catch(() => undefined);
  for (const w of workspaces) expect({ w, docs: actual.get(w) }).toEqual({ w, docs: expected.get(w) });
}

describe('search service', () => {
  it('finds a change committed in Postgres, for the users its memberships allow', async () => {
    const { api, metrics } = await searchStarted(1);
    const [ws, p1, p2, wide, narrow, outsider, t1, t2] = Array.from({ length: 8 }, () => randomUUID());
    await db.query('BEGIN');
    await db.query(`INSERT INTO workspaces (id, name, slug) VALUES ($1, 'Search IT', $2)`, [ws, `search-it-${ws}`]);
    for (const u of [wide, narrow, outsider]) await db.query(`INSERT INTO users (id, email, display_name) VALUES ($1, $2, 'u')`, [u, `${u}@example.test`]);
    await db.query(`INSERT INTO projects (id, workspace_id, name) VALUES ($1, $3, 'P1'), ($2, $3, 'P2')`, [p1, p2, ws]);
    await db.query(`INSERT INTO memberships (id, workspace_id, user_id, project_id, role) VALUES ($1, $3, $4, NULL, 'member'), ($2, $3, $5, $6, 'viewer')`, [randomUUID(), randomUUID(), ws, wide, narrow, p1]);
    await db.query(
      `INSERT INTO tasks (id, workspace_id, project_id, title, description, labels, due_at) VALUES ($1, $3, $4, 'Zeppelin launch plan', 'hangar', '{launch,ops}', '2026-12-04T15:30:00+01:00'), ($2, $3, $5, 'Zeppelin budget', NULL, '{}', NULL)`,
      [t1, t2, ws, p1, p2],
    );
    await db.query('COMMIT');

    await waitFor(async () => (await search(api, ws!, 'zeppelin', wide!)).titles.length === 2, () => 'both tasks to be findable');
    expect((await search(api, ws!, 'zepp', wide!)).titles.sort()).toEqual(['Zeppelin budget', 'Zeppelin launch plan']);
    expect(await search(api, ws!, 'zeppelin', narrow!)).toEqual({ status: 200, titles: ['Zeppelin launch plan'] });
    expect((await search(api, ws!, 'zeppelin', outsider!)).status).toBe(403);
    // The v2 columns as filters, from what Postgres wrote (due_at 14:30 UTC), with or without words.
    expect(await search(api, ws!, 'q=zeppelin&label=ops', wide!)).toEqual({ status: 200, titles: ['Zeppelin launch plan'] });
    expect(await search(api, ws!, 'label=launch&due_after=2026-12-04T14:30:00Z&due_before=2026-12-05', wide!)).toEqual({ status: 200, titles: ['Zeppelin launch plan'] });
    expect(await search(api, ws!, 'label=launch&due_before=2026-12-04T14:30:00Z', wide!)).toEqual({ status: 200, titles: [] });

    // An update and a delete reach the index too; revoking the membership revokes the results.
    await db.query(`UPDATE tasks SET title = 'Airship launch plan' WHERE id = $1`, [t1]);
    await db.query(`DELETE FROM tasks WHERE id = $1`, [t2]);
    await waitFor(async () => (await search(api, ws!, 'zeppelin', wide!)).titles.length === 0, () => 'the renamed and deleted tasks to leave the results');
    expect((await search(api, ws!, 'airship', narrow!)).titles).toEqual(['Airship launch plan']);
    await db.query(`DELETE FROM memberships WHERE user_id = $1`, [narrow]);
    await waitFor(async () => (await search(api, ws!, 'airship', narrow!)).status === 403, () => 'the revoked member to be refused');

    const exposed = await (await fetch(metrics)).text();
    expect(exposed).toMatch(/^taskflow_search_document_changes_total\{service="search"\} [1-9]/m);
    expect(exposed).toMatch(/^taskflow_search_queries_total\{outcome="forbidden",service="search"\} [1-9]/m);
    expect(exposed).toMatch(/^kinesis_consumer_millis_behind_latest\{consumer="search",/m);
  }, 90_000);

  it('SIGKILLed and restarted under load, ends with exactly the final state the WAL says', async () => {
    const tenants: WorkloadTenants = workloadTenantIds(WORKLOAD);
    // At most 150 transactions/s: at least 10 s of load, around the kill and the restart.
    const load = runWorkload({ databaseUrl: sourceDatabaseUrl, ratePerSec: 150, transactions: 1500, concurrency: 3, ...WORKLOAD });
    // Not waits but the fault schedule: killed 4 s into the load, down for 1.5 s.
    await sleep(4000);
    const first = searches[0]!;
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    await sleep(1500);
    startSearchProcess();
    await searchStarted(2);
    const stats = await load;
    expect(stats.committedTransactions).toBe(1500);

    const workspaces = tenants.workspaces.map((w) => w.id);
    await expectIndexMatchesOracle(workspaces);
    const dynamo = dynamoClient();
    expect(await new DynamoDeadLetterStore(dynamo, env.DYNAMODB_TABLE_DLQ).list({ source: 'search' })).toEqual([]);
    dynamo.destroy();
    console.log(`search under load: ${stats.committedTransactions} transactions, ${stats.rowChanges} row changes; ${[...(await indexedDocuments(workspaces)).values()].flat().length} documents indexed, equal to the oracle`);
  }, 150_000);

  it('honours a TRUNCATE (workspace "*", its own shard) in every workspace', async () => {
    const workspaces = workloadTenantIds(WORKLOAD).workspaces.map((w) => w.id);
    const before = [...(await indexedDocuments(workspaces)).values()].flat();
    expect(before.some((d) => d.table === 'comments')).toBe(true);
    await db.query('TRUNCATE comments');
    await expectIndexMatchesOracle(workspaces);
    const after = [...(await indexedDocuments(workspaces)).values()].flat();
    expect(after.filter((d) => d.table === 'comments')).toEqual([]);
    expect(after.filter((d) => d.table === 'tasks').length).toBe(before.filter((d) => d.table === 'tasks').length);
  }, 90_000);

  it('dead-letters a malformed record with its origin, and `taskflow search redrive` keeps refusing it', async () => {
    const kinesis = kinesisClient();
    const put = await kinesis.send(new PutRecordCommand({ StreamName: env.CHANGE_STREAM_NAME, PartitionKey: randomUUID(), Data: Buffer.from('{"specversion":"1.0", truncated') }));
    kinesis.destroy();
    const dynamo = dynamoClient();
    const store = new DynamoDeadLetterStore(dynamo, env.DYNAMODB_TABLE_DLQ);
    try {
      await waitFor(async () => (await store.list({ source: 'search' })).length === 1, () => 'the record to be dead-lettered');
      const [letter] = await store.list({ source: 'search' });
      expect(letter).toMatchObject({ reason: 'malformed_json', origin: { shardId: put.ShardId, sequenceNumber: put.SequenceNumber } });
      const redrive = spawnSync(process.execPath, ['bin/taskflow.js', 'search', 'redrive'], { env: { ...process.env, ...env, NODE_OPTIONS: '' }, encoding: 'utf8' });
      expect(redrive.stdout).toContain(`still refused ${letter!.id}: malformed_json`);
      expect(redrive.status).toBe(1);
      expect((await store.list({ source: 'search' })).length).toBe(1);
    } finally {
      dynamo.destroy();
    }
  }, 90_000);
});
