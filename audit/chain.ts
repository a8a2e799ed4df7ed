// The hash chain, pure. One segment per shard per flushed batch: its records, a Merkle root over
// them (RFC 6962 hashing: leaf = H(0x00 ‖ record), node = H(0x01 ‖ left ‖ right)), and the hash
// of the shard's previous segment. The segment's own hash covers its header (which holds the
// root), so changing, dropping or reordering any record, or any segment, breaks the chain at
// the first segment touched. A shard's first segment after a reshard names its parents' last
// segments, so the chain continues across splits and merges.
//
// Why segments and not one log entry per event: at 120K changes/s a transparency log that
// appends each event (a few thousand writes/s per node) cannot keep up; one leaf per shard per
// batch, chained, can, and a record's inclusion is still provable from its segment's root.
import { createHash } from 'node:crypto';
import type { AuditRecord } from './record.js';

export const SEGMENT_VERSION = 1;

/** Where in its shard a segment ends: the last Kinesis record it covers. */
export interface ThroughPosition {
  sequenceNumber: string;
  subSequenceNumber: number;
}

export interface SegmentLink {
  shardId: string;
  index: number;
  hash: string;
}

export interface SegmentHeader {
  v: number;
  shardId: string;
  /** 0, 1, 2 … per shard, no gaps. */
  index: number;
  /** Hash of segment index-1 of this shard; null for a shard's first segment. */
  prev: string | null;
  /** A shard's first segment after a reshard: the parents' last segments. */
  parents: SegmentLink[];
  through: ThroughPosition;
  count: number;
  /** Earliest and latest commit time among the records. */
  firstTime: string;
  lastTime: string;
  root: string;
}

export interface Segment extends SegmentHeader {
  hash: string;
  records: AuditRecord[];
}

/** JSON with object keys sorted at every level: one byte string per value, whatever the key order it was built with. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`not a finite number: ${value}`);
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const entries = Object.keys(value)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(',')}}`;
}

const sha256 = (...parts: (string | Uint8Array)[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

const LEAF = Buffer.from([0]);
const NODE = Buffer.from([1]);

export function leafHash(record: AuditRecord): Buffer {
  return sha256(LEAF, canonicalJson(record));
}

/** RFC 6962 Merkle tree hash (MTH) of the leaves, hex; the empty tree is SHA-256 of nothing. */
export function merkleRoot(leaves: readonly Buffer[]): string {
  const mth = (from: number, to: number): Buffer => {
    const n = to - from;
    if (n === 0) return sha256();
    if (n === 1) return leaves[from]!;
    let k = 1;
    while (k * 2 < n) k *= 2; // the largest power of two below n
    return sha256(NODE, mth(from, from + k), mth(from + k, to));
  };
  return mth(0, leaves.length).toString('hex');
}

export function headerOf(s: SegmentHeader): SegmentHeader {
  return { v: s.v, shardId: s.shardId, index: s.index, prev: s.prev, parents: s.parents, through: s.through, count: s.count, firstTime: s.firstTime, lastTime: s.lastTime, root: s.root };
}

export function segmentHash(header: SegmentHeader): string {
  return sha256(canonicalJson(headerOf(header))).toString('hex');
}

/** The segment that follows `head` (or starts a shard's chain) with `records`, which must not be empty. */
export function buildSegment(input: { shardId: string; head: SegmentLink | undefined; parents?: SegmentLink[]; through: ThroughPosition; records: AuditRecord[] }): Segment {
  if (input.records.length === 0) throw new Error('a segment holds at least one record');
  const times = input.records.map((r) => r.time).sort();
  const header: SegmentHeader = {
    v: SEGMENT_VERSION,
    shardId: input.shardId,
    index: input.head ? input.head.index + 1 : 0,
    prev: input.head ? input.head.hash : null,
    parents: input.head ? [] : (input.parents ?? []),
    through: input.through,
    count: input.records.length,
    firstTime: times[0]!,
    lastTime: times.at(-1)!,
    root: merkleRoot(input.records.map(leafHash)),
  };
  return { ...header, hash: segmentHash(header), records: input.records };
}

/** Object key of a shard's segment: index zero-padded so keys list in chain order. */
export function segmentKey(shardId: string, index: number): string {
  return `segments/${shardId}/${String(index).padStart(12, '0')}.json`;
}

export function parseSegmentKey(key: string): { shardId: string; index: number } | undefined {
  const m = /^segments\/([^/]+)\/(\d{12})\.json$/.exec(key);
  return m ? { shardId: m[1]!, index: Number(m[2]) } : undefined;
}

export function encodeSegment(s: Segment): Uint8Array {
  return Buffer.from(`${JSON.stringify(s)}\n`);
}

/** A stored segment's bytes as a segment; undefined when absent or not JSON (verifyShard names the finding). */
export function decodeSegment(bytes: Uint8Array | undefined): Segment | undefined {
  if (!bytes) return undefined;
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as Segment;
  } catch {
    return undefined;
  }
}

export type Finding =
  | { problem: 'removed'; shardId: string; index: number; detail: string }
  | { problem: 'altered'; shardId: string; index: number; detail: string }
  | { problem: 'reordered'; shardId: string; index: number; detail: string }
  | { problem: 'unreadable'; shardId: string; index: number; detail: string };

/** One stored object of a shard's chain, as listed: its index from its key, its bytes. */
export interface StoredSegment {
  index: number;
  bytes: Uint8Array;
}

export interface ShardVerification {
  shardId: string;
  segments: number;
  records: number;
  /** The last segment checked, to anchor a later check or a child shard. */
  last?: SegmentLink;
  /** The first problem found, in chain order; nothing after it is trusted. */
  finding?: Finding;
}

function parseSegment(bytes: Uint8Array): Segment | undefined {
  try {
    const s = JSON.parse(Buffer.from(bytes).toString('utf8')) as Segment;
    return typeof s === 'object' && s !== null && Array.isArray(s.records) && typeof s.hash === 'string' ? s : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Recomputes one shard's chain from `stored` (in key order) and names the first segment that
 * was altered, removed or reordered. `from` anchors a check that starts mid-chain (the link of
 * the segment before the first stored one); `expectedHead` is the newest segment the writer is
 * known to have written (the consumer's checkpoint), so a removed tail is found too.
 */
export function verifyShard(shardId: string, stored: readonly StoredSegment[], opts: { from?: SegmentLink; expectedHead?: SegmentLink } = {}): ShardVerification {
  const result: ShardVerification = { shardId, segments: 0, records: 0 };
  let previous: SegmentLink | undefined = opts.from;
  let expectedIndex = opts.from ? opts.from.index + 1 : (stored[0]?.index ?? 0);
  if (!opts.from && stored.length > 0 && stored[0]!.index !== 0) {
    result.finding = { problem: 'removed', shardId, index: 0, detail: `the chain starts at segment ${stored[0]!.index}: segments 0..${stored[0]!.index - 1} are missing` };
    return result;
  }
  const hashes = new Map<string, number>();
  for (const { index, bytes } of stored) {
    if (index !== expectedIndex) {
      result.finding = { problem: 'removed', shardId, index: expectedIndex, detail: `segment ${expectedIndex} is missing (next stored: ${index})` };
      return result;
    }
    const s = parseSegment(bytes);
    if (!s) {
      result.finding = { problem: 'unreadable', shardId, index, detail: 'not a segment (JSON)' };
      return result;
    }
    const root = merkleRoot(s.records.map(leafHash));
    const hash = segmentHash(s);
    if (root !== s.root || s.count !== s.records.length) {
      result.finding = { problem: 'altered', shardId, index, detail: 'its records do not hash to its root' };
      return result;
    }
    if (hash !== s.hash) {
      result.finding = { problem: 'altered', shardId, index, detail: 'its header does not hash to its hash' };
      return result;
    }
    if (s.shardId !== shardId || s.index !== index) {
      const other = hashes.get(s.prev ?? '');
      result.finding = { problem: 'reordered', shardId, index, detail: `stored as segment ${index} of ${shardId} but it is segment ${s.index} of ${s.shardId}${other !== undefined ? ` (it follows segment ${other})` : ''}` };
      return result;
    }
    const expectedPrev = previous?.hash ?? null;
    if (s.prev !== expectedPrev) {
      const follows = hashes.get(s.prev ?? '');
      result.finding =
        follows !== undefined
          ? { problem: 'reordered', shardId, index, detail: `it links to segment ${follows}, not to segment ${index - 1}` }
          : { problem: 'altered', shardId, index: Math.max(0, index - 1), detail: `segment ${index} links to a hash segment ${index - 1} does not have: segment ${index - 1} was replaced` };
      return result;
    }
    hashes.set(s.hash, index);
    previous = { shardId, index, hash: s.hash };
    result.segments += 1;
    result.records += s.records.length;
    expectedIndex += 1;
  }
  result.last = previous;
  const head = opts.expectedHead;
  if (head) {
    if (!previous || previous.index < head.index) {
      result.finding = { problem: 'removed', shardId, index: previous ? previous.index + 1 : 0, detail: `the consumer's checkpoint names segment ${head.index}, the chain ends ${previous ? `at ${previous.index}` : 'before it starts'}` };
    } else if (head.index >= (opts.from?.index ?? -1) + 1 && hashes.get(head.hash) !== head.index) {
      result.finding = { problem: 'altered', shardId, index: head.index, detail: "its hash is not the one the consumer's checkpoint recorded" };
    }
  }
  return result;
}
