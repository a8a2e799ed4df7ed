// Reading the trail back: `taskflow audit verify` (recompute every shard's chain, or the part
// of it a time range covers) and `taskflow audit query` (one entity's history).
import { decodeSegment, parseSegmentKey, type SegmentLink, segmentHash, type ShardVerification, type StoredSegment, verifyShard } from './chain.js';
import { resolveIdentity } from './identities.js';
import type { AuditRecord } from './record.js';
import type { AuditStore } from './store.js';

/** Every shard's segment keys, by shard, in chain order. */
export async function listShards(store: AuditStore): Promise<Map<string, { index: number; key: string }[]>> {
  const shards = new Map<string, { index: number; key: string }[]>();
  for (const key of await store.list('segments/')) {
    const at = parseSegmentKey(key);
    if (!at) continue;
    const list = shards.get(at.shardId) ?? [];
    list.push({ index: at.index, key });
    shards.set(at.shardId, list);
  }
  return shards;
}

export interface VerifyOptions {
  /** Only the segments holding changes committed in [from, to] (and the link into them). */
  from?: Date;
  to?: Date;
  /** Per shard, the newest segment the writer checkpointed (the consumer's lease state). */
  heads?: ReadonlyMap<string, SegmentLink>;
}

/**
 * Verifies each shard's chain. With a time range, the first segment in range is found by binary
 * search on the segments' commit times (they grow along a chain), and its predecessor, once its
 * own hash is recomputed, anchors the check: a range costs O(log n + segments in range) reads.
 */
export async function verifyTrail(store: AuditStore, opts: VerifyOptions = {}): Promise<ShardVerification[]> {
  const results: ShardVerification[] = [];
  const shards = await listShards(store);
  for (const shardId of new Set([...shards.keys(), ...(opts.heads?.keys() ?? [])])) {
    const keys = shards.get(shardId) ?? [];
    let start = 0;
    let from: SegmentLink | undefined;
    if (opts.from) {
      const fromIso = opts.from.toISOString();
      let lo = 0;
      let hi = keys.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        const s = decodeSegment(await store.get(keys[mid]!.key));
        if (s && s.lastTime < fromIso) lo = mid + 1;
        else hi = mid;
      }
      start = lo;
      const before = start > 0 ? decodeSegment(await store.get(keys[start - 1]!.key)) : undefined;
      if (before) from = { shardId, index: keys[start - 1]!.index, hash: segmentHash(before) };
    }
    const stored: StoredSegment[] = [];
    const toIso = opts.to?.toISOString();
    for (const { index, key } of keys.slice(start)) {
      const bytes = (await store.get(key)) ?? new Uint8Array();
      if (toIso !== undefined) {
        const s = decodeSegment(bytes);
        if (s && s.firstTime > toIso) break;
      }
      stored.push({ index, bytes });
    }
    const head = opts.heads?.get(shardId);
    // Past the range's end the checkpoint's head is not expected to be reached.
    const checkHead = head && (toIso === undefined || stored.length + start >= keys.length);
    results.push(verifyShard(shardId, stored, { ...(from ? { from } : {}), ...(checkHead ? { expectedHead: head } : {}) }));
  }
  await checkParentLinks(store, shards, results);
  return results.sort((a, b) => a.shardId.localeCompare(b.shardId));
}

/**
 * A child shard's first segment names its parents' last segments: a parent chain that ends
 * elsewhere lost its tail (or had it replaced) after the reshard.
 */
async function checkParentLinks(store: AuditStore, shards: ReadonlyMap<string, { index: number; key: string }[]>, results: ShardVerification[]): Promise<void> {
  const byShard = new Map(results.map((r) => [r.shardId, r]));
  for (const [shardId, keys] of shards) {
    const first = keys[0]?.index === 0 ? decodeSegment(await store.get(keys[0].key)) : undefined;
    for (const link of first?.parents ?? []) {
      const parent = byShard.get(link.shardId);
      if (!parent || parent.finding || !parent.last) continue; // a range check that stops short, or already broken
      if (parent.last.index < link.index) parent.finding = { problem: 'removed', shardId: link.shardId, index: parent.last.index + 1, detail: `child shard ${shardId} names segment ${link.index} as this shard's last, the chain ends at ${parent.last.index}` };
      else if (parent.last.index === link.index && parent.last.hash !== link.hash) parent.finding = { problem: 'altered', shardId: link.shardId, index: link.index, detail: `its hash is not the one child shard ${shardId} recorded` };
    }
  }
}

export interface HistoryEntry extends AuditRecord {
  shardId: string;
  segment: number;
  /** The actor's user id, while the identity mapping exists (erasure deletes it). */
  userId?: string;
}

/** Every record of `subject` (e.g. tasks/<id>), in commit order. Reads every segment: an offline tool, not an index. */
export async function entityHistory(store: AuditStore, subject: string): Promise<HistoryEntry[]> {
  const found: HistoryEntry[] = [];
  for (const [shardId, keys] of await listShards(store)) {
    for (const { index, key } of keys) {
      const s = decodeSegment(await store.get(key));
      for (const r of s?.records ?? []) if (r.subject === subject) found.push({ ...r, shardId, segment: index });
    }
  }
  const names = new Map<string, string | undefined>();
  for (const e of found) {
    if (e.actor === null) continue;
    if (!names.has(e.actor)) names.set(e.actor, await resolveIdentity(store, e.actor));
    const userId = names.get(e.actor);
    if (userId) e.userId = userId;
  }
  return found.sort((a, b) => a.eventId.localeCompare(b.eventId));
}
