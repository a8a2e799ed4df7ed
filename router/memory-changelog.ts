// The changelog in process memory: the same table layout and claims as dynamo-changelog.ts
// (conditional item writes, the head's reservation, TTL by a clock), the reference for tests.
import { buildItem, type ChangelogEntry, type ChangelogItem, type ChangelogPage, type ChangelogStore, createIdSearch, entriesOnce, projectKey, type ProjectRef } from './changelog.js';
import { ChangelogClaims, type ChangelogTable, currentHead, type HeadRecord, type NewestItem, type Reservation } from './changelog-claims.js';
import type { ProjectHead } from './sequencer.js';

interface StoredItem {
  item: ChangelogItem;
  expiresAtMs: number;
}

/** One table shared by any number of stores (routers); `now` is its clock for TTL. */
export class MemoryChangelogTable implements ChangelogTable {
  private readonly heads = new Map<string, HeadRecord>();
  readonly items = new Map<string, Map<number, StoredItem>>();
  /** Test hook: called before every write (throw to simulate a crash there). */
  beforeWrite: ((project: ProjectRef, what: 'reservation' | 'item') => void) | undefined;

  constructor(readonly now: () => number = Date.now) {}

  async newestItem(project: ProjectRef): Promise<NewestItem | undefined> {
    let newest: StoredItem | undefined;
    for (const s of this.items.get(projectKey(project))?.values() ?? []) if (!newest || s.item.fromSeq > newest.item.fromSeq) newest = s;
    return newest && { fromSeq: newest.item.fromSeq, toSeq: newest.item.toSeq, hwm: newest.item.hwm, expiresAtMs: newest.expiresAtMs };
  }

  async head(project: ProjectRef): Promise<HeadRecord | undefined> {
    const h = this.heads.get(projectKey(project));
    return h && { ...h };
  }

  async extendReservation(project: ProjectRef, reservation: Reservation): Promise<boolean> {
    this.beforeWrite?.(project, 'reservation');
    const h = this.heads.get(projectKey(project));
    if ((h?.reserved != null && h.reserved >= reservation.r) || (h !== undefined && h.floor >= reservation.runKey)) return false;
    this.setHead(project, h, reservation, h?.floor ?? 0);
    return true;
  }

  async restart(project: ProjectRef, seen: number | null, reservation: Reservation): Promise<boolean> {
    this.beforeWrite?.(project, 'reservation');
    const h = this.heads.get(projectKey(project));
    if ((h?.reserved ?? null) !== seen) return false;
    this.setHead(project, h, reservation, reservation.runKey - 1);
    return true;
  }

  private setHead(project: ProjectRef, h: HeadRecord | undefined, reservation: Reservation, floor: number): void {
    const { r, runKey, lastId, atMs } = reservation;
    this.heads.set(projectKey(project), { reserved: r, legacySeq: h?.legacySeq ?? null, floor, runKey, reservedAtMs: atMs, lastId: lastId ?? h?.lastId ?? null });
  }

  async putItemIfAbsent(project: ProjectRef, item: ChangelogItem, expiresAtMs: number): Promise<boolean> {
    this.beforeWrite?.(project, 'item');
    const key = projectKey(project);
    let items = this.items.get(key);
    if (!items) this.items.set(key, (items = new Map()));
    if (items.has(item.fromSeq)) return false;
    items.set(item.fromSeq, { item, expiresAtMs });
    return true;
  }

  async itemAt(project: ProjectRef, fromSeq: number): Promise<Pick<ChangelogItem, 'toSeq' | 'ids'> | undefined> {
    return this.items.get(projectKey(project))?.get(fromSeq)?.item;
  }

  /** Unexpired items of the project, oldest first. */
  live(project: ProjectRef): ChangelogItem[] {
    const now = this.now();
    return [...(this.items.get(projectKey(project))?.values() ?? [])].filter((s) => s.expiresAtMs > now).map((s) => s.item).sort((a, b) => a.fromSeq - b.fromSeq);
  }
}

/** In-process store: the reference for tests. */
export class MemoryChangelogStore implements ChangelogStore {
  private readonly claims: ChangelogClaims;

  /** `now`: this router's clock (the table's unless given: tests set clocks apart). */
  constructor(
    readonly table = new MemoryChangelogTable(),
    private readonly ttlMs = 7 * 24 * 3600 * 1000,
    now: () => number = table.now,
  ) {
    this.claims = new ChangelogClaims(table, now, ttlMs);
  }

  readHead(project: ProjectRef): Promise<ProjectHead> {
    return this.claims.readHead(project);
  }

  async findSeqs(project: ProjectRef, head: ProjectHead, ids: readonly string[]): Promise<Map<string, number>> {
    const search = createIdSearch(ids);
    for (const item of this.table.live(project).filter((i) => i.fromSeq <= head.seq).reverse()) if (search.offer(item)) break;
    return search.found;
  }

  append(project: ProjectRef, entries: readonly ChangelogEntry[], expected: ProjectHead, next: ProjectHead): Promise<void> {
    return this.claims.append(project, [buildItem(entries, next)], expected, next);
  }

  async read(project: ProjectRef, after: number, limit: number): Promise<ChangelogPage> {
    const { head } = await currentHead(this.table, project, this.table.now(), this.ttlMs);
    const items = this.table.live(project).filter((i) => i.fromSeq <= head.seq);
    return { head, oldestSeq: items[0]?.fromSeq ?? null, entries: entriesOnce(items, after, head.seq, limit) };
  }

  /** Test helper: delete the items whose entries all lie at or below `seq` (what the TTL does). */
  expireThrough(project: ProjectRef, seq: number): void {
    const items = this.table.items.get(projectKey(project));
    for (const [from, s] of items ?? []) if (s.item.toSeq <= seq) items?.delete(from);
  }
}
