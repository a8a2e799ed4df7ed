// The audit trail's ShardProcessor: one leased shard's records become one segment per batch,
// chained to the shard's previous segment. Engine-free (the store, dead-letter sink and
// validator are ports), so the property tests run it with crashes and redeliveries injected.
//
// Ordering, and why nothing is lost or doubled whatever the crash point:
//   1. dead letters first (keyed by the Kinesis record: a re-read finds its entry);
//   2. the segment, created only if its key (shard, index) is free;
//   3. then the checkpoint, whose state names the segment it follows (at most one per
//      checkpointEveryMs, AUDIT_CHECKPOINT_INTERVAL_MS: each writes the marks into the lease's state slot).
// The segments are the truth, the checkpoint a hint: a new holder of the lease starts from the
// checkpoint's segment and folds every segment written after it (a crash between 2 and 3), so
// it knows the last Kinesis position already recorded (records up to it are skipped) and every
// workspace's last event id (a capture re-send of the same change is skipped). Two holders at
// once (a paused worker whose lease was taken): only one creates the next index; the other
// finds it taken, reloads the chain and retries the batch after it.
import { TaskflowError } from '../lib/errors.js';
import { comparePositions as compareEventPositions, eventId, type EventPosition, parseEventId } from '../lib/event-id.js';
import { type Checkpointer, comparePositions, type ErasedSubjects, isForConsumer, packMarks, type ProcessBatch, readMarks, type ShardInit, type ShardProcessor, type ShutdownReason, type UserRecord } from '@taskflow/stream';
import type { Logger } from '../lib/logger.js';
import type { EventValidator, RejectReason } from '../schemas/validate.js';
import { buildSegment, encodeSegment, parseSegmentKey, type Segment, type SegmentLink, segmentKey, type ThroughPosition } from './chain.js';
import { identityKey } from './identities.js';
import { type AuditRecord, auditRecordOf, type Pseudonymizer } from './record.js';
import type { AuditStore } from './store.js';

/**
 * `taskflow audit redrive` puts the audit trail's dead letters back under this partition-key
 * prefix (and the workspace's hash key). It starts with the router's `redrive:`, so the router
 * treats them as its redrives too (its changelog lookup keeps that idempotent); the audit trail
 * takes only its own redrives past the workspace marks, and other consumers' redrives (below the
 * marks) are skipped as the duplicates they are to it.
 */
export const AUDIT_REDRIVE_PREFIX = 'redrive:audit:';

/** The audit trail's entries in the shared dead-letter store. */
export const AUDIT_DLQ_SOURCE = 'audit';

export type AuditDlqReason = 'undecodable_record' | 'malformed_json' | Exclude<RejectReason, 'not_an_object'>;

export interface AuditDeadLetter {
  reason: AuditDlqReason;
  message: string;
  bytes: Uint8Array;
  origin: { shardId: string; sequenceNumber: string; subSequenceNumber: number };
}

export interface AuditMetrics {
  eventsIn(n: number): void;
  recorded(records: readonly AuditRecord[]): void;
  duplicatesSkipped(n: number): void;
  deadLettered(reason: AuditDlqReason): void;
  segmentWritten(seconds: number): void;
  segmentConflict(): void;
}

export const noopAuditMetrics: AuditMetrics = { eventsIn() {}, recorded() {}, duplicatesSkipped() {}, deadLettered() {}, segmentWritten() {}, segmentConflict() {} };

export interface AuditShardDeps {
  /** The audit trail's consumer name (AUDIT_CONSUMER_NAME): a snapshot aimed at another consumer is not a change and gets no record. */
  consumer: string;
  store: AuditStore;
  deadLetters: { put(letter: AuditDeadLetter): Promise<void> };
  validate: EventValidator;
  pseudonyms: Pseudonymizer;
  /** Pseudonyms already in the identity store (shared by the process's shards). */
  knownIdentities: Set<string>;
  /**
   * The erased-subjects list (gdpr/POLICY.md): an erased actor's records keep their pseudonym but
   * get no identity mapping, so a replay, reset or redrive cannot re-link it. Absent: not checked.
   */
  erased?: Pick<ErasedSubjects, 'isErased'>;
  metrics?: AuditMetrics;
  logger: Logger;
  /** Workspaces whose last event id the checkpoint keeps (the lease's state slot item holds 400 KB). */
  maxMarks?: number;
  /** Least time between two checkpoints (AUDIT_CHECKPOINT_INTERVAL_MS; default 0: one per batch). */
  checkpointEveryMs?: number;
  now?: () => Date;
}

/** Checkpoint state: the segment the chain ended at, and the workspaces' last event ids. */
interface WriterState {
  head?: SegmentLink;
  marks: Map<string, EventPosition>;
}

/** v2: the marks packed as the router's are (packMarks); v1 (JSON event ids) when a workspace id is not a UUID. */
export function serializeState(state: WriterState, maxMarks: number): string {
  const kept = [...state.marks].slice(Math.max(0, state.marks.size - maxMarks));
  const head = state.head ? { head: state.head } : {};
  const packed = packMarks(new Map(kept));
  if (packed !== undefined) return JSON.stringify({ v: 2, ...head, marks: packed });
  return JSON.stringify({ v: 1, ...head, marks: Object.fromEntries(kept.map(([ws, pos]) => [ws, eventId(pos)])) });
}

export function parseState(text: string | undefined): WriterState {
  const state: WriterState = { marks: new Map() };
  if (!text) return state;
  const parsed = JSON.parse(text) as { v?: number; head?: SegmentLink; marks?: unknown };
  if (parsed.v !== 1 && parsed.v !== 2) return state;
  if (parsed.head) state.head = parsed.head;
  state.marks = readMarks(parsed.v, parsed.marks ?? {});
  return state;
}

/** Key marking that a redriven event is in the trail (redriven events skip the workspace marks). */
export function redrivenKey(eventId: string): string {
  return `redriven/${eventId}`;
}

function advance(marks: Map<string, EventPosition>, ws: string, pos: EventPosition): void {
  const mark = marks.get(ws);
  if (mark && compareEventPositions(pos, mark) <= 0) return;
  marks.delete(ws); // the map's order is the order marks last moved: the bound keeps the newest
  marks.set(ws, pos);
}

/** A record's change event, decoded and validated, or why it goes to the dead-letter store. */
export function decodeAuditEvent(r: UserRecord, validate: EventValidator): { ok: true; event: Parameters<typeof auditRecordOf>[0] } | { ok: false; reason: AuditDlqReason; message: string } {
  if (r.decodeError) return { ok: false, reason: 'undecodable_record', message: r.decodeError.message };
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(r.data).toString('utf8'));
  } catch (err) {
    return { ok: false, reason: 'malformed_json', message: (err as Error).message };
  }
  const result = validate(parsed);
  if (!result.ok) return { ok: false, reason: result.reason === 'not_an_object' ? 'malformed_json' : result.reason, message: result.message };
  return { ok: true, event: result.event };
}

export class AuditShardWriter implements ShardProcessor {
  private head: SegmentLink | undefined;
  private through: ThroughPosition | undefined;
  private marks = new Map<string, EventPosition>();
  private parents: SegmentLink[] = [];
  /** Another writer took the next index: reload the chain before the retried batch. */
  private stale = false;
  private lastCheckpointAt = -Infinity;
  private readonly metrics: AuditMetrics;

  constructor(
    readonly shardId: string,
    private readonly deps: AuditShardDeps,
  ) {
    this.metrics = deps.metrics ?? noopAuditMetrics;
  }

  private get maxMarks(): number {
    return this.deps.maxMarks ?? 3000;
  }

  get state(): string {
    return serializeState({ ...(this.head ? { head: this.head } : {}), marks: this.marks }, this.maxMarks);
  }

  async initialize(init: ShardInit): Promise<void> {
    const own = parseState(init.checkpoint?.state);
    this.marks = own.marks;
    this.head = own.head;
    if (!init.checkpoint) {
      // A child shard after a reshard: its chain starts from its parents' last segments.
      for (const p of init.parentStates) {
        const parent = parseState(p.state);
        if (parent.head) this.parents.push(parent.head);
        for (const [ws, pos] of parent.marks) advance(this.marks, ws, pos);
      }
    }
    await this.catchUp();
  }

  /** Folds the segments stored after the known head: written by a holder that did not checkpoint them. */
  private async catchUp(): Promise<void> {
    const prefix = `segments/${this.shardId}/`;
    const keys = await this.deps.store.list(prefix, this.head ? segmentKey(this.shardId, this.head.index) : undefined);
    for (const key of keys) {
      const at = parseSegmentKey(key);
      if (!at || at.shardId !== this.shardId) continue;
      const bytes = await this.deps.store.get(key);
      if (!bytes) continue;
      const segment = JSON.parse(Buffer.from(bytes).toString('utf8')) as Segment;
      for (const r of segment.records) {
        if (r.redriven) await this.deps.store.create(redrivenKey(r.eventId), Buffer.from(`${key}\n`));
        else advance(this.marks, r.workspaceId, parseEventId(r.eventId));
      }
      this.head = { shardId: this.shardId, index: segment.index, hash: segment.hash };
      this.through = segment.through;
      this.parents = [];
    }
  }

  async processRecords(batch: ProcessBatch, checkpointer: Checkpointer): Promise<void> {
    if (this.stale) {
      await this.catchUp();
      this.stale = false;
    }
    this.metrics.eventsIn(batch.records.length);
    const marks = new Map(this.marks);
    const identities = new Map<string, string>();
    const redrivenIds = new Set<string>();
    // Per workspace in event-id order (a batch may hold a workspace's events out of order).
    const byWorkspace = new Map<string, { position: EventPosition; record: AuditRecord }[]>();
    let skipped = 0;
    const redriven: AuditRecord[] = [];
    for (const r of batch.records) {
      if (this.through && comparePositions(r, this.through) <= 0) {
        skipped += 1; // already in a segment: written before a crash or by the lease's previous holder
        continue;
      }
      const decoded = decodeAuditEvent(r, this.deps.validate);
      if (!decoded.ok) {
        await this.deadLetter(r, decoded.reason, decoded.message);
        continue;
      }
      if (!isForConsumer(decoded.event, this.deps.consumer)) continue;
      const { record, userId } = auditRecordOf(decoded.event, this.deps.pseudonyms);
      if (userId && record.actor && !this.deps.knownIdentities.has(record.actor)) identities.set(record.actor, userId);
      if (r.partitionKey.startsWith(AUDIT_REDRIVE_PREFIX)) {
        if (redrivenIds.has(record.eventId) || (await this.deps.store.get(redrivenKey(record.eventId)))) {
          skipped += 1;
          continue;
        }
        redrivenIds.add(record.eventId);
        redriven.push({ ...record, redriven: true });
        continue;
      }
      const list = byWorkspace.get(record.workspaceId) ?? [];
      list.push({ position: parseEventId(record.eventId), record });
      byWorkspace.set(record.workspaceId, list);
    }
    const records: AuditRecord[] = [];
    for (const [ws, list] of byWorkspace) {
      list.sort((a, b) => compareEventPositions(a.position, b.position));
      for (const { position, record } of list) {
        const mark = marks.get(ws);
        if (mark && compareEventPositions(position, mark) <= 0) {
          skipped += 1; // a change recorded before (capture sent it again)
          continue;
        }
        advance(marks, ws, position);
        records.push(record);
      }
    }
    records.push(...redriven);
    this.metrics.duplicatesSkipped(skipped);

    if (records.length > 0) {
      // Identities before the segment: a record is never shown without the mapping that resolves it.
      for (const [pseudonym, userId] of identities) {
        if (await this.deps.erased?.isErased(userId)) continue;
        await this.deps.store.put(identityKey(pseudonym), Buffer.from(JSON.stringify({ userId })));
        this.deps.knownIdentities.add(pseudonym);
      }
      const last = batch.records.at(-1)!;
      const through = { sequenceNumber: last.sequenceNumber, subSequenceNumber: last.subSequenceNumber };
      const segment = buildSegment({ shardId: this.shardId, head: this.head, parents: this.parents, through, records });
      const started = performance.now();
      const created = await this.deps.store.create(segmentKey(this.shardId, segment.index), encodeSegment(segment));
      if (!created) {
        this.stale = true;
        this.metrics.segmentConflict();
        throw new TaskflowError('AUDIT_SEGMENT_TAKEN', `segment ${segment.index} of ${this.shardId} was written by another worker; reloading the chain`, { retriable: true });
      }
      this.metrics.segmentWritten((performance.now() - started) / 1000);
      for (const r of redriven) await this.deps.store.create(redrivenKey(r.eventId), Buffer.from(`${segmentKey(this.shardId, segment.index)}\n`));
      this.head = { shardId: this.shardId, index: segment.index, hash: segment.hash };
      this.through = through;
      this.parents = [];
      this.metrics.recorded(records);
    }
    this.marks = marks;
    // A checkpoint sooner than the interval is left out: the segments are the truth, so a new
    // holder starting from an older checkpoint folds the segments after it (catchUp) and skips
    // what they hold. No timer: an idle shard's last batch is checkpointed at shutdown, or folded.
    const now = (this.deps.now?.() ?? new Date()).getTime();
    if (now - this.lastCheckpointAt < (this.deps.checkpointEveryMs ?? 0)) return;
    this.lastCheckpointAt = now;
    await checkpointer.checkpoint(undefined, this.state);
  }

  private async deadLetter(r: UserRecord, reason: AuditDlqReason, message: string): Promise<void> {
    await this.deps.deadLetters.put({ reason, message, bytes: r.data, origin: { shardId: this.shardId, sequenceNumber: r.sequenceNumber, subSequenceNumber: r.subSequenceNumber } });
    this.metrics.deadLettered(reason);
  }

  async shutdown(reason: ShutdownReason, checkpointer?: Checkpointer): Promise<void> {
    // Every batch is in a segment before its processRecords returns: only the state is left to store.
    if (reason !== 'lease_lost' && checkpointer) await checkpointer.checkpoint(undefined, this.state);
  }
}
