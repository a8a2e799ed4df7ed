// The audit replay's rules, under any schedule fast-check finds: a live writer recorded a shard's
// changes with a gap in them (its records trimmed before it read them) and has not read the
// tail yet; replays then hand over the stream and the raw archive (overlapping, with capture
// re-sends, in random batches, the two sources interleaved), the first one sometimes stopped
// part-way. Afterwards the trail holds every change the live writer passed exactly once, none
// of the tail it will record itself, every chain verifies, and one more replay writes nothing.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { Checkpointer, UserRecord } from '@taskflow/stream';
import { ARRIVAL_GRACE_MS, ARCHIVE_SHARD } from '../lib/replay.js';
import { silentLogger } from '../lib/logger.js';
import { sampleEvent } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import { parseSegmentKey, type Segment, verifyShard } from './chain.js';
import { identityKey } from './identities.js';
import { listShards } from './inspect.js';
import { Pseudonymizer } from './record.js';
import { AuditReplayWriter, type AuditReplayDeps, readTrailIndex, verdict } from './replay-writer.js';
import { AuditShardWriter } from './shard-writer.js';
import { MemoryAuditStore } from './store.js';

const SHARD = 'shardId-000000000001';
const WORKSPACES = ['11111111-1111-4111-8111-000000000001', '11111111-1111-4111-8111-000000000002'];
const USER = '44444444-4444-4444-8444-000000000001';
const pseudonyms = new Pseudonymizer(Buffer.from('audit-replay-property-key-0123456789'));
const BASE = Date.parse('2026-12-01T10:00:00Z');
/** Changes further apart than capture's lag allowance, so the trim horizon falls between two. */
const SPACING_MS = 2 * ARRIVAL_GRACE_MS;
const checkpointer: Checkpointer = { checkpoint: () => Promise.resolve() };

function changes(n: number, actors: boolean[]): { stream: UserRecord[]; archive: UserRecord[]; ids: string[] } {
  const events = Array.from({ length: n }, (_, i) => {
    const e = sampleEvent('task.updated', { workspaceId: WORKSPACES[i % 2]!, commitLsn: BigInt(0x10000 + i * 0x100), entityId: `33333333-3333-4333-8333-${String(i).padStart(12, '0')}`, time: new Date(BASE + i * SPACING_MS).toISOString() });
    if (actors[i % actors.length]) (e.data.source as unknown as Record<string, unknown>).actor = { userId: USER, via: 'test' };
    return e;
  });
  const bytes = events.map((e) => Buffer.from(JSON.stringify(e)));
  return {
    stream: bytes.map((data, i) => ({ shardId: SHARD, sequenceNumber: String(1_000_000 + i * 10), subSequenceNumber: 0, partitionKey: events[i]!.workspaceid, data })),
    archive: bytes.map((data, i) => ({ shardId: ARCHIVE_SHARD, sequenceNumber: '0', subSequenceNumber: i, partitionKey: events[i]!.workspaceid, data })),
    ids: events.map((e) => e.id),
  };
}

function batches<T>(items: readonly T[], sizes: readonly number[]): T[][] {
  const out: T[][] = [];
  for (let i = 0, k = 0; i < items.length; k++) {
    const size = sizes[k % sizes.length]!;
    out.push(items.slice(i, i + size));
    i += size;
  }
  return out;
}

async function trailIds(store: MemoryAuditStore): Promise<string[]> {
  const ids: string[] = [];
  for (const [chain, keys] of await listShards(store)) {
    const stored = keys.map(({ index, key }) => ({ index, bytes: store.objects.get(key)! }));
    expect(verifyShard(chain, stored).finding).toBeUndefined();
    for (const { bytes } of stored) ids.push(...(JSON.parse(Buffer.from(bytes).toString('utf8')) as Segment).records.map((r) => r.eventId));
  }
  return ids.sort();
}

async function openReplay(store: MemoryAuditStore, run: string, trimmedBefore: number): Promise<AuditReplayDeps> {
  const trail = await readTrailIndex(store, { from: new Date(BASE), to: new Date(BASE + 100 * SPACING_MS) });
  return { consumer: 'audit', store, trail, trimmedBefore, run, deadLetters: { put: () => Promise.reject(new Error('no dead letter expected')) }, validate: validateEvent, pseudonyms, knownIdentities: new Set(), counts: { recorded: 0, held: 0, live: 0 } };
}

describe('audit replay', () => {
  it('writes exactly the changes the live writer passed and lacks, once, across stopped and repeated replays', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 30 }).chain((n) =>
          fc.record({
            n: fc.constant(n),
            // The live writer read [0, a), lost [a, b) (trimmed), read [b, c); [c, n) it has not read yet.
            cuts: fc.array(fc.integer({ min: 0, max: n }), { minLength: 3, maxLength: 3 }).map((xs) => xs.sort((x, y) => x - y)),
            actors: fc.array(fc.boolean(), { minLength: 1, maxLength: 3 }),
            liveBatches: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 }),
            replayBatches: fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 4 }),
            resends: fc.array(fc.integer({ min: 0, max: n - 1 }), { maxLength: 4 }),
            order: fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
            stopAfter: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }),
          }),
        ),
        async ({ n, cuts: [a, b, c], actors, liveBatches, replayBatches, resends, order, stopAfter }) => {
          const { stream, archive, ids } = changes(n, actors);
          const store = new MemoryAuditStore();
          const live = new AuditShardWriter(SHARD, { consumer: 'audit', store, deadLetters: { put: () => Promise.resolve() }, validate: validateEvent, pseudonyms, knownIdentities: new Set(), logger: silentLogger });
          await live.initialize({ shardId: SHARD, parentStates: [] });
          for (const batch of batches([...stream.slice(0, a), ...stream.slice(b!, c)], liveBatches)) await live.processRecords({ records: batch, millisBehindLatest: 0 }, checkpointer);
          // The stream still holds [b, n) (and capture's re-sends, at later positions); the archive every change.
          const streamPart = [...stream.slice(b), ...resends.filter((i) => i >= b!).map((i, k) => ({ ...stream[i]!, sequenceNumber: String(9_000_000 + k * 10) }))];
          const archivePart = [...archive, ...resends.map((i) => archive[i]!)];
          // The trim horizon: the first change still in the stream (b), so archive changes before it are the replay's.
          const trimmedBefore = BASE + b! * SPACING_MS + ARRIVAL_GRACE_MS;

          const runReplay = async (run: string, stop?: number) => {
            const deps = await openReplay(store, run, trimmedBefore);
            const sources = [batches(streamPart, replayBatches).map((x) => ({ x })), batches(archivePart, replayBatches).map((x) => ({ x }))];
            const writers = [new AuditReplayWriter(SHARD, deps), new AuditReplayWriter(ARCHIVE_SHARD, deps)];
            let handed = 0;
            for (let k = 0; sources.some((s) => s.length > 0); k++) {
              const pick = sources[0]!.length === 0 ? 1 : sources[1]!.length === 0 ? 0 : order[k % order.length] ? 0 : 1;
              const { x } = sources[pick]!.shift()!;
              if (stop !== undefined && handed++ >= stop) break;
              await writers[pick]!.processRecords({ records: x, millisBehindLatest: 0 }, checkpointer);
            }
            return deps.counts;
          };
          if (stopAfter !== undefined) await runReplay('first', stopAfter);
          await runReplay('second');
          expect(await trailIds(store)).toEqual(ids.slice(0, c).sort());
          const third = await runReplay('third');
          expect(third.recorded).toBe(0);
          expect(await trailIds(store)).toEqual(ids.slice(0, c).sort());
        },
      ),
      { numRuns: 200 },
    );
  });

  it('writes no identity mapping for an erased actor, and one for anyone else', async () => {
    const { archive } = changes(1, [true]);
    for (const erasedUser of [true, false]) {
      const store = new MemoryAuditStore();
      const deps = { ...(await openReplay(store, 'r', Date.now())), erased: { isErased: (u: string) => Promise.resolve(erasedUser && u === USER) } };
      await new AuditReplayWriter(ARCHIVE_SHARD, deps).processRecords({ records: archive, millisBehindLatest: 0 }, checkpointer);
      expect(deps.counts.recorded).toBe(1);
      expect(store.objects.has(identityKey(pseudonyms.actor(USER)))).toBe(!erasedUser);
      expect([...store.objects.keys()].filter((k) => parseSegmentKey(k)?.shardId === 'replay-r-archive')).toHaveLength(1);
    }
  });

  it('dead-letters an invalid archive line under a key of its bytes, and records nothing for it', async () => {
    const store = new MemoryAuditStore();
    const letters: unknown[] = [];
    const deps = { ...(await openReplay(store, 'r', Date.now())), deadLetters: { put: (l: unknown) => Promise.resolve(void letters.push(l)) } };
    const bad = { shardId: ARCHIVE_SHARD, sequenceNumber: '0', subSequenceNumber: 3, partitionKey: '', data: Buffer.from('{"specversion":"1.0"}') };
    await new AuditReplayWriter(ARCHIVE_SHARD, deps).processRecords({ records: [bad], millisBehindLatest: 0 }, checkpointer);
    expect(letters).toEqual([expect.objectContaining({ origin: { shardId: ARCHIVE_SHARD, sequenceNumber: expect.stringMatching(/^[0-9a-f]{64}$/), subSequenceNumber: 0 } })]);
    expect(await store.list('segments/')).toEqual([]);
  });

  it('verdict: held first; a stream record up to the live chain; an archive change before the trim horizon', () => {
    const trail = { held: new Set(['held']), through: new Map([[SHARD, { sequenceNumber: '100', subSequenceNumber: 0 }]]), trimmedBefore: BASE };
    const at = (sequenceNumber: string) => ({ sequenceNumber, subSequenceNumber: 0 });
    const time = (ms: number) => new Date(ms).toISOString();
    expect(verdict({ eventId: 'held', time: time(0), source: SHARD, position: at('1') }, trail)).toBe('held');
    expect(verdict({ eventId: 'x', time: time(BASE), source: SHARD, position: at('100') }, trail)).toBe('record');
    expect(verdict({ eventId: 'x', time: time(0), source: SHARD, position: at('101') }, trail)).toBe('live');
    expect(verdict({ eventId: 'x', time: time(0), source: 'shardId-000000000002', position: at('1') }, trail)).toBe('live');
    expect(verdict({ eventId: 'x', time: time(BASE - ARRIVAL_GRACE_MS - 1), source: ARCHIVE_SHARD, position: at('0') }, trail)).toBe('record');
    expect(verdict({ eventId: 'x', time: time(BASE - ARRIVAL_GRACE_MS), source: ARCHIVE_SHARD, position: at('0') }, trail)).toBe('live');
  });
});
