// The per-project changelog port: what sequencing and the replay API need from storage.
// Layout shared by the adapters (dynamo-changelog.ts, memory-changelog.ts): changelog items each
// holding a run of consecutive seqs, keyed by their first seq and written only if absent — that
// write is the fence between routers, and the newest item holds the project's last seq — plus one
// head item per project that reserves seqs ahead (changelog-claims.ts). Items never overlap, and
// readers still take each seq once (`entriesOnce`) for items written before that rule.
import { comparePositions, parseEventId } from '../lib/event-id.js';
import { TaskflowError } from '../lib/errors.js';
import { PERSON_COLUMNS } from '@taskflow/stream';
import type { Envelope } from './event.js';
import { type PayloadMode, type ThinFields, thinFieldsOf } from './messages.js';
import type { ProjectHead } from './sequencer.js';

import type { ProjectRef } from '@taskflow/realtime';

export type { ProjectRef };

export function projectKey(p: ProjectRef): string {
  return `${p.workspaceId}/${p.projectId}`;
}

/**
 * One seq of the changelog, self-describing (router/README.md "Changelog", schemas/CONTRACTS.md
 * "Replay API"): the envelope (full mode, and every entry written before thin ones existed), or,
 * from a router in thin mode, what its thin message carried, marked `mode: 'thin'`. A changelog
 * holds both across a mode switch; readers take each as it is.
 */
export type ChangelogEntry = FullEntry | ThinEntry;

export interface FullEntry {
  seq: number;
  event: Envelope;
}

export interface ThinEntry extends ThinFields {
  seq: number;
  mode: 'thin';
}

export function isThinEntry(e: ChangelogEntry): e is ThinEntry {
  return (e as Partial<ThinEntry>).mode === 'thin';
}

export function entryId(e: ChangelogEntry): string {
  return isThinEntry(e) ? e.id : e.event.id;
}

/** The entry a router in `mode` writes for a sequenced event: thin mode keeps what its messages carry (a fraction of the bytes). */
export function changelogEntry(seq: number, event: Envelope, mode: PayloadMode): ChangelogEntry {
  return mode === 'thin' ? { seq, mode: 'thin', ...thinFieldsOf(event) } : { seq, event };
}

/** Key columns that name a person (any table's person columns): the only place a thin entry can hold someone's id. */
const PERSON_KEY_COLUMNS: ReadonlySet<string> = new Set(Object.values(PERSON_COLUMNS).flat());

/** The user ids a thin entry carries (its key's person columns), to check against the erased-subjects list. */
export function thinSubjectIds(e: ThinEntry): string[] {
  return Object.entries(e.key ?? {}).flatMap(([c, v]) => (PERSON_KEY_COLUMNS.has(c) && typeof v === 'string' ? [v] : []));
}

/**
 * The thin entry with the key values that name an erased subject null (the same entry, by
 * reference, when none does): its seq, id and type stay, as an erased full entry's do.
 */
export function scrubThin(e: ThinEntry, isErased: (value: string) => boolean): ThinEntry {
  const key = e.key;
  if (!key || !Object.values(key).some((v) => typeof v === 'string' && isErased(v))) return e;
  return { ...e, key: Object.fromEntries(Object.entries(key).map(([c, v]) => [c, typeof v === 'string' && isErased(v) ? null : v])) };
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
  /** Writes the entries (seqs expected.seq+1 …); StaleHeadError if another writer holds those seqs already. */
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
  return { fromSeq: first.seq, toSeq: last.seq, hwm: next.lastId, ids: entries.map(entryId), entries: [...entries] };
}
