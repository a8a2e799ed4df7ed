// `taskflow replay audit`: the changes a gap in the trail lacks, written into chains of their own.
//
// The trail cannot be repaired in place: segments are create-once (Object Lock in production:
// nobody can overwrite or delete one), and each shard's chain links every segment to the one
// before it, so nothing can be slipped in between two stored segments. A replay therefore
// appends: each source it reads (a stream shard, the raw archive) gets a new chain
// `replay-<run>-<source>` holding only the changes the trail does not hold yet, one segment per
// batch. `verify` checks these chains as it checks the others; `query` reads them too.
//
// What is written: a change whose event id is in no segment (readTrailIndex) and that the live
// writer will never record itself, because it has passed it:
//   - a stream record at or before the last Kinesis position its shard's live chain covers (the
//     live writer skips everything up to there);
//   - an archive event committed before the stream's trim horizon (minus capture's lag
//     allowance): no reader can get it from the stream any more.
// Anything else is the live service's to record; writing it here too would double it, so it is
// left ("live") — a replay run after the service has moved past the window catches it.
// Run twice over the same window, the second run finds every change held and writes nothing.
import { createHash } from 'node:crypto';
import { TaskflowError } from '../lib/errors.js';
import { comparePositions as compareEventPositions, parseEventId } from '../lib/event-id.js';
import { ARRIVAL_GRACE_MS, ARCHIVE_SHARD } from '../lib/replay.js';
import { comparePositions, type Checkpointer, type ErasedSubjects, isForConsumer, type ProcessBatch, type ShardProcessor, type UserRecord } from '@taskflow/stream';
import type { EventValidator } from '../schemas/validate.js';
import { buildSegment, decodeSegment, encodeSegment, type Segment, type SegmentLink, segmentKey, type ThroughPosition } from './chain.js';
import { identityKey } from './identities.js';
import { listShards } from './inspect.js';
import { type AuditRecord, auditRecordOf, type Pseudonymizer } from './record.js';
import { type AuditDeadLetter, decodeAuditEvent, redrivenKey } from './shard-writer.js';
import type { AuditStore } from './store.js';

/** Chains a replay wrote start with this; every other chain is a Kinesis shard's, written live. */
export const REPLAY_CHAIN_PREFIX = 'replay-';

export function replayChainName(run: string, source: string): string {
  return `${REPLAY_CHAIN_PREFIX}${run}-${source}`;
}

/** What the trail holds around a replay's window. */
export interface TrailIndex {
  /** Event ids recorded (in the window's segments of the live chains, in every replay chain). */
  held: Set<string>;
  /** Per live chain (its Kinesis shard id), the last Kinesis record its newest segment covers. */
  through: Map<string, ThroughPosition>;
}

/**
 * Reads the trail's segments that can hold changes committed in [from, to]. Along a live chain
 * commit times grow (found by binary search, as `verify --from` does), up to capture's lag, taken
 * as ARRIVAL_GRACE_MS on both sides (the replay's own assumption about capture). Replay chains
 * are read whole: their times need not grow (the archive part follows the stream part), and they
 * hold only what gaps lacked. Memory: one event id per change in the window.
 */
export async function readTrailIndex(store: AuditStore, window: { from: Date; to: Date }): Promise<TrailIndex> {
  const held = new Set<string>();
  const through = new Map<string, ThroughPosition>();
  const fromIso = new Date(window.from.getTime() - ARRIVAL_GRACE_MS).toISOString();
  const toIso = new Date(window.to.getTime() + ARRIVAL_GRACE_MS).toISOString();
  const read = async (key: string): Promise<Segment> => {
    const s = decodeSegment(await store.get(key));
    if (!s) throw new TaskflowError('AUDIT_SEGMENT_UNREADABLE', `segment ${key} is unreadable: the replay cannot tell what the trail holds (run taskflow audit verify)`);
    return s;
  };
  for (const [chain, keys] of await listShards(store)) {
    const replayed = chain.startsWith(REPLAY_CHAIN_PREFIX);
    let lo = 0;
    if (!replayed) {
      let hi = keys.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((await read(keys[mid]!.key)).lastTime < fromIso) lo = mid + 1;
        else hi = mid;
      }
      if (keys.length > 0) through.set(chain, (await read(keys.at(-1)!.key)).through);
    }
    for (const { key } of keys.slice(lo)) {
      const s = await read(key);
      if (!replayed && s.firstTime > toIso) break;
      for (const r of s.records) held.add(r.eventId);
    }
  }
  return { held, through };
}

export type Verdict = 'record' | 'held' | 'live';

/**
 * Whether the replay records a change (pure): not when the trail holds it, nor when the live
 * writer has not passed it yet (see the top of the file).
 */
export function verdict(
  change: { eventId: string; time: string; source: string; position: ThroughPosition },
  trail: { held: ReadonlySet<string>; through: ReadonlyMap<string, ThroughPosition>; trimmedBefore: number },
): Verdict {
  if (trail.held.has(change.eventId)) return 'held';
  if (change.source === ARCHIVE_SHARD) return Date.parse(change.time) < trail.trimmedBefore - ARRIVAL_GRACE_MS ? 'record' : 'live';
  const through = trail.through.get(change.source);
  return through && comparePositions(change.position, through) <= 0 ? 'record' : 'live';
}

export interface ReplayCounts {
  recorded: number;
  held: number;
  live: number;
}

export interface AuditReplayDeps {
  consumer: string;
  store: AuditStore;
  /** Shared by the run's writers: a change one of them recorded is held for the others. */
  trail: TrailIndex;
  /** The stream's trim horizon when the replay started (ms): archive changes before it are unreadable from the stream. */
  trimmedBefore: number;
  /** Names this run's chains. */
  run: string;
  deadLetters: { put(letter: AuditDeadLetter): Promise<void> };
  validate: EventValidator;
  pseudonyms: Pseudonymizer;
  knownIdentities: Set<string>;
  /** As for the live writer: an erased actor's records keep their pseudonym, but no identity mapping is written. */
  erased?: Pick<ErasedSubjects, 'isErased'>;
  counts: ReplayCounts;
}

export class AuditReplayWriter implements ShardProcessor {
  private readonly chain: string;
  private head: SegmentLink | undefined;

  constructor(
    private readonly source: string,
    private readonly deps: AuditReplayDeps,
  ) {
    this.chain = replayChainName(deps.run, source);
  }

  initialize(): Promise<void> {
    return Promise.resolve();
  }

  async processRecords(batch: ProcessBatch, checkpointer: Checkpointer): Promise<void> {
    const { trail, counts } = this.deps;
    const records: AuditRecord[] = [];
    const identities = new Map<string, string>();
    const taken = new Set<string>();
    for (const r of batch.records) {
      const decoded = decodeAuditEvent(r, this.deps.validate);
      if (!decoded.ok) {
        await this.deps.deadLetters.put({ reason: decoded.reason, message: decoded.message, bytes: r.data, origin: this.origin(r) });
        continue;
      }
      if (!isForConsumer(decoded.event, this.deps.consumer)) continue;
      const { record, userId } = auditRecordOf(decoded.event, this.deps.pseudonyms);
      let v = taken.has(record.eventId) ? 'held' : verdict({ eventId: record.eventId, time: record.time, source: this.source, position: r }, { ...trail, trimmedBefore: this.deps.trimmedBefore });
      // A redriven change's segment can lie past the window's (it was put back later): its marker says it is held.
      if (v === 'record' && (await this.deps.store.get(redrivenKey(record.eventId)))) v = 'held';
      counts[v === 'record' ? 'recorded' : v] += 1;
      if (v !== 'record') continue;
      taken.add(record.eventId);
      records.push(record);
      if (userId && record.actor && !this.deps.knownIdentities.has(record.actor)) identities.set(record.actor, userId);
    }
    if (records.length > 0) {
      records.sort((a, b) => compareEventPositions(parseEventId(a.eventId), parseEventId(b.eventId)));
      // As the live writer: the mapping before the segment, none for an erased actor.
      for (const [pseudonym, userId] of identities) {
        if (await this.deps.erased?.isErased(userId)) continue;
        await this.deps.store.put(identityKey(pseudonym), Buffer.from(JSON.stringify({ userId })));
        this.deps.knownIdentities.add(pseudonym);
      }
      const last = batch.records.at(-1)!;
      // `through` of a replay chain is the last record handed over (an archive line's index in its object): no live writer folds it.
      const segment = buildSegment({ shardId: this.chain, head: this.head, through: { sequenceNumber: last.sequenceNumber, subSequenceNumber: last.subSequenceNumber }, records });
      if (!(await this.deps.store.create(segmentKey(this.chain, segment.index), encodeSegment(segment)))) {
        throw new TaskflowError('AUDIT_SEGMENT_TAKEN', `segment ${segment.index} of ${this.chain} exists: another replay runs under the same name`);
      }
      this.head = { shardId: this.chain, index: segment.index, hash: segment.hash };
      for (const r of records) trail.held.add(r.eventId);
    }
    await checkpointer.checkpoint();
  }

  /** A stream record's dead letter is keyed as the live writer keys it (a no-op if it did); an archive line by its bytes. */
  private origin(r: UserRecord): AuditDeadLetter['origin'] {
    if (this.source !== ARCHIVE_SHARD) return { shardId: r.shardId, sequenceNumber: r.sequenceNumber, subSequenceNumber: r.subSequenceNumber };
    return { shardId: ARCHIVE_SHARD, sequenceNumber: createHash('sha256').update(r.data).digest('hex'), subSequenceNumber: 0 };
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
