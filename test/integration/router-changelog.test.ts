// The DynamoDB changelog against dynalite: the ShardRouter's sequencing through it (one request per
// batch, a crash after the item write), lookups by id, stale writers refused, replay ranges,
// oversized runs split over items, heads of the earlier layout, and TTL expiry turning into a
// restart above the reservation and the resync answer; a router in thin mode writing thin entries
// after full ones.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { sampleEvent } from '../../schemas/fixtures.js';
import { validateEvent } from '../../schemas/validate.js';
import { entryId, type FullEntry, isThinEntry, type ProjectRef, StaleHeadError } from '../../router/changelog.js';
import type { PayloadMode } from '../../router/messages.js';
import { RESERVE_SEQS } from '../../router/changelog-claims.js';
import { DynamoChangelogStore } from '../../router/dynamo-changelog.js';
import { replayAnswer } from '../../router/replay.js';
import { type InputRecord, ShardRouter } from '../../router/shard-router.js';
import { createTestTables, dynamoClient } from '../support/stack.js';

let client: DynamoDBClient;
let table: string;

beforeAll(async () => {
  client = dynamoClient();
  table = (await createTestTables('router-changelog', ['changelog'])).changelog!;
});

afterAll(() => client?.destroy());

const WS = '11111111-1111-4111-8111-111111111111';

function project(n: number): ProjectRef {
  return { workspaceId: WS, projectId: `22222222-2222-4222-8222-${String(n).padStart(12, '0')}` };
}

function record(p: ProjectRef, lsn: number, description = 'd'): InputRecord {
  const e = sampleEvent('task.updated', { workspaceId: p.workspaceId, projectId: p.projectId, commitLsn: BigInt(lsn), entityId: `33333333-3333-4333-8333-${String(lsn).padStart(12, '0')}`, row: { description } });
  return { data: Buffer.from(JSON.stringify(e)), sequenceNumber: String(lsn), partitionKey: p.workspaceId };
}

/** Records the operation of every request the client's transport sends (the SDK's and the direct ones); `after` may throw once the answer is in. */
function recordRequests(c: DynamoDBClient, after?: (operation: string) => void) {
  const handler = c.config.requestHandler as { handle(request: { headers: Record<string, string> }, options?: unknown): Promise<unknown> };
  const original = handler.handle;
  const sent: string[] = [];
  handler.handle = async (request, options) => {
    const operation = request.headers['x-amz-target']?.split('.')[1] ?? '?';
    sent.push(operation);
    const out = await original.call(handler, request, options);
    after?.(operation);
    return out;
  };
  return { sent, restore: () => void (handler.handle = original) };
}

function router(store: DynamoChangelogStore, state?: string, changelogMode: PayloadMode = 'full', enqueued: number[] = []) {
  return new ShardRouter(
    { shardId: 's', consumer: 'router', changelog: store, changelogMode, sink: { enqueue: (_p, changes) => void enqueued.push(...changes.map((c) => c.seq)), flush: async () => {}, revoke() {} }, deadLetters: { put: async () => {} }, memberships: { apply: async () => {} }, validate: validateEvent },
    state,
  );
}

describe('DynamoChangelogStore', () => {
  it('sequences densely with one request per batch, survives a crash after the item write with the same seqs, and finds ids', async () => {
    let now = Date.now();
    const store = new DynamoChangelogStore(client, { table, now: () => now });
    const p = project(1);
    const requests = recordRequests(client);
    try {
      const first = router(store);
      const state = await first.process([record(p, 0x100), record(p, 0x200)]);
      await first.process([record(p, 0x210)]);
      await first.process([record(p, 0x220)]);
      // The head item (the reservation) once, then one item write per batch.
      expect(requests.sent.filter((n) => n !== 'Query' && n !== 'GetItem')).toEqual(['UpdateItem', 'PutItem', 'PutItem', 'PutItem']);

      // Crash after the next batch's item is written, before anything is published or checkpointed.
      const crashing = new DynamoChangelogStore(client, { table, now: () => now });
      const append = crashing.append.bind(crashing);
      crashing.append = async (...args) => {
        await append(...args);
        throw new Error('crash');
      };
      await expect(router(crashing, state).process([record(p, 0x300), record(p, 0x400)])).rejects.toThrow('crash');
      expect((await store.readHead(p)).seq).toBe(6);

      // Reprocessing from the checkpoint, with one more event in the batch this time: the same seqs.
      await router(new DynamoChangelogStore(client, { table, now: () => now }), state).process([record(p, 0x210), record(p, 0x220), record(p, 0x300), record(p, 0x400), record(p, 0x500)]);
    } finally {
      requests.restore();
    }
    const page = await store.read(p, 0, 100);
    expect(page.entries.map((e) => [e.seq, entryId(e).slice(13, 16)])).toEqual([[1, '100'], [2, '200'], [3, '210'], [4, '220'], [5, '300'], [6, '400'], [7, '500']]);
    expect(await store.findSeqs(p, page.head, ['0000000000000200-00000000', '0000000000000500-00000000', '0000000000000050-00000000'])).toEqual(
      new Map([['0000000000000200-00000000', 2], ['0000000000000500-00000000', 7]]),
    );

    // A writer with a stale head is refused and corrupts nothing: neither with another history
    // at those seqs, nor with a shorter rewrite of the same one.
    const stale = new DynamoChangelogStore(client, { table, now: () => now });
    await expect(stale.append(p, [{ seq: 5, event: (page.entries[0] as FullEntry).event }], { seq: 4, lastId: null }, { seq: 5, lastId: 'x' })).rejects.toBeInstanceOf(StaleHeadError);
    await expect(stale.append(p, [{ seq: 5, event: (page.entries[4] as FullEntry).event }], { seq: 4, lastId: null }, { seq: 5, lastId: 'x' })).rejects.toBeInstanceOf(StaleHeadError);
    expect((await store.read(p, 0, 100)).entries.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);

    // Replay: the exact range. After the TTL every item is gone: the next seq starts above the
    // head's reservation (never back), and replay answers the gap with the resync answer.
    const r = replayAnswer(await store.read(p, 5, 100), 5);
    expect(r.status === 200 && r.body.changes.map((c) => c.seq)).toEqual([6, 7]);
    // (Each fresh store above reserved again on its first write: 7 + RESERVE_SEQS is the reservation.)
    now += 8 * 24 * 3600 * 1000;
    await router(new DynamoChangelogStore(client, { table, now: () => now })).process([record(p, 0x600)]);
    const restarted = 7 + RESERVE_SEQS + 1;
    expect(replayAnswer(await store.read(p, 7, 100), 7)).toEqual({ status: 410, body: { error: 'resync_required', oldestSeq: restarted, latestSeq: restarted } });
    const fresh = replayAnswer(await store.read(p, restarted - 1, 100), restarted - 1);
    expect(fresh.status === 200 && fresh.body.changes.map((c) => [c.seq, entryId(c).slice(13, 16)])).toEqual([[restarted, '600']]);
  });

  it('sends the item write directly, and through the SDK again when the answer is lost: refused, then found its own', async () => {
    const store = new DynamoChangelogStore(client, { table });
    const p = project(4);
    await router(store).process([record(p, 0x100)]);
    let lose = true;
    const requests = recordRequests(client, (operation) => {
      if (operation === 'PutItem' && lose) {
        lose = false;
        throw new Error('connection reset');
      }
    });
    try {
      await router(store).process([record(p, 0x200), record(p, 0x300)]);
    } finally {
      requests.restore();
    }
    // The lost answer's item was written; the SDK's write of it is refused and the item read back.
    expect(requests.sent.filter((n) => n !== 'Query')).toEqual(['PutItem', 'PutItem', 'GetItem']);
    expect((await store.read(p, 0, 100)).entries.map((e) => [e.seq, entryId(e).slice(13, 16)])).toEqual([[1, '100'], [2, '200'], [3, '300']]);
  });

  it('reads a head written before reservations (headSeq) as the last seq, and goes on after it', async () => {
    const store = new DynamoChangelogStore(client, { table });
    const p = project(3);
    await client.send(new PutItemCommand({ TableName: table, Item: { projectKey: { S: `${p.workspaceId}/${p.projectId}` }, seq: { N: '0' }, headSeq: { N: '41' }, lastId: { S: '0000000000000050-00000000' } } }));
    await router(store).process([record(p, 0x100)]);
    expect((await store.read(p, 41, 10)).entries.map((e) => e.seq)).toEqual([42]);
  });

  it('in thin mode keeps thin entries after full ones (a switch of mode), finds their ids again, and replays both forms', async () => {
    const store = new DynamoChangelogStore(client, { table });
    const p = project(5);
    await router(store).process([record(p, 0x100), record(p, 0x200)]);
    await router(new DynamoChangelogStore(client, { table }), undefined, 'thin').process([record(p, 0x300), record(p, 0x400)]);
    // Reprocessed from the start (a reset or a crash before any checkpoint): the same seqs, by id, whatever the entries' form.
    const again: number[] = [];
    await router(new DynamoChangelogStore(client, { table }), undefined, 'thin', again).process([0x100, 0x200, 0x300, 0x400, 0x500].map((lsn) => record(p, lsn)));
    expect(again).toEqual([1, 2, 3, 4, 5]);
    const r = replayAnswer(await store.read(p, 0, 100), 0);
    expect(r.status === 200 && r.body.changes.map((c) => [c.seq, isThinEntry(c) ? 'thin' : 'full', entryId(c).slice(13, 16)])).toEqual([
      [1, 'full', '100'],
      [2, 'full', '200'],
      [3, 'thin', '300'],
      [4, 'thin', '400'],
      [5, 'thin', '500'],
    ]);
    const thin = r.status === 200 ? r.body.changes[2] : undefined;
    expect(thin).toEqual({ seq: 3, mode: 'thin', id: expect.any(String), type: 'taskflow.task.updated', time: expect.any(String), key: { id: '33333333-3333-4333-8333-000000000768' }, changed: expect.any(Array) });
  });

  it('splits a run larger than one item and reads it back whole', async () => {
    const store = new DynamoChangelogStore(client, { table });
    const p = project(2);
    // ~40 events of ~60 KB of incompressible text: several items.
    const noise = (i: number) => Buffer.from(Array.from({ length: 45_000 }, (_, k) => (k * 2654435761 + i * 97) % 251)).toString('base64');
    const records = Array.from({ length: 40 }, (_, i) => record(p, 0x100 * (i + 1), noise(i)));
    await router(store).process(records);
    const page = await store.read(p, 0, 1000);
    expect(page.entries.map((e) => e.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    const r = replayAnswer(await store.read(p, 17, 5), 17);
    expect(r.status === 200 && r.body.changes.map((c) => c.seq)).toEqual([18, 19, 20, 21, 22]);
  });
});
