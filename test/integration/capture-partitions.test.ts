// Capture in two partitions (CAPTURE_PARTITIONS=2) against real Postgres 17, kinesalite and
// dynalite: two instances, each on its own slot and stream, under generated workloads across
// workspaces. Truth is an independent test_decoding slot (test/support/history.ts): every committed
// change arrives exactly once, in commit order per workspace, each workspace in one partition only.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { loadConfig } from '../../capture/config.js';
import { type RunningCapture } from '../../capture/main.js';
import { publicationSql } from '../../capture/slot-setup.js';
import { type Partition, partitionName, partitionTxIndex, workspacePartition } from '../../capture/partitions.js';
import { runWorkload } from '../../db/workload.js';
import { eventId, parseEventId } from '../../lib/event-id.js';
import { GDPR_ERASURE_TYPE } from '../../schemas/kinds.js';
import { type HistoryEvent, type HistoryRecorder, compareHistory, startHistoryRecorder } from '../support/history.js';
import { createTestDatabase, createTestStream, createTestTables, kinesisClient, uniqueName } from '../support/stack.js';
import { StreamReader } from './capture-helpers.js';
import { waitFor } from '../support/wait.js';
import { startTestCapture, testCaptureEnv } from '../support/capture.js';

const COUNT = 2;
const slotBase = uniqueName('capture_parts', 50);
let dbUrl: string;
let db: pg.Client;
let kinesis: KinesisClient;
let history: HistoryRecorder;
const captures: RunningCapture[] = [];
const readers: StreamReader[] = [];

beforeAll(async () => {
  dbUrl = await createTestDatabase('capture_parts');
  db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  kinesis = kinesisClient();
  history = await startHistoryRecorder(dbUrl, { slotName: uniqueName('truth') });
  for (let index = 0; index < COUNT; index += 1) {
    const stream = await createTestStream(`capture-parts-${index}`, 2);
    const tables = await createTestTables(`capture-parts-${index}`, ['dlq', 'checkpoints']);
    const env = testCaptureEnv({ databaseUrl: dbUrl, stream, tables, slot: slotBase }, { CAPTURE_PARTITIONS: String(COUNT), CAPTURE_PARTITION: String(index), CAPTURE_INSTANCE_ID: `parts-${index}`, CAPTURE_HEARTBEAT_INTERVAL_MS: '300' });
    // capture's role owns no table: the owner creates the partition's publication, as the start-up error would tell
    await db.query(publicationSql(loadConfig(env)));
    captures.push(await startTestCapture(env));
    readers.push(new StreamReader(kinesis, stream));
  }
}, 90_000);

afterAll(async () => {
  await Promise.all(captures.map((c) => c.close()));
  await history?.stop();
  for (let index = 0; index < COUNT; index += 1) await db?.query('SELECT pg_drop_replication_slot($1)', [partitionName(slotBase, { index, count: COUNT })]).catch(() => undefined);
  await db?.end();
  kinesis?.destroy();
});

/**
 * The id each committed change has in its partition: the i-th change a partition reads of a
 * transaction gets i·N + k (capture/partitions.ts), where the truth numbers all the transaction's changes.
 */
function expectedInPartitions(truth: readonly HistoryEvent[]): (HistoryEvent & { partition: number })[] {
  const counters = new Map<string, number[]>();
  return truth.map((e) => {
    const { commitLsn } = parseEventId(e.id);
    const partition = workspacePartition(e.workspaceId, COUNT);
    const key = commitLsn.toString();
    const seen = counters.get(key) ?? new Array<number>(COUNT).fill(0);
    counters.set(key, seen);
    const p: Partition = { index: partition, count: COUNT };
    return { ...e, partition, id: eventId({ commitLsn, txIndex: partitionTxIndex(seen[partition]!++, p) }) };
  });
}

async function caughtUp(expected: readonly { id: string }[]): Promise<void> {
  await waitFor(async () => {
    for (const r of readers) await r.poll();
    const seen = new Set(readers.flatMap((r) => [...r.ids()]));
    return expected.every((e) => seen.has(e.id));
  }, 'both partitions to put every committed change on their streams');
}

describe('capture in two partitions', () => {
  it('creates one publication per partition filtering workspace_id by hash, and gives the erasure table to partition 0', async () => {
    const r = await db.query<{ pubname: string; tablename: string; rowfilter: string | null }>("SELECT pubname, tablename, rowfilter FROM pg_publication_tables WHERE pubname LIKE 'taskflow_capture_p%of2' ORDER BY 1, 2");
    const of = (pub: string) => r.rows.filter((x) => x.pubname === pub).map((x) => `${x.tablename}:${x.rowfilter ?? ''}`);
    const f = (k: number) => `(((uuid_hash(workspace_id) & 2147483647) % 2) = ${k})`;
    expect(of('taskflow_capture_p0of2')).toEqual(['comments', 'memberships', 'projects', 'tasks'].map((t) => `${t}:${f(0)}`).concat(['gdpr_erasure_requests:']).sort());
    expect(of('taskflow_capture_p1of2')).toEqual(['comments', 'memberships', 'projects', 'tasks'].map((t) => `${t}:${f(1)}`));
  });

  it('delivers every committed change exactly once, in commit order per workspace, each workspace from one partition only (generated workloads)', async () => {
    const seenIn = new Map<string, Set<number>>();
    await fc.assert(
      fc.asyncProperty(
        fc.record({ seed: fc.integer({ min: 1, max: 1_000_000 }), workspaces: fc.integer({ min: 4, max: 10 }), transactions: fc.integer({ min: 40, max: 150 }), concurrency: fc.integer({ min: 1, max: 4 }) }),
        async (w) => {
          // each run makes new tenants in one transaction across its workspaces: partitions share transactions
          await runWorkload({ databaseUrl: dbUrl, ratePerSec: Infinity, transactions: w.transactions, workspaces: w.workspaces, projectsPerWorkspace: 2, seed: w.seed, concurrency: w.concurrency });
          const truth = await history.collect();
          const expected = expectedInPartitions(truth);
          await caughtUp(expected);
          expect(compareHistory(expected, readers.flatMap((r) => r.events))).toEqual({ lost: [], duplicated: [], outOfOrderByWorkspace: [], outOfOrderByProject: [], unexpected: [], misrouted: [] });
          const byId = new Map(expected.map((e) => [e.id, e]));
          readers.forEach((r, partition) => {
            for (const e of r.events) {
              if (e.type === GDPR_ERASURE_TYPE) continue;
              expect({ id: e.id, partition: byId.get(e.id)?.partition }).toEqual({ id: e.id, partition });
              const set = seenIn.get(e.workspaceid) ?? new Set<number>();
              set.add(partition);
              seenIn.set(e.workspaceid, set);
            }
          });
        },
      ),
      { numRuns: 3 },
    );
    expect([...seenIn.values()].filter((s) => s.size !== 1)).toEqual([]);
    expect(new Set([...seenIn.values()].map((s) => [...s][0])).size).toBe(COUNT);
    // the server's filter and capture/partitions.ts agree on every workspace seen
    const ws = [...seenIn.keys()];
    const server = await db.query<{ id: string; p: number }>('SELECT id::text, (uuid_hash(id) & 2147483647) % 2 AS p FROM unnest($1::uuid[]) AS id', [ws]);
    expect(server.rows.map((r) => [r.id, r.p])).toEqual(ws.map((id) => [id, workspacePartition(id, COUNT)]));
  });

  it('puts an erasure request (no workspace) on partition 0 only', async () => {
    const user = randomUUID();
    await db.query("INSERT INTO gdpr_erasure_requests (id, user_id, requested_at, deadline) VALUES ($1, $2, now(), now() + interval '30 days')", [randomUUID(), user]);
    await waitFor(async () => {
      await readers[0]!.poll();
      return readers[0]!.raw.some((raw) => raw.includes(user));
    }, 'the erasure request on partition 0');
    // partition 1 has moved past the insert (a later change of its own arrived) without it
    const later = await db.query<{ id: string; name: string }>("UPDATE projects SET name = $1 WHERE id = (SELECT p.id FROM projects p WHERE (uuid_hash(p.workspace_id) & 2147483647) % 2 = 1 LIMIT 1) RETURNING id, name", [`after erasure ${user}`]);
    await waitFor(async () => {
      await readers[1]!.poll();
      return readers[1]!.events.some((e) => e.data.table === 'projects' && e.data.key.id === later.rows[0]!.id && e.data.after?.name === later.rows[0]!.name);
    }, 'a later change on partition 1');
    expect(readers[1]!.events.filter((e) => e.type === GDPR_ERASURE_TYPE)).toEqual([]);
  });
});
