// The chain rules: an untouched chain verifies; altering any record or header, removing any
// segment (the tail included, against the checkpoint's head) or swapping two segments is named
// at the first segment touched.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { buildSegment, canonicalJson, encodeSegment, leafHash, merkleRoot, type Segment, type SegmentLink, type StoredSegment, verifyShard } from './chain.js';
import type { AuditRecord } from './record.js';

const SHARD = 'shardId-000000000000';

function record(i: number): AuditRecord {
  return {
    eventId: `${(0x1000 + i).toString(16).toUpperCase().padStart(16, '0')}-00000000`,
    type: 'taskflow.task.updated',
    subject: `tasks/${i}`,
    workspaceId: 'ws',
    op: 'u',
    changed: ['status'],
    actor: i % 3 === 0 ? null : `p${i % 5}`,
    time: new Date(Date.UTC(2026, 11, 1, 0, 0, i)).toISOString(),
    lsn: `0/${(0x1000 + i).toString(16).toUpperCase()}`,
    xid: 700 + i,
    txIndex: 0,
    before: null,
    after: `d${i}`,
  };
}

function chain(sizes: readonly number[]): Segment[] {
  const out: Segment[] = [];
  let head: SegmentLink | undefined;
  let n = 0;
  for (const size of sizes) {
    const records = Array.from({ length: size }, () => record(n++));
    const s = buildSegment({ shardId: SHARD, head, through: { sequenceNumber: String(1000 + n), subSequenceNumber: 0 }, records });
    out.push(s);
    head = { shardId: SHARD, index: s.index, hash: s.hash };
  }
  return out;
}

const stored = (segments: readonly Segment[]): StoredSegment[] => segments.map((s) => ({ index: s.index, bytes: encodeSegment(s) }));
const linkOf = (s: Segment): SegmentLink => ({ shardId: s.shardId, index: s.index, hash: s.hash });
const sizes = fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 12 });

describe('audit chain', () => {
  it('canonical JSON does not depend on key order', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.oneof(fc.integer(), fc.string(), fc.constant(null))), (obj) => {
        const reversed = Object.fromEntries(Object.entries(obj).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(obj));
      }),
    );
  });

  it('the Merkle root commits to every leaf and their order', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 20 }), fc.nat(), fc.nat(), (n, a, b) => {
        const leaves = Array.from({ length: n }, (_, i) => leafHash(record(i)));
        const root = merkleRoot(leaves);
        const [i, j] = [a % n, b % n];
        fc.pre(i !== j);
        const swapped = [...leaves];
        [swapped[i], swapped[j]] = [swapped[j]!, swapped[i]!];
        expect(merkleRoot(swapped)).not.toBe(root);
        expect(merkleRoot(leaves.slice(0, -1))).not.toBe(root);
      }),
    );
  });

  it('an untouched chain verifies, against the checkpoint head too', () => {
    fc.assert(
      fc.property(sizes, (s) => {
        const segments = chain(s);
        const v = verifyShard(SHARD, stored(segments), { expectedHead: linkOf(segments.at(-1)!) });
        expect(v.finding).toBeUndefined();
        expect(v.segments).toBe(segments.length);
        expect(v.records).toBe(s.reduce((a, b) => a + b, 0));
        // A check that starts mid-chain, anchored at the segment before it.
        const k = Math.floor(segments.length / 2);
        if (k > 0) expect(verifyShard(SHARD, stored(segments.slice(k)), { from: linkOf(segments[k - 1]!) }).finding).toBeUndefined();
      }),
    );
  });

  it('names the segment whose record was altered, even when its root and hash were recomputed to match', () => {
    fc.assert(
      fc.property(sizes, fc.nat(), fc.nat(), fc.boolean(), (s, at, rec, rehash) => {
        const segments = chain(s);
        const k = at % segments.length;
        const target = segments[k]!;
        const records = target.records.map((r, i) => (i === rec % target.records.length ? { ...r, actor: 'someone-else' } : r));
        // A careful forger rebuilds the segment so it is self-consistent: the next link (or the checkpoint) still catches it.
        const forged = rehash ? buildSegment({ shardId: SHARD, head: k > 0 ? linkOf(segments[k - 1]!) : undefined, through: target.through, records }) : { ...target, records };
        const tampered = segments.map((x, i) => (i === k ? forged : x));
        const v = verifyShard(SHARD, stored(tampered), { expectedHead: linkOf(segments.at(-1)!) });
        expect(v.finding).toMatchObject({ problem: 'altered', index: k });
      }),
    );
  });

  it('names the first segment removed, the tail included', () => {
    fc.assert(
      fc.property(sizes, fc.nat(), (s, at) => {
        const segments = chain(s);
        const k = at % segments.length;
        const v = verifyShard(
          SHARD,
          stored(segments.filter((_, i) => i !== k)),
          { expectedHead: linkOf(segments.at(-1)!) },
        );
        expect(v.finding).toMatchObject({ problem: 'removed', index: k });
      }),
    );
  });

  it('names the first place where two segments were swapped', () => {
    fc.assert(
      fc.property(sizes, fc.nat(), fc.nat(), (s, a, b) => {
        const segments = chain(s);
        fc.pre(segments.length >= 2);
        const [i, j] = [a % segments.length, b % segments.length].sort((x, y) => x - y) as [number, number];
        fc.pre(i !== j);
        // The objects keep their names (keys) but hold each other's segment.
        const swapped = stored(segments).map((x, n) => (n === i ? { index: i, bytes: encodeSegment(segments[j]!) } : n === j ? { index: j, bytes: encodeSegment(segments[i]!) } : x));
        const v = verifyShard(SHARD, swapped, { expectedHead: linkOf(segments.at(-1)!) });
        expect(v.finding).toMatchObject({ problem: 'reordered', index: i });
      }),
    );
  });
});
