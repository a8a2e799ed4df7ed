// The per-project changelog port: what sequencing and the replay API need from storage.
// Layout shared by the adapters: one head per project (last seq, highest id) and changelog
// items each holding a run of consecutive seqs, keyed by their first seq. Entries are written
// before the head moves (the head's conditional write is the fence between writers), so an item
// may reach beyond the head after a crash. Because assignment is deterministic, a rewrite of an
// item holds the same events at the same seqs: an item is only replaced by one reaching at least
// as far (`mayReplace`), a shorter rewrite finds its entries already stored, and readers take
// each seq once where items overlap.
import { comparePositions, parseEventId } from '../lib/event-id.js';
import { TaskflowError } from '../lib/errors.js';
import type { Envelope } from './event.js';
import type { ProjectHead } from './sequencer.js';
import { EMPTY_HEAD } from './sequencer.js';

import type { ProjectRef } from '@taskflow/realtime';

export type { ProjectRef };

export function projectKey(p: ProjectRef): string {
  return `${p.workspaceId}/${p.projectId}`;
}

export interface ChangelogEntry {
  seq: number;
  event: Envelope;
}

/**
 * An event as the changelog holds it once it is an erased subject's alone (gdpr/POLICY.md
 * `router-changelog`): what routes and orders it, no row images, no actor, `data.erased: true`.
 * It keeps its id and so its seq: a replaying client needs every seq.
 */
export function erasedEnvelope(event: Envelope): Envelope {
  const data = event.data as unknown as Record<string, unknown>;
  const { actor: _actor, ...source } = (data.source ?? {}) as Record<string, unknown>;
  const erased = { op: data.op, table: data.table, key: data.key, before: null, after: null, source, erased: true };
  return { ...event, data: erased } as unknown as Envelope;
}

export interface ChangelogPage {
  head: ProjectHead;
  /** Lowest seq still held (null when nothing is held), to tell "too old" from "nothing new". */
  oldestSeq: number | null;
  /** Entries with seq > after, in seq order, at most `limit`, never beyond head.seq. */
  entries: ChangelogEntry[];
}

export interface ChangelogStore {
  readHead(project: ProjectRef): Promise<ProjectHead>;
  /** The seqs of those ids that are in the project's changelog. */
  findSeqs(project: ProjectRef, head: ProjectHead, ids: readonly string[]): Promise<Map<string, number>>;
  /** Writes the entries (seqs expected.seq+1 …) then moves the head; StaleHeadError if it moved meanwhile. */
  append(project: ProjectRef, entries: readonly ChangelogEntry[], expected: ProjectHead, next: ProjectHead): Promise<void>;
  read(project: ProjectRef, after: number, limit: number): Promise<ChangelogPage>;
}

export class StaleHeadError extends TaskflowError {
  constructor(project: ProjectRef, expectedSeq: number) {
    super('STALE_PROJECT_HEAD', `head of ${projectKey(project)} is no longer at seq ${expectedSeq} (another router owns it?)`, { retriable: true });
  }
}

/** Stored shape of one changelog item (the DynamoDB adapter keeps the same fields). */
export interface ChangelogItem {
  fromSeq: number;
  toSeq: number;
  /** head.lastId after this item was written: never decreases with fromSeq, so a backwards search can stop. */
  hwm: string;
  ids: string[];
  entries: ChangelogEntry[];
}

/**
 * Backwards search over items (fed newest first) for the given ids: `offer` returns true once
 * every id is found or the items have dropped below the lowest id, so no older item can hold one.
 */
export function createIdSearch(ids: readonly string[]): { found: Map<string, number>; offer(item: ChangelogItem): boolean } {
  const found = new Map<string, number>();
  const wanted = new Set(ids);
  const lowest = ids.length === 0 ? undefined : ids.map(parseEventId).reduce((a, b) => (comparePositions(a, b) <= 0 ? a : b));
  return {
    found,
    offer(item) {
      if (!lowest) return true;
      item.ids.forEach((id, i) => {
        if (wanted.has(id)) found.set(id, item.fromSeq + i);
      });
      return found.size === wanted.size || comparePositions(parseEventId(item.hwm), lowest) < 0;
    },
  };
}

/**
 * Whether `next` may overwrite `existing` at the same first seq: it reaches as far, or it is a
 * prefix of what is stored already (then there is nothing to write). Anything else is another
 * writer's history: StaleHeadError.
 */
export function itemWriteDecision(existing: Pick<ChangelogItem, 'toSeq' | 'ids'> | undefined, next: Pick<ChangelogItem, 'toSeq' | 'ids'>): 'write' | 'skip' | 'conflict' {
  if (!existing) return 'write';
  const overlap = Math.min(existing.ids.length, next.ids.length);
  for (let i = 0; i < overlap; i += 1) if (existing.ids[i] !== next.ids[i]) return 'conflict';
  return next.toSeq >= existing.toSeq ? 'write' : 'skip';
}

/** Entries of items (oldest first), each seq once, only those in (after, upTo]. */
export function entriesOnce(items: Iterable<ChangelogItem>, after: number, upTo: number, limit: number): ChangelogEntry[] {
  const out: ChangelogEntry[] = [];
  let last = after;
  for (const item of items) {
    for (const e of item.entries) {
      if (out.length >= limit) return out;
      if (e.seq > last && e.seq <= upTo) {
        out.push(e);
        last = e.seq;
      }
    }
  }
  return out;
}

export function buildItem(entries: readonly ChangelogEntry[], next: ProjectHead): ChangelogItem {
  const first = entries[0];
  const last = entries[entries.length - 1];
  if (!first || !last || next.lastId === null) throw new TaskflowError('EMPTY_CHANGELOG_ITEM', 'an append needs at least one entry');
  return { fromSeq: first.seq, toSeq: last.seq, hwm: next.lastId, ids: entries.map((e) => e.event.id), entries: [...entries] };
}

/** In-process store: the reference for tests and for `taskflow router --store memory`. */
export class MemoryChangelogStore implements ChangelogStore {
  private readonly heads = new Map<string, ProjectHead>();
  private readonly items = new Map<string, Map<number, ChangelogItem>>();
  /** Test hook: called after the entries are written and before the head moves (throw to simulate a crash). */
  beforeHeadWrite: ((project: ProjectRef) => void) | undefined;

  async readHead(project: ProjectRef): Promise<ProjectHead> {
    return this.heads.get(projectKey(project)) ?? EMPTY_HEAD;
  }

  async findSeqs(project: ProjectRef, head: ProjectHead, ids: readonly string[]): Promise<Map<string, number>> {
    const items = [...(this.items.get(projectKey(project))?.values() ?? [])].filter((i) => i.fromSeq <= head.seq).sort((a, b) => b.fromSeq - a.fromSeq);
    const search = createIdSearch(ids);
    for (const item of items) if (search.offer(item)) break;
    return search.found;
  }

  async append(project: ProjectRef, entries: readonly ChangelogEntry[], expected: ProjectHead, next: ProjectHead): Promise<void> {
    const key = projectKey(project);
    const item = buildItem(entries, next);
    let items = this.items.get(key);
    if (!items) this.items.set(key, (items = new Map()));
    const decision = itemWriteDecision(items.get(item.fromSeq), item);
    if (decision === 'conflict') throw new StaleHeadError(project, expected.seq);
    if (decision === 'write') items.set(item.fromSeq, item);
    this.beforeHeadWrite?.(project);
    const current = this.heads.get(key) ?? EMPTY_HEAD;
    if (current.seq !== expected.seq) throw new StaleHeadError(project, expected.seq);
    this.heads.set(key, next);
  }

  async read(project: ProjectRef, after: number, limit: number): Promise<ChangelogPage> {
    const head = await this.readHead(project);
    const items = [...(this.items.get(projectKey(project))?.values() ?? [])].filter((i) => i.fromSeq <= head.seq).sort((a, b) => a.fromSeq - b.fromSeq);
    const entries = entriesOnce(items, after, head.seq, limit);
    return { head, oldestSeq: items[0]?.fromSeq ?? null, entries };
  }

  /** Test helper: drop the items whose entries all lie at or below `seq` (what the TTL does). */
  expireThrough(project: ProjectRef, seq: number): void {
    const items = this.items.get(projectKey(project));
    for (const [from, item] of items ?? []) if (item.toSeq <= seq) items?.delete(from);
  }
}
