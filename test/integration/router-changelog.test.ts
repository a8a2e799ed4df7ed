// The DynamoDB changelog against dynalite: the ShardRouter's sequencing through it (including a
// crash between the changelog write and the head), lookups by id, replay ranges, oversized runs
// split over items, and TTL expiry turning into the resync answer.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { sampleEvent } from '../../schemas/fixtures.js';
import { validateEvent } from '../../schemas/validate.js';
import { type ProjectRef, StaleHeadError } from '../../router/changelog.js';
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

function router(store: DynamoChangelogStore, state?: string) {
  return new ShardRouter(
    { shardId: 's', changelog: store, sink: { enqueue() {}, flush: async () => {}, revoke() {} }, deadLetters: { put: async () => {} }, memberships: { apply: async () => {} }, validate: validateEvent },
    state,
  );
}

describe('DynamoChangelogStore', () => {
  it('sequences densely, survives a crash before the head write with the same seqs, and finds ids', async () => {
    let now = Date.now();
    const store = new DynamoChangelogStore(client, { table, now: () => now });
    const p = project(1);
    const first = router(store);
    const state = await first.process([record(p, 0x100), record(p, 0x200)]);

    // Crash after the entries of the next batch are written, before the head moves.
    const crashing = new DynamoChangelogStore(client, { table, now: () => now });
    const originalSend = client.send.bind(client);
    let puts = 0;
    client.send = ((cmd: { constructor: { name: string }; input: { Item?: { seq?: { N?: string } } } }) => {
      if (cmd.constructor.name === 'PutItemCommand' && cmd.input.Item?.seq?.N === '0' && puts++ === 0) return Promise.reject(new Error('crash'));
      return originalSend(cmd as never);
    }) as typeof client.send;
    await expect(router(crashing, state).process([record(p, 0x300), record(p, 0x400)])).rejects.toThrow('crash');
    client.send = originalSend;
    expect((await store.readHead(p)).seq).toBe(2);

    // Reprocessing from the checkpoint, with one more event in the batch this time.
    await router(store, state).process([record(p, 0x300), record(p, 0x400), record(p, 0x500)]);
    const page = await store.read(p, 0, 100);
    expect(page.entries.map((e) => [e.seq, e.event.id.slice(13, 16)])).toEqual([[1, '100'], [2, '200'], [3, '300'], [4, '400'], [5, '500']]);
    expect(await store.findSeqs(p, page.head, ['0000000000000200-00000000', '0000000000000500-00000000', '0000000000000050-00000000'])).toEqual(
      new Map([['0000000000000200-00000000', 2], ['0000000000000500-00000000', 5]]),
    );

    // A writer with a stale head is refused and corrupts nothing: neither with another history
    // at those seqs, nor with a shorter rewrite of the same one.
    await expect(store.append(p, [{ seq: 3, event: page.entries[0]!.event }], { seq: 2, lastId: null }, { seq: 3, lastId: 'x' })).rejects.toBeInstanceOf(StaleHeadError);
    await expect(store.append(p, [{ seq: 3, event: page.entries[2]!.event }], { seq: 2, lastId: null }, { seq: 3, lastId: 'x' })).rejects.toBeInstanceOf(StaleHeadError);
    expect((await store.read(p, 0, 100)).entries.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);

    // Replay: the exact range; after the TTL the resync answer.
    const r = replayAnswer(await store.read(p, 3, 100), 3);
    expect(r.status === 200 && r.body.changes.map((c) => c.seq)).toEqual([4, 5]);
    now += 8 * 24 * 3600 * 1000;
    await router(store, state).process([record(p, 0x600)]);
    expect(replayAnswer(await store.read(p, 3, 100), 3)).toEqual({ status: 410, body: { error: 'resync_required', oldestSeq: 6, latestSeq: 6 } });
    const fresh = replayAnswer(await store.read(p, 5, 100), 5);
    expect(fresh.status === 200 && fresh.body.changes.map((c) => c.seq)).toEqual([6]);
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
