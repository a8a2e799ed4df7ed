// Incremental (watermark) snapshot while capture streams a live workload: a reader that applies
// the stream in order ends with exactly the table's state.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import pg from 'pg';
import { loadConfig } from '../../capture/config.js';
import { type RunningCapture, snapshotJobStore } from '../../capture/main.js';
import { SIGNAL_PREFIX } from '../../capture/snapshot.js';
import { textParserFor } from '../../capture/values.js';
import { runWorkload, setupWorkloadTenants } from '../../db/workload.js';
import { validateEvent } from '../../schemas/validate.js';
import { createTestDatabase, createTestStream, createTestTables, dynamoClient, kinesisClient, uniqueName } from '../support/stack.js';
import { type StreamedEvent, StreamReader } from './capture-helpers.js';
import { sleep, waitFor } from '../support/wait.js';
import { startTestCapture, testCaptureEnv } from '../support/capture.js';

let db: pg.Client;
let capture: RunningCapture;
let kinesis: KinesisClient;
let dbUrl: string;
let env: Record<string, string>;
let toastedIds: string[] = [];
const slot = uniqueName('capture_snap');

beforeAll(async () => {
  dbUrl = await createTestDatabase('capture_snap');
  const stream = await createTestStream('capture-snap', 2);
  const tables = await createTestTables('capture-snap', ['dlq', 'checkpoints']);
  db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  // rows that exist before capture ever ran: only a snapshot can bring them to the stream
  await setupWorkloadTenants(dbUrl, { workspaces: 3, projectsPerWorkspace: 2, seed: 21, tasksPerProject: 60 });
  // …some with a description stored out of line (TOAST: ~10 KB of random hex does not compress):
  // an update that leaves it alone streams without it
  const toasted = await db.query<{ id: string }>(
    `UPDATE tasks SET description = (SELECT string_agg(md5(random()::text || g::text || tasks.id::text), '') FROM generate_series(1, 320) g)
     WHERE id IN (SELECT id FROM tasks ORDER BY id LIMIT 40) RETURNING id`,
  );
  toastedIds = toasted.rows.map((r) => r.id);
  env = testCaptureEnv({ databaseUrl: dbUrl, stream, tables, slot }, { CAPTURE_SNAPSHOT_CHUNK_SIZE: '25' });
  capture = await startTestCapture(env);
  kinesis = kinesisClient();
}, 60_000);

afterAll(async () => {
  await capture?.close();
  await db?.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => undefined);
  await db?.end();
  kinesis?.destroy();
});

/** What a reader builds: per task id, the latest row image (updates merged over omitted columns). */
function applyStream(events: readonly StreamedEvent[]): Map<string, Record<string, unknown>> {
  const state = new Map<string, Record<string, unknown>>();
  for (const e of events) {
    if (e.data.table !== 'tasks') continue;
    const id = String(e.data.key.id);
    if (e.data.op === 'd') state.delete(id);
    else if (e.data.op === 'u') state.set(id, { ...(state.get(id) ?? {}), ...e.data.after });
    else state.set(id, { ...e.data.after });
  }
  return state;
}

describe('incremental snapshot', () => {
  it('re-snapshots a table while changes stream, ending with the correct state', async () => {
    const store = snapshotJobStore(dynamoClient(), loadConfig(env));
    const workload = runWorkload({ databaseUrl: dbUrl, ratePerSec: 150, durationMs: 6000, workspaces: 3, projectsPerWorkspace: 2, seed: 21, concurrency: 2 });
    await sleep(500); // not a wait: the snapshot starts half a second into the load, to overlap it
    await db.query('SELECT pg_logical_emit_message(false, $1, $2)', [SIGNAL_PREFIX, JSON.stringify({ action: 'snapshot', request: { tables: ['tasks'] } })]);
    // the out-of-line rows stay hot while the snapshot reads them: their updates stream without the description
    const hotWriter = new pg.Client({ connectionString: dbUrl });
    await hotWriter.connect();
    let hot = true;
    let hotUpdates = 0;
    const hotLoad = (async () => {
      // one row per statement: a writer holding one row lock at a time cannot deadlock with the
      // workload's transactions (a 40-row UPDATE did, once in CI)
      while (hot) {
        for (const id of toastedIds) await hotWriter.query('UPDATE tasks SET priority = $1 WHERE id = $2', [hotUpdates++ % 4, id]);
        await sleep(10); // pacing, not a wait
      }
    })();
    const job = await waitFor(async () => {
      const j = await store.get();
      return j?.status === 'done' ? j : undefined;
    }, 'the snapshot to finish', 90_000, 250).finally(() => (hot = false));
    await hotLoad;
    await hotWriter.end();
    await workload;
    expect(hotUpdates).toBeGreaterThan(10);
    const { rows } = await db.query<Record<string, unknown>>({ text: 'SELECT * FROM tasks', types: { getTypeParser: (oid: number) => textParserFor(oid) } as pg.CustomTypesConfig });
    const reader = new StreamReader(kinesis, loadConfig(env).streamName);
    const state = await waitFor(async () => {
      await reader.poll();
      const s = applyStream(reader.events);
      return s.size === rows.length && rows.every((r) => s.has(String(r.id))) ? s : undefined;
    }, 'the stream to reflect the table', 30_000, 300);
    for (const row of rows) expect(state.get(String(row.id))).toEqual(row);
    const omitting = reader.events.filter((e) => e.data.op === 'u' && toastedIds.includes(String(e.data.key.id)) && (e.data as { omitted?: string[] }).omitted?.includes('description'));
    expect(omitting.length).toBeGreaterThan(0);
    const snapshots = reader.events.filter((e) => e.data.op === 'r');
    expect(job.rowsDone).toBe(snapshots.length);
    expect(snapshots.length).toBeGreaterThan(100);
    for (const raw of reader.raw.filter((_, i) => reader.events[i]!.data.op === 'r').slice(0, 50)) {
      const v = validateEvent(JSON.parse(raw));
      if (!v.ok) throw new Error(`${v.reason}: ${v.message}`);
    }
  }, 150_000);
});
