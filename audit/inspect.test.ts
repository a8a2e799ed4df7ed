// verifyTrail over a store: time ranges anchored mid-chain, and the links from a child shard's
// first segment to its parents' last ones after a reshard.
import { describe, expect, it } from '@jest/globals';
import { buildSegment, encodeSegment, type Segment, type SegmentLink, segmentKey } from './chain.js';
import { entityHistory, verifyTrail } from './inspect.js';
import { identityKey } from './identities.js';
import type { AuditRecord } from './record.js';
import { MemoryAuditStore } from './store.js';

const record = (n: number, subject = `tasks/${n % 3}`): AuditRecord => ({
  eventId: `${n.toString(16).toUpperCase().padStart(16, '0')}-00000000`,
  type: 'taskflow.task.updated',
  subject,
  workspaceId: 'ws',
  op: 'u',
  actor: n % 2 ? 'p1' : null,
  time: new Date(Date.UTC(2026, 11, 1, 0, n)).toISOString(),
  lsn: `0/${n.toString(16).toUpperCase()}`,
  xid: n,
  txIndex: 0,
  before: null,
  after: 'd',
});

async function writeChain(store: MemoryAuditStore, shardId: string, first: number, count: number, parents: SegmentLink[] = []): Promise<Segment[]> {
  const out: Segment[] = [];
  let head: SegmentLink | undefined;
  for (let i = 0; i < count; i++) {
    const s = buildSegment({ shardId, head, parents, through: { sequenceNumber: String(first + i), subSequenceNumber: 0 }, records: [record(first + i)] });
    await store.create(segmentKey(shardId, s.index), encodeSegment(s));
    head = { shardId, index: s.index, hash: s.hash };
    out.push(s);
  }
  return out;
}

const link = (s: Segment): SegmentLink => ({ shardId: s.shardId, index: s.index, hash: s.hash });

describe('verifyTrail', () => {
  it('checks only the segments of a time range, anchored on the one before', async () => {
    const store = new MemoryAuditStore();
    await writeChain(store, 'shard-a', 1, 10);
    const [r] = await verifyTrail(store, { from: new Date(Date.UTC(2026, 11, 1, 0, 4)), to: new Date(Date.UTC(2026, 11, 1, 0, 6)) });
    expect(r).toMatchObject({ shardId: 'shard-a', segments: 3, records: 3 });
    expect(r!.finding).toBeUndefined();
    // Segment 2 (before the range) replaced: the range's first link no longer matches it.
    const forged = buildSegment({ shardId: 'shard-a', head: undefined, through: { sequenceNumber: '0', subSequenceNumber: 0 }, records: [record(99)] });
    store.objects.set(segmentKey('shard-a', 2), encodeSegment({ ...forged, index: 2 }));
    const [broken] = await verifyTrail(store, { from: new Date(Date.UTC(2026, 11, 1, 0, 4)) });
    expect(broken!.finding).toMatchObject({ problem: 'altered', index: 2 });
  });

  it("follows a reshard: a parent whose chain no longer ends where its child's first segment says is named", async () => {
    const store = new MemoryAuditStore();
    const parent = await writeChain(store, 'shard-p', 1, 3);
    await writeChain(store, 'shard-c', 10, 2, [link(parent.at(-1)!)]);
    expect((await verifyTrail(store)).map((r) => r.finding)).toEqual([undefined, undefined]);
    await store.delete(segmentKey('shard-p', 2)); // the parent's tail: nothing after it in its own chain
    const results = await verifyTrail(store);
    expect(results.find((r) => r.shardId === 'shard-p')!.finding).toMatchObject({ problem: 'removed', index: 2 });
  });

  it("lists an entity's history in commit order with the actor's user id while the mapping exists", async () => {
    const store = new MemoryAuditStore();
    await writeChain(store, 'shard-a', 1, 6);
    await store.put(identityKey('p1'), Buffer.from(JSON.stringify({ userId: 'user-1' })));
    const history = await entityHistory(store, 'tasks/1');
    expect(history.map((h) => [h.xid, h.userId ?? null])).toEqual([
      [1, 'user-1'],
      [4, null],
    ]);
  });
});
