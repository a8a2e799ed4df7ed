// How a project's seqs are claimed in the changelog table with one write per batch (the body
// item) instead of two (body, then head). The table, as both adapters keep it:
//  - body items, a run of consecutive seqs each, keyed by their first seq and written only if
//    absent: that conditional write is the fence. Two routers that believe the same last seq
//    write the same key, and the loser is refused (StaleHeadError). A writer's belief is always
//    the last seq of an existing item (what it read, or wrote itself), so items never overlap
//    (README, "Changelog"): a second writer cannot start inside another's run.
//  - the head item, which is not the last seq any more but a reservation: every seq ever given
//    out is at or below `reserved` (written before the body that goes beyond it, RESERVE_SEQS
//    ahead, so about once per RESERVE_SEQS seqs), and `floor`, the base of the last restart.
// The last seq is the newest body item's. Once every item has expired (TTL) nothing tells the
// last seq exactly, so the next writer restarts above the reservation: seqs jump forward, never
// back, and the replay API answers the gap with 410 resync_required (oldestSeq above it). The
// restart sets `floor` conditionally on the reservation it read; a writer that still continues
// the old run and needs more reservation is refused by the floor, one that does not stays
// below it.
import { type ChangelogItem, type ProjectRef, projectKey, StaleHeadError } from './changelog.js';
import { EMPTY_HEAD, type ProjectHead } from './sequencer.js';

/** Seqs reserved ahead of the last one written: one head write per this many seqs of a project. */
export const RESERVE_SEQS = 1000;
/**
 * A run whose newest item expires sooner than this is checked again before it is continued, so
 * a router holding an old belief (a project idle for nearly the TTL) does not write below a
 * restart made by another router meanwhile.
 */
export const TIP_RECHECK_MS = 3600_000;

export interface NewestItem {
  fromSeq: number;
  toSeq: number;
  hwm: string;
  expiresAtMs: number;
}

export interface HeadRecord {
  /** Every seq given out is at or below it; null when absent (a head written before reservations only has `legacySeq`). */
  reserved: number | null;
  /** The exact last seq of a head written by the router before reservations (never written now). */
  legacySeq: number | null;
  /** Base of the last restart (0: none). */
  floor: number;
  /** First seq of the run the last reservation was made for, and when (null on older heads). */
  runKey: number | null;
  reservedAtMs: number | null;
  lastId: string | null;
}

/** A reservation write: reserved := r, made for the run starting at runKey, at atMs. */
export interface Reservation {
  r: number;
  runKey: number;
  lastId: string | null;
  atMs: number;
}

/** What the claims need from the table (DynamoDB, or the in-memory model the tests drive). */
export interface ChangelogTable<I extends ChangelogItem = ChangelogItem> {
  /** The body item with the highest first seq, expired or not (expired items linger until deleted). */
  newestItem(project: ProjectRef): Promise<NewestItem | undefined>;
  head(project: ProjectRef): Promise<HeadRecord | undefined>;
  /** Writes the reservation if reserved is absent or below r, and floor is absent or below runKey. False if refused. */
  extendReservation(project: ProjectRef, reservation: Reservation): Promise<boolean>;
  /** Writes the reservation and floor := runKey - 1 if reserved is still `seen` (null: absent). False if refused. */
  restart(project: ProjectRef, seen: number | null, reservation: Reservation): Promise<boolean>;
  /** Writes the item if no item has its first seq. False if one has. */
  putItemIfAbsent(project: ProjectRef, item: I, expiresAtMs: number): Promise<boolean>;
  itemAt(project: ProjectRef, fromSeq: number): Promise<Pick<ChangelogItem, 'toSeq' | 'ids'> | undefined>;
}

const reservationOf = (h: HeadRecord | undefined): number => Math.max(h?.reserved ?? 0, h?.legacySeq ?? 0);

/**
 * The head a reader or writer goes on from: the newest live item's; with no live item, the last
 * seq the newest reservation was made after, when that reservation is too recent for anything
 * written after it to have expired (a crash between it and its body, or a project whose items
 * expired just before it); otherwise a restart above everything ever given out.
 */
export async function currentHead(
  table: Pick<ChangelogTable<never>, 'newestItem' | 'head'>,
  project: ProjectRef,
  nowMs: number,
  ttlMs: number,
): Promise<{ head: ProjectHead; tip?: NewestItem; resume?: true; restart?: { seen: number | null } }> {
  const top = await table.newestItem(project);
  if (top && top.expiresAtMs > nowMs) return { head: { seq: top.toSeq, lastId: top.hwm }, tip: top };
  const h = await table.head(project);
  if (!top && !h) return { head: EMPTY_HEAD };
  if (h?.runKey != null && h.reservedAtMs != null && nowMs - h.reservedAtMs < ttlMs - TIP_RECHECK_MS && (top?.toSeq ?? 0) < h.runKey) {
    return { head: { seq: h.runKey - 1, lastId: h.lastId }, resume: true };
  }
  return { head: { seq: Math.max(reservationOf(h), top?.toSeq ?? 0), lastId: top?.hwm ?? h?.lastId ?? null }, restart: { seen: h?.reserved ?? null } };
}

/** One router's claims on the table: what it knows of each project's reservation and run tip (bounded caches). */
export class ChangelogClaims<I extends ChangelogItem = ChangelogItem> {
  private readonly reserved = new BoundedMap<string, number>();
  private readonly tips = new BoundedMap<string, { seq: number; expiresAtMs: number }>();
  /** Heads read without a live item: where the next append resumes or restarts. */
  private readonly pending = new BoundedMap<string, { base: number; restart?: { seen: number | null } }>();

  constructor(
    private readonly table: ChangelogTable<I>,
    private readonly now: () => number,
    readonly ttlMs: number,
    private readonly reserveSeqs = RESERVE_SEQS,
  ) {}

  async readHead(project: ProjectRef): Promise<ProjectHead> {
    const key = projectKey(project);
    const { head, tip, resume, restart } = await currentHead(this.table, project, this.now(), this.ttlMs);
    if (tip) this.tips.set(key, { seq: tip.toSeq, expiresAtMs: tip.expiresAtMs });
    if (resume || restart) this.pending.set(key, { base: head.seq, ...(restart ? { restart } : {}) });
    return head;
  }

  /** `parts`: the entries (seqs expected.seq+1 …) as items, in seq order. */
  async append(project: ProjectRef, parts: readonly I[], expected: ProjectHead, next: ProjectHead): Promise<void> {
    const key = projectKey(project);
    const toSeq = parts.at(-1)?.toSeq ?? expected.seq;
    const pending = this.pending.get(key);
    if (pending?.base === expected.seq) this.pending.delete(key);
    if (pending?.base === expected.seq && pending.restart) {
      const reservation = this.reservation(toSeq, expected);
      if (!(await this.table.restart(project, pending.restart.seen, reservation))) throw new StaleHeadError(project, expected.seq);
      this.reserved.set(key, reservation.r);
    } else {
      if (pending?.base !== expected.seq) await this.checkTip(project, key, expected);
      if ((this.reserved.get(key) ?? -1) < toSeq) await this.reserve(project, key, toSeq, expected);
    }
    const expiresAtMs = this.now() + this.ttlMs;
    for (const item of parts) {
      if (await this.table.putItemIfAbsent(project, item, expiresAtMs)) continue;
      // Taken: this router's own earlier attempt (a retried request) holds the same run; anything else is another writer's.
      const stored = await this.table.itemAt(project, item.fromSeq);
      if (!stored || stored.toSeq !== item.toSeq || stored.ids.join(',') !== item.ids.join(',')) {
        this.tips.delete(key);
        throw new StaleHeadError(project, expected.seq);
      }
    }
    this.tips.set(key, { seq: next.seq, expiresAtMs });
  }

  /** The run continues from an item this router knows to live a while yet, else from what the table says now. */
  private async checkTip(project: ProjectRef, key: string, expected: ProjectHead): Promise<void> {
    const tip = this.tips.get(key);
    if (expected.seq === 0 && !tip) return; // a new project: the body write at seq 1 fences it
    if (tip && tip.seq === expected.seq && tip.expiresAtMs - this.now() > TIP_RECHECK_MS) return;
    const top = await this.table.newestItem(project);
    if (!top || top.toSeq !== expected.seq || top.expiresAtMs <= this.now()) throw new StaleHeadError(project, expected.seq);
    this.tips.set(key, { seq: top.toSeq, expiresAtMs: top.expiresAtMs });
  }

  private reservation(toSeq: number, expected: ProjectHead): Reservation {
    return { r: toSeq + this.reserveSeqs, runKey: expected.seq + 1, lastId: expected.lastId, atMs: this.now() };
  }

  private async reserve(project: ProjectRef, key: string, toSeq: number, expected: ProjectHead): Promise<void> {
    const reservation = this.reservation(toSeq, expected);
    if (await this.table.extendReservation(project, reservation)) {
      this.reserved.set(key, reservation.r);
      return;
    }
    // Refused: reserved further already (fine), or a restart above this run (stale).
    const h = await this.table.head(project);
    if (!h || h.floor >= expected.seq + 1 || reservationOf(h) < toSeq) throw new StaleHeadError(project, expected.seq);
    this.reserved.set(key, reservationOf(h));
  }
}

/** Insertion-ordered map that forgets its oldest entry past `limit` (per-project caches). */
class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly limit = 50_000) {
    super();
  }

  override set(key: K, value: V): this {
    super.delete(key);
    super.set(key, value);
    if (this.size > this.limit) {
      const oldest = this.keys().next();
      if (!oldest.done) super.delete(oldest.value);
    }
    return this;
  }
}
