// The router's work on one shard's records, free of any engine: decode and validate (bad ones to
// the DLQ), order and dedup per workspace, feed the membership projection, sequence per project
// into the changelog, hand the changes to the publishing pipeline, and return the checkpoint
// state. Everything it talks to is a port, so the property tests run it against in-memory stores
// with crashes injected, and the service runs it against DynamoDB and MQTT.
import { type ChangelogEntry, changelogEntry, type ChangelogStore, erasedEnvelope, isThinEntry, projectKey, type ProjectRef, scrubThin } from './changelog.js';
import type { PayloadMode } from './messages.js';
import { decodeEvent, type DecodeResult, type DlqReason, type RouterEvent, type EventCheck } from './event.js';
import { admitBatch, boundMarks, type ErasedSubjects, type HighWaterMarks, isForConsumer, mergeMarks, scrubErased, serializeMarks } from '@taskflow/stream';
import { affectsMemberships } from '../lib/membership-events.js';
import { revocations } from './revocations.js';
import { idsToLookUp, planSequence, type ProjectHead, type SequencedChange } from './sequencer.js';

export interface InputRecord {
  data: Uint8Array;
  sequenceNumber: string;
  subSequenceNumber?: number;
  partitionKey?: string;
  /** The Kinesis record was in none of the contract's forms (set by the consumer library). */
  decodeError?: Error;
}

/**
 * `taskflow dlq redrive` puts events back with this partition-key prefix (and an explicit hash
 * key that keeps them on their workspace's shard). They are older than the workspace's mark, so
 * they skip it: the changelog lookup by id decides whether they already have a seq.
 */
export const REDRIVE_PARTITION_PREFIX = 'redrive:';

export interface DeadLetter {
  reason: DlqReason | 'undecodable_record';
  message: string;
  bytes: Uint8Array;
  origin: { shardId: string; sequenceNumber: string; subSequenceNumber?: number };
}

export interface DeadLetterSink {
  put(letter: DeadLetter): Promise<void>;
}

/** Where sequenced changes go to be published; flush resolves once everything enqueued before it is out. */
export interface ChangeSink {
  enqueue(project: ProjectRef, changes: readonly SequencedChange[]): void;
  flush(): Promise<void>;
  /**
   * Members lost access at `afterEventId`: nothing of the workspace with a later id may be
   * published before their connections are gone (called before those changes are enqueued).
   */
  revoke(workspaceId: string, afterEventId: string, userIds: readonly string[]): void;
}

/** Consumes membership events in stream order (the authorization projection). */
export interface MembershipSink {
  /** `erased`: user ids on the erased-subjects list: their memberships are forgotten, not stored. */
  apply(events: readonly RouterEvent[], erased?: ReadonlySet<string>): Promise<void>;
}

export interface ShardRouterMetrics {
  eventsIn(n: number): void;
  duplicatesDropped(n: number): void;
  outOfOrderFixed(n: number): void;
  deadLettered(reason: DeadLetter['reason']): void;
}

export const noopShardRouterMetrics: ShardRouterMetrics = { eventsIn() {}, duplicatesDropped() {}, outOfOrderFixed() {}, deadLettered() {} };

/** Workspaces whose marks the checkpoint keeps by default: 38 B each packed, up to ~150 KB of state in the lease's state slot item. */
export const ROUTER_MAX_MARKS = 4000;

export interface ShardRouterDeps {
  shardId: string;
  /** The router's consumer name (ROUTER_CONSUMER_NAME): snapshots aimed at another consumer are neither sequenced nor published. */
  consumer: string;
  changelog: ChangelogStore;
  sink: ChangeSink;
  deadLetters: DeadLetterSink;
  memberships: MembershipSink;
  validate: EventCheck;
  metrics?: ShardRouterMetrics;
  /** Projects worked on concurrently within one batch. */
  concurrency?: number;
  headCacheSize?: number;
  /** Workspaces whose marks the checkpoint keeps (default ROUTER_MAX_MARKS). */
  maxMarks?: number;
  /**
   * Personal fields decrypted for the sink (full payloads to browsers, which hold no keys); the
   * changelog keeps them as they travelled, so destroying a key shreds it too.
   */
  decrypt?: (change: SequencedChange) => Promise<SequencedChange>;
  /**
   * The erased-subjects list (gdpr/POLICY.md "Erased subjects"): a replay, reset or redrive after
   * an erasure must not write the person back into the changelog nor publish them. Absent: not checked.
   */
  erased?: Pick<ErasedSubjects, 'erasedAmong'>;
  /** What the changelog keeps of each change (ROUTER_PAYLOAD_MODE): the envelope, or what a thin message carries. Default full. */
  changelogMode?: PayloadMode;
}

/** Where a staged batch's time went (the router logs it for the first batch after a start). */
export interface StageTimings {
  /** Decoding, validating, ordering and deduplicating the records. */
  decodeMs: number;
  /** Applying membership events to the projection (alongside the sequencing). */
  membershipsMs: number;
  /** Until both the changelog and the projection are written. */
  sequenceMs: number;
  events: number;
  memberships: number;
}

/**
 * The events with the `erased` subjects' data blanked (scrubErased); an event about them alone
 * (their membership) keeps its id, and so its seq, in the changelog's erased form.
 */
function blankErased(events: RouterEvent[], erased: ReadonlySet<string>): RouterEvent[] {
  if (erased.size === 0) return events;
  return events.map((e) => {
    const envelope = scrubErased(e.envelope, (id) => erased.has(id)) ?? erasedEnvelope(e.envelope);
    return envelope === e.envelope ? e : { ...e, envelope };
  });
}

export class ShardRouter {
  private marks: HighWaterMarks;
  // Heads of the projects this shard writes; valid while we hold the shard's lease.
  private readonly heads = new Map<string, ProjectHead>();
  private readonly metrics: ShardRouterMetrics;

  /** `states`: the shard's own checkpoint state, or (a fresh child shard) its parents' final states. */
  constructor(
    private readonly deps: ShardRouterDeps,
    ...states: (string | undefined)[]
  ) {
    this.marks = mergeMarks(states);
    this.metrics = deps.metrics ?? noopShardRouterMetrics;
  }

  /** Processes one batch of user records; resolves to the checkpoint state once they are durable and published. */
  async process(records: readonly InputRecord[]): Promise<string> {
    const { marks, published } = await this.stage(records);
    await published;
    return serializeMarks(marks);
  }

  /**
   * Processes one batch up to the changelog and hands its changes to the sink; resolves once they
   * are durable, with the marks to checkpoint after `published` (a snapshot later batches do not
   * change: serialized only when a checkpoint is written). The next batch may be staged
   * before this one is published: the sink keeps each project's messages in order, and retries
   * a failed publish itself (a publish it gives up on means the processor is closing).
   */
  async stage(records: readonly InputRecord[]): Promise<{ marks: HighWaterMarks; published: Promise<void>; timings: StageTimings }> {
    const t0 = performance.now();
    this.metrics.eventsIn(records.length);
    const events: RouterEvent[] = [];
    const redriven = new Map<string, RouterEvent>();
    for (const r of records) {
      const decoded: DecodeResult = r.decodeError
        ? { ok: false, reason: 'undecodable_record', message: r.decodeError.message }
        : decodeEvent(r.data, this.deps.validate);
      if (decoded.ok) {
        if (!isForConsumer(decoded.event.envelope, this.deps.consumer)) continue;
        if (r.partitionKey?.startsWith(REDRIVE_PARTITION_PREFIX)) redriven.set(decoded.event.id, decoded.event);
        else events.push(decoded.event);
        continue;
      }
      const origin: DeadLetter['origin'] = { shardId: this.deps.shardId, sequenceNumber: r.sequenceNumber };
      if (r.subSequenceNumber !== undefined) origin.subSequenceNumber = r.subSequenceNumber;
      await this.deps.deadLetters.put({ reason: decoded.reason, message: decoded.message, bytes: r.data, origin });
      this.metrics.deadLettered(decoded.reason);
    }
    const { admitted: inOrder, duplicates, reordered, marks } = admitBatch(this.marks, events);
    this.metrics.duplicatesDropped(duplicates);
    this.metrics.outOfOrderFixed(reordered);
    for (const e of inOrder) redriven.delete(e.id);
    const admitted = [...inOrder, ...redriven.values()];
    // Who of the batch is erased, looked up once: the changelog gets their data blanked, and the
    // projection takes the events as they are, told who is erased (a removed membership — the
    // erasure's own delete of the rows — must still revoke, and is deleted rather than kept as a
    // tombstone holding the subject's id; an erased subject's grant is not stored again).
    const erased = this.deps.erased ? await this.deps.erased.erasedAmong(admitted) : undefined;
    const toChangelog = erased ? blankErased(admitted, erased) : admitted;

    const t1 = performance.now();
    const membershipEvents = admitted.filter(affectsMemberships);
    // The projection is written while the batch is sequenced into the changelog (both are writes
    // to the tables, and a backlog after a restart holds thousands of membership events): nothing
    // reaches the sink before both are done. Then the projection is current, a revoked user who
    // reconnects is refused, and the holds are placed before any later change of the workspace.
    let membershipsDoneAt = t1;
    const applying = membershipEvents.length > 0 ? this.deps.memberships.apply(membershipEvents, erased).then(() => void (membershipsDoneAt = performance.now())) : Promise.resolve();

    // Groups in order of first appearance; found by workspace, then project (no key built per event).
    const groups: { project: ProjectRef; events: RouterEvent[]; i: number }[] = [];
    const projectsOf = new Map<string, Map<string, (typeof groups)[number]>>();
    for (const e of toChangelog) {
      if (e.projectId === undefined) continue;
      let projects = projectsOf.get(e.workspaceId);
      if (!projects) projectsOf.set(e.workspaceId, (projects = new Map()));
      const group = projects.get(e.projectId);
      if (group) group.events.push(e);
      else {
        const created = { project: { workspaceId: e.workspaceId, projectId: e.projectId }, events: [e], i: groups.length };
        projects.set(e.projectId, created);
        groups.push(created);
      }
    }
    const sequenced: SequencedChange[][] = [];
    const sequencing = forEachLimited(groups, this.deps.concurrency ?? 16, async ({ project, events: projectEvents, i }) => {
      sequenced[i] = await this.sequence(project, projectEvents, erased);
    });
    const [membershipsOutcome, sequencingOutcome] = await Promise.allSettled([applying, sequencing]);
    if (membershipsOutcome.status === 'rejected') throw membershipsOutcome.reason;
    if (sequencingOutcome.status === 'rejected') throw sequencingOutcome.reason;
    const t2 = performance.now();

    if (membershipEvents.length > 0) {
      const byWorkspace = new Map<string, { afterEventId: string; userIds: Set<string> }>();
      for (const r of revocations(membershipEvents)) {
        const w = byWorkspace.get(r.workspaceId);
        if (!w) byWorkspace.set(r.workspaceId, { afterEventId: r.eventId, userIds: new Set([r.userId]) });
        else {
          if (r.eventId < w.afterEventId) w.afterEventId = r.eventId;
          w.userIds.add(r.userId);
        }
      }
      for (const [workspaceId, w] of byWorkspace) this.deps.sink.revoke(workspaceId, w.afterEventId, [...w.userIds]);
    }
    const decrypt = this.deps.decrypt;
    // Decrypted text can @mention an erased subject the ciphertext hid: blanked again before publishing.
    const toSink = decrypt ? await Promise.all(sequenced.map(async (changes) => this.blankErasedChanges(await Promise.all(changes.map(decrypt))))) : sequenced;
    groups.forEach((g, i) => this.deps.sink.enqueue(g.project, toSink[i]!));
    // Every change is in the changelog and with the sink: the marks move on in memory; the
    // checkpoint that stores them waits for `published`.
    this.marks = boundMarks(marks, this.deps.maxMarks ?? ROUTER_MAX_MARKS);
    const published = this.deps.sink.flush();
    published.catch(() => {}); // the caller awaits it; this only keeps an early failure from going unhandled
    return { marks: this.marks, published, timings: { decodeMs: Math.round(t1 - t0), membershipsMs: Math.round(membershipsDoneAt - t1), sequenceMs: Math.round(t2 - t1), events: admitted.length, memberships: membershipEvents.length } };
  }

  /** Decrypted changes blanked again: their text may name an erased subject the ciphertext hid (one cached look-up per distinct id). */
  private async blankErasedChanges(changes: SequencedChange[]): Promise<SequencedChange[]> {
    if (!this.deps.erased) return changes;
    const plain = changes.map((c) => c.event);
    const events = blankErased(plain, await this.deps.erased.erasedAmong(plain));
    return changes.map((c, i) => (events[i] === c.event ? c : { seq: c.seq, event: events[i]! }));
  }

  get state(): string {
    return serializeMarks(this.marks);
  }

  /** A fresh change as the changelog keeps it; a thin entry's key loses the values naming an erased subject (the blanked envelope keeps its key). */
  private entry(c: SequencedChange, erased: ReadonlySet<string> | undefined): ChangelogEntry {
    const entry = changelogEntry(c.seq, c.event.envelope, this.deps.changelogMode ?? 'full');
    return isThinEntry(entry) && erased && erased.size > 0 ? scrubThin(entry, (id) => erased.has(id)) : entry;
  }

  private async sequence(project: ProjectRef, events: RouterEvent[], erased: ReadonlySet<string> | undefined): Promise<SequencedChange[]> {
    const key = projectKey(project);
    const head = this.heads.get(key) ?? (await this.deps.changelog.readHead(project));
    const lookUp = idsToLookUp(head, events);
    const known = lookUp.length > 0 ? await this.deps.changelog.findSeqs(project, head, lookUp) : new Map<string, number>();
    const plan = planSequence(head, events, known);
    if (plan.fresh.length > 0) {
      try {
        await this.deps.changelog.append(
          project,
          plan.fresh.map((c) => this.entry(c, erased)),
          head,
          plan.head,
        );
      } catch (err) {
        this.heads.delete(key);
        throw err;
      }
    }
    this.rememberHead(key, plan.head);
    return plan.changes;
  }

  private rememberHead(key: string, head: ProjectHead): void {
    this.heads.delete(key);
    this.heads.set(key, head);
    const limit = this.deps.headCacheSize ?? 50_000;
    if (this.heads.size > limit) {
      const oldest = this.heads.keys().next();
      if (!oldest.done) this.heads.delete(oldest.value);
    }
  }
}

async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  });
  await Promise.all(workers);
}
