// Who made a change reaches the stream: the demo board's write API and the workload generator
// emit a transactional `taskflow.actor` message in each transaction; capture (real Postgres 17,
// pgoutput with messages on) attaches it to every event of that transaction as data.source.actor.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import pg from 'pg';
import { type RunningCapture } from '../../capture/main.js';
import { addComment, createTask, updateTask } from '../../clients/demo-board/api.js';
import { runWorkload } from '../../db/workload.js';
import { DEMO, seedDemo } from '../../db/seed.js';
import { validateEvent } from '../../schemas/validate.js';
import { compareHistory, type HistoryRecorder, startHistoryRecorder } from '../support/history.js';
import { createTestDatabase, createTestStream, createTestTables, kinesisClient, uniqueName } from '../support/stack.js';
import { StreamReader } from './capture-helpers.js';
import { waitFor } from '../support/wait.js';
import { startTestCapture, testCaptureEnv } from '../support/capture.js';

let dbUrl: string;
let pool: pg.Pool;
let capture: RunningCapture;
let kinesis: KinesisClient;
let reader: StreamReader;
let history: HistoryRecorder;
const slot = uniqueName('capture_actor');

type WithActor = { data: { source: { actor?: { userId: string; via?: string } } } };

beforeAll(async () => {
  dbUrl = await createTestDatabase('capture_actor');
  await seedDemo(dbUrl);
  const stream = await createTestStream('capture-actor', 1);
  const tables = await createTestTables('capture-actor', ['dlq', 'checkpoints']);
  pool = new pg.Pool({ connectionString: dbUrl, max: 2 });
  history = await startHistoryRecorder(dbUrl, { slotName: uniqueName('truth') });
  capture = await startTestCapture(testCaptureEnv({ databaseUrl: dbUrl, stream, tables, slot }, { CAPTURE_HEARTBEAT_INTERVAL_MS: '300' }));
  kinesis = kinesisClient();
  reader = new StreamReader(kinesis, stream);
}, 60_000);

afterAll(async () => {
  await capture?.close();
  await history?.stop();
  await pool?.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => undefined);
  await pool?.end();
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

describe('the actor of a change', () => {
  it("travels from the board's write API to every event of its transaction", async () => {
    const [alice, bob] = Object.values(DEMO.users) as string[];
    const { id } = await createTask(pool, DEMO.workspaceId, DEMO.projectId, alice!, { title: 'Audit me' });
    await updateTask(pool, DEMO.workspaceId, id, bob!, { status: 'review' });
    await addComment(pool, DEMO.workspaceId, id, alice!, { body: 'looks good' });
    await caughtUp();
    const actorOf = (pred: (e: (typeof reader.events)[number]) => boolean) =>
      reader.events.filter(pred).map((e) => (e as unknown as WithActor).data.source.actor);
    expect(actorOf((e) => e.data.table === 'tasks' && e.data.key.id === id)).toEqual([
      { userId: alice, via: 'demo-board' },
      { userId: bob, via: 'demo-board' },
    ]);
    expect(actorOf((e) => e.data.table === 'comments' && e.data.after?.task_id === id)).toEqual([{ userId: alice, via: 'demo-board' }]);
  });

  it('travels from the workload generator: each event carries its transaction’s actor, and the events are still valid and complete', async () => {
    const stats = await runWorkload({ databaseUrl: dbUrl, ratePerSec: Infinity, transactions: 40, workspaces: 2, projectsPerWorkspace: 2, seed: 'capture-actor', concurrency: 2, recordTransactions: true });
    await caughtUp();
    const truth = await history.collect();
    expect(compareHistory(truth, reader.events).lost).toEqual([]);
    const actorByXid = new Map(stats.transactions!.map((t) => [t.xid, t.actorId]));
    const xidOf = new Map(truth.map((t) => [t.id, t.xid]));
    let checked = 0;
    for (const [i, e] of reader.events.entries()) {
      const xid = xidOf.get(e.id);
      if (xid === undefined || !actorByXid.has(xid)) continue;
      expect((e as unknown as WithActor).data.source.actor).toEqual({ userId: actorByXid.get(xid), via: 'workload' });
      const valid = validateEvent(JSON.parse(reader.raw[i]!));
      expect(valid.ok).toBe(true);
      checked += 1;
    }
    expect(checked).toBe(stats.rowChanges);
  });
});
