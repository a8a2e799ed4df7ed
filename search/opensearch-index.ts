// The production search engine: OpenSearch through @opensearch-project/opensearch, deciding with
// the same pure model as the local SQLite adapter (documents.ts).
//
// Layout: one concrete index per build (`<alias>-<build>`), reached through the alias; a rebuild
// fills a new index and then moves the alias in one `POST /_aliases` (remove + add), so readers
// switch atomically and the old index is dropped after. Each index holds three kinds of document:
//   doc/<ws>/<table>/<id>        a task or comment: its DocState plus the fields queries use;
//                                routed by workspace, so a workspace's query reads one shard
//   membership/<user>/<id>       the index's own membership projection (lib/membership-events.ts)
//   truncate/<table>             the table's truncate marker
//
// Every write carries an external version (version_type external_gte) derived from the event id:
// the commit LSN, a 64-bit number below 2^63 in any real cluster, which OpenSearch versions are.
// An event id has more bits than that (LSN + index in the transaction), so changes of one
// transaction share a version: `external_gte` accepts the equal one, and the document's merged
// state — read, merged by the model, written back — decides between them exactly. A write that
// loses the race to a newer one (409) is merged again from what is stored.
import { Client } from '@opensearch-project/opensearch';
import type { Membership, Role } from '../lib/authz.js';
import { TaskflowError } from '../lib/errors.js';
import { parseEventId } from '../lib/event-id.js';
import { applyChange, type DocChange, type DocState, docKey, erasedByTruncate, erasedState, type IndexedTable, INDEXED_TABLES, type SearchDocument, stateHolds, visibleDocument } from './documents.js';
import { hasFilter, type IndexBatch, type SearchHit, type SearchIndex, type SearchQuery } from './search-index.js';

/** The index's mappings: `state` is kept, not indexed. */
export const INDEX_BODY = {
  settings: { index: { number_of_shards: 1 } },
  mappings: {
    dynamic: 'strict',
    properties: {
      kind: { type: 'keyword' },
      key: { type: 'keyword' },
      workspace_id: { type: 'keyword' },
      project_id: { type: 'keyword' },
      table: { type: 'keyword' },
      visible: { type: 'boolean' },
      written: { type: 'keyword' },
      deleted: { type: 'keyword' },
      title: { type: 'text' },
      text: { type: 'text' },
      labels: { type: 'keyword' },
      due_at: { type: 'date' },
      user_id: { type: 'keyword' },
      event_id: { type: 'keyword' },
      role: { type: 'keyword' },
      state: { type: 'object', enabled: false },
    },
  },
} as const;

/**
 * Fields added to the mappings after the first release: open() puts them on an existing index
 * (adding a field is allowed on a live index; `dynamic: strict` would refuse documents carrying
 * it otherwise). Its documents get them when next written, or all at once by a rebuild.
 */
const ADDED_FIELDS = { labels: INDEX_BODY.mappings.properties.labels, due_at: INDEX_BODY.mappings.properties.due_at } as const;

/** OpenSearch's external version for an event id: its commit LSN. */
export function versionOf(eventId: string): number {
  const lsn = parseEventId(eventId).commitLsn;
  // JSON numbers are doubles in the client: beyond 2^53 a version would be rounded.
  if (lsn > BigInt(Number.MAX_SAFE_INTEGER)) throw new TaskflowError('VERSION_OUT_OF_RANGE', `commit LSN of ${eventId} exceeds what the client can send as a version`);
  return Number(lsn);
}

const MAX_CONFLICT_ROUNDS = 5;
const MEMBERSHIPS_TABLE = 'memberships';

interface BulkItem {
  status: number;
  _id: string;
  error?: { type?: string; reason?: string };
}

type Source = Record<string, unknown>;

export interface OpenSearchIndexOptions {
  node: string;
  alias: string;
  /** Wait for each write to be searchable (tests, demos); production relies on the refresh interval. */
  refresh?: boolean;
  client?: Client;
}

/** Documents per page an erasure reads. */
const ERASURE_PAGE = 500;

/** Who an erasure removes: the subject's id, the strings naming them, the ids of the comments they wrote. */
export interface ErasureTarget {
  subject: string;
  needles: readonly string[];
  comments: readonly string[];
}

/** A document's write: its external version is its newest event id (written or deleted). */
function docOperation(key: string, state: DocState, markers: Map<string, string>): { id: string; routing: string; version: number; source: Source } {
  const doc = visibleDocument(state, markers.get(state.table) ?? '');
  const task = doc?.table === 'tasks' ? doc : null;
  return {
    id: `doc/${key}`,
    routing: state.workspaceId,
    version: versionOf(state.written > state.deleted ? state.written : state.deleted),
    source: {
      kind: 'doc',
      key,
      workspace_id: state.workspaceId,
      table: state.table,
      written: state.written,
      deleted: state.deleted,
      visible: doc !== null,
      project_id: doc?.projectId ?? null,
      title: doc?.title ?? '',
      text: doc?.text ?? '',
      labels: task?.labels ?? [],
      due_at: task?.dueAt ?? null,
      state,
    },
  };
}

export class OpenSearchIndex implements SearchIndex {
  private constructor(
    private readonly client: Client,
    /** Where writes and reads go: the alias, or (during a rebuild) the new concrete index. */
    private readonly target: string,
    private readonly alias: string,
    private readonly refresh: boolean,
    private readonly ownsClient: boolean,
  ) {}

  /** Connects and makes sure the alias exists (a first index is created behind it if not). */
  static async open(options: OpenSearchIndexOptions): Promise<OpenSearchIndex> {
    const client = options.client ?? new Client({ node: options.node });
    const index = new OpenSearchIndex(client, options.alias, options.alias, options.refresh ?? false, options.client === undefined);
    const exists = await client.indices.exists({ index: options.alias });
    if (!exists.body) await client.indices.create({ index: `${options.alias}-${buildName()}`, body: { ...INDEX_BODY, aliases: { [options.alias]: {} } } });
    else await client.indices.putMapping({ index: options.alias, body: { properties: ADDED_FIELDS } });
    return index;
  }

  /** The concrete index this instance writes to during a rebuild; the alias otherwise. */
  get writesTo(): string {
    return this.target;
  }

  /** A new, empty index for a rebuild: fill it (e.g. by replaying the stream), then `promote()` it. */
  async beginRebuild(): Promise<OpenSearchIndex> {
    const name = `${this.alias}-${buildName()}`;
    await this.client.indices.create({ index: name, body: INDEX_BODY });
    return new OpenSearchIndex(this.client, name, this.alias, this.refresh, false);
  }

  /** A rebuild's index again, by the name `writesTo` gave (a resumed `taskflow replay search --rebuild`). */
  async resumeRebuild(name: string): Promise<OpenSearchIndex> {
    if (!name.startsWith(`${this.alias}-`)) throw new TaskflowError('NOT_A_REBUILD', `${name} is not an index of alias ${this.alias}`);
    if (!(await this.client.indices.exists({ index: name })).body) throw new TaskflowError('REBUILD_INDEX_GONE', `the rebuild index ${name} no longer exists: start the rebuild over (--restart)`);
    return new OpenSearchIndex(this.client, name, this.alias, this.refresh, false);
  }

  /**
   * Moves the alias to this (rebuilt) index in one atomic action (remove + add), then drops the
   * indices it left unless `keepPrevious` (to compare, or to move the alias back by hand).
   * Returns those indices. Promoting an index the alias already points at alone changes nothing.
   */
  async promote(options: { keepPrevious?: boolean } = {}): Promise<string[]> {
    if (this.target === this.alias) throw new TaskflowError('NOT_A_REBUILD', 'promote() is for an index from beginRebuild()');
    const current = await this.client.indices.getAlias({ name: this.alias });
    const previous = Object.keys(current.body as Record<string, unknown>).filter((index) => index !== this.target);
    if (previous.length === 0 && Object.keys(current.body as Record<string, unknown>).includes(this.target)) return [];
    await this.client.indices.updateAliases({
      body: { actions: [...previous.map((index) => ({ remove: { index, alias: this.alias } })), { add: { index: this.target, alias: this.alias } }] },
    });
    if (!options.keepPrevious) for (const index of previous) await this.client.indices.delete({ index });
    return previous;
  }

  private async markers(): Promise<Map<string, string>> {
    const tables = [...INDEXED_TABLES, MEMBERSHIPS_TABLE];
    const res = await this.client.mget({ index: this.target, body: { docs: tables.map((t) => ({ _id: `truncate/${t}` })) } });
    const markers = new Map<string, string>();
    for (const d of (res.body as { docs: { _id: string; found?: boolean; _source?: Source }[] }).docs) {
      if (d.found && typeof d._source?.event_id === 'string') markers.set(d._id.slice('truncate/'.length), d._source.event_id);
    }
    return markers;
  }

  /** Bulk-writes; returns the ids that lost to a newer version (409). */
  private async bulk(operations: { id: string; routing?: string; version: number; source: Source }[]): Promise<Set<string>> {
    if (operations.length === 0) return new Set();
    const body: Source[] = [];
    for (const op of operations) {
      body.push({ index: { _index: this.target, _id: op.id, version: op.version, version_type: 'external_gte', ...(op.routing ? { routing: op.routing } : {}) } });
      body.push(op.source);
    }
    const res = await this.client.bulk({ body, ...(this.refresh ? { refresh: 'wait_for' as const } : {}) });
    const conflicts = new Set<string>();
    for (const item of (res.body as { items: Record<string, BulkItem>[] }).items) {
      const result = Object.values(item)[0];
      if (!result || result.status < 300) continue;
      if (result.status === 409) conflicts.add(result._id);
      else throw new TaskflowError('OPENSEARCH_WRITE_FAILED', `bulk write of ${result._id} failed: ${result.status} ${result.error?.type ?? ''} ${result.error?.reason ?? ''}`, { retriable: result.status === 429 || result.status >= 500 });
    }
    return conflicts;
  }

  async apply(batch: IndexBatch): Promise<void> {
    const markers = await this.markers();
    for (const t of batch.truncates) {
      for (const table of t.tables) {
        if ((markers.get(table) ?? '') >= t.eventId) continue;
        markers.set(table, t.eventId);
        await this.bulk([{ id: `truncate/${table}`, version: versionOf(t.eventId), source: { kind: 'truncate', table, event_id: t.eventId } }]);
        // What the cut erases entirely can go; what it trims is hidden by the marker at query time.
        await this.client.deleteByQuery({
          index: this.target,
          body: { query: { bool: { filter: [{ term: { kind: 'doc' } }, { term: { table } }, { range: { written: { lt: t.eventId } } }, { range: { deleted: { lt: t.eventId } } }] } } },
          ...(this.refresh ? { refresh: true } : {}),
        });
      }
    }
    await this.applyChanges(batch.changes, markers);
    const memberships: Parameters<OpenSearchIndex['bulk']>[0] = [];
    for (const w of batch.memberships) {
      if ('truncatedBefore' in w) {
        if ((markers.get(MEMBERSHIPS_TABLE) ?? '') >= w.truncatedBefore) continue;
        markers.set(MEMBERSHIPS_TABLE, w.truncatedBefore);
        memberships.push({ id: `truncate/${MEMBERSHIPS_TABLE}`, version: versionOf(w.truncatedBefore), source: { kind: 'truncate', table: MEMBERSHIPS_TABLE, event_id: w.truncatedBefore } });
        continue;
      }
      const m = w.membership;
      memberships.push({
        id: `membership/${w.userId}/${w.membershipId}`,
        version: versionOf(w.eventId),
        source: { kind: 'membership', user_id: w.userId, event_id: w.eventId, ...(m ? { workspace_id: m.workspaceId, project_id: m.projectId, role: m.role } : {}) },
      });
    }
    await this.applyMemberships(lastPerId(memberships));
  }

  /**
   * Membership writes whose stored event is not older are skipped (two events of one transaction
   * share a version, so the version alone cannot order them); a write that still loses (409)
   * lost to a newer transaction's event.
   */
  private async applyMemberships(operations: Parameters<OpenSearchIndex['bulk']>[0]): Promise<void> {
    if (operations.length === 0) return;
    const res = await this.client.mget({ index: this.target, body: { docs: operations.map((o) => ({ _id: o.id })) } });
    const stored = new Map<string, string>();
    for (const d of (res.body as { docs: { _id: string; found?: boolean; _source?: Source }[] }).docs) {
      if (d.found && typeof d._source?.event_id === 'string') stored.set(d._id, d._source.event_id);
    }
    await this.bulk(operations.filter((o) => (stored.get(o.id) ?? '') < String(o.source.event_id)));
  }

  private async applyChanges(changes: readonly DocChange[], markers: Map<string, string>): Promise<void> {
    let pending = groupByDoc(changes);
    for (let round = 0; pending.size > 0; round += 1) {
      if (round >= MAX_CONFLICT_ROUNDS) throw new TaskflowError('OPENSEARCH_CONFLICTS', `${pending.size} documents kept changing under the indexer`, { retriable: true });
      const keys = [...pending.keys()];
      const res = await this.client.mget({ index: this.target, body: { docs: keys.map((k) => ({ _id: `doc/${k}`, routing: pending.get(k)![0]!.workspaceId })) } });
      const stored = new Map<string, DocState>();
      for (const d of (res.body as { docs: { _id: string; found?: boolean; _source?: Source }[] }).docs) {
        if (d.found && d._source?.state) stored.set(d._id.slice('doc/'.length), d._source.state as DocState);
      }
      const operations: Parameters<OpenSearchIndex['bulk']>[0] = [];
      for (const [key, docChanges] of pending) {
        const before = stored.get(key);
        const state = docChanges.reduce<DocState | undefined>((s, c) => applyChange(s, c), before);
        if (!state) continue;
        if (!before && erasedByTruncate(state, markers.get(state.table) ?? '')) continue;
        operations.push(docOperation(key, state, markers));
      }
      const conflicts = await this.bulk(operations);
      pending = new Map([...pending].filter(([key]) => conflicts.has(`doc/${key}`)));
    }
  }

  /** Every stored document, a page at a time in key order (search_after): what erasure reads. */
  private async *documentPages(): AsyncGenerator<{ key: string; state: DocState }[]> {
    let after: string | undefined;
    for (;;) {
      const res = await this.client.search({
        index: this.target,
        body: { size: ERASURE_PAGE, sort: [{ key: 'asc' }], query: { bool: { filter: [{ term: { kind: 'doc' } }] } }, ...(after !== undefined ? { search_after: [after] } : {}) },
      });
      const page = hitsOf(res.body).flatMap((h) => (typeof h._source.key === 'string' && h._source.state ? [{ key: h._source.key, state: h._source.state as DocState }] : []));
      if (page.length === 0) return;
      yield page;
      if (page.length < ERASURE_PAGE) return;
      after = page[page.length - 1]!.key;
    }
  }

  /**
   * Erasure of a subject (search/erasure-sink.ts), as the SQLite index does it: every document
   * holding a needle loses those values and the subject's comments are hidden as deleted
   * (documents.ts erasedState: each field keeps its event id, so no replayed older event brings a
   * value back), and the index's memberships of the subject are deleted. Written at the
   * document's own version (external_gte): a newer live write wins, and the scan after the purge
   * finds it if it still holds a needle. Returns the documents and memberships changed.
   */
  async erase(e: ErasureTarget): Promise<number> {
    const markers = await this.markers();
    const remove = new Set(e.comments);
    let changed = 0;
    for await (const page of this.documentPages()) {
      const operations: Parameters<OpenSearchIndex['bulk']>[0] = [];
      for (const { key, state } of page) {
        const next = erasedState(state, e.needles, state.table === 'comments' && remove.has(state.id));
        if (next) operations.push(docOperation(key, next, markers));
      }
      const lost = await this.bulk(operations);
      changed += operations.length - lost.size;
    }
    const res = await this.client.deleteByQuery({ index: this.target, body: { query: this.subjectMemberships(e.subject) }, refresh: true });
    return changed + Number((res.body as { deleted?: number }).deleted ?? 0);
  }

  /** Reads every document and the memberships: counts those holding a needle, a visible comment of the subject's, or a membership of theirs. */
  async holding(e: ErasureTarget): Promise<{ scanned: number; found: number }> {
    const markers = await this.markers();
    const remove = new Set(e.comments);
    let scanned = 0;
    let found = 0;
    for await (const page of this.documentPages()) {
      for (const { state } of page) {
        scanned += 1;
        if (stateHolds(state, e.needles) || (state.table === 'comments' && remove.has(state.id) && visibleDocument(state, markers.get('comments')))) found += 1;
      }
    }
    const count = async (query: Source) => {
      const res = await this.client.search({ index: this.target, body: { size: 0, query } });
      return (res.body as { hits: { total: { value: number } } }).hits.total.value;
    };
    return { scanned: scanned + (await count({ bool: { filter: [{ term: { kind: 'membership' } }] } })), found: found + (await count(this.subjectMemberships(e.subject))) };
  }

  private subjectMemberships(subject: string): Source {
    return { bool: { filter: [{ term: { kind: 'membership' } }, { term: { user_id: subject } }] } };
  }

  async memberships(userId: string): Promise<Membership[]> {
    const [markers, res] = await Promise.all([
      this.markers(),
      this.client.search({ index: this.target, body: { size: 1000, query: { bool: { filter: [{ term: { kind: 'membership' } }, { term: { user_id: userId } }] } } } }),
    ]);
    const cut = markers.get(MEMBERSHIPS_TABLE) ?? '';
    const out: Membership[] = [];
    for (const hit of hitsOf(res.body)) {
      const s = hit._source;
      if (typeof s.workspace_id !== 'string' || typeof s.event_id !== 'string' || s.event_id <= cut) continue;
      out.push({ workspaceId: s.workspace_id, projectId: typeof s.project_id === 'string' ? s.project_id : null, role: s.role as Role });
    }
    return out;
  }

  private visibleFilter(markers: Map<string, string>, workspaceId: string): Source[] {
    // Per table, only what was written after its truncate marker.
    const perTable = INDEXED_TABLES.map((table: IndexedTable) => ({ bool: { filter: [{ term: { table } }, { range: { written: { gt: markers.get(table) ?? '' } } }] } }));
    return [{ term: { kind: 'doc' } }, { term: { workspace_id: workspaceId } }, { term: { visible: true } }, { bool: { should: perTable, minimum_should_match: 1 } }];
  }

  async search(query: SearchQuery): Promise<SearchHit[]> {
    if (query.projects !== 'all' && query.projects.length === 0) return [];
    const markers = await this.markers();
    const filter = this.visibleFilter(markers, query.workspaceId);
    if (query.projects !== 'all') filter.push({ terms: { project_id: [...query.projects] } });
    const f = query.filter;
    if (hasFilter(f)) {
      filter.push({ term: { table: 'tasks' } });
      for (const label of f.labels ?? []) filter.push({ term: { labels: label } });
      if (f.dueAfter !== undefined || f.dueBefore !== undefined) {
        filter.push({ range: { due_at: { ...(f.dueAfter !== undefined ? { gte: f.dueAfter } : {}), ...(f.dueBefore !== undefined ? { lt: f.dueBefore } : {}) } } });
      }
    }
    const ranked = query.terms.length > 0;
    const res = await this.client.search({
      index: this.target,
      routing: query.workspaceId,
      body: {
        size: query.limit,
        // Without terms nothing ranks: document order, as the SQLite adapter answers.
        ...(ranked ? {} : { sort: [{ key: 'asc' }] }),
        query: { bool: { filter, must: query.terms.map((t) => ({ multi_match: { query: t, type: 'phrase_prefix', fields: ['title^4', 'text'] } })) } },
      },
    });
    return this.documentsOf(res.body, markers);
  }

  private documentsOf(body: unknown, markers: Map<string, string>): SearchHit[] {
    const hits: SearchHit[] = [];
    for (const hit of hitsOf(body)) {
      const state = hit._source.state as DocState | undefined;
      const doc = state ? visibleDocument(state, markers.get(state.table)) : null;
      if (doc) hits.push({ ...doc, score: hit._score ?? 0 });
    }
    return hits;
  }

  async documents(workspaceId: string): Promise<SearchDocument[]> {
    const markers = await this.markers();
    const res = await this.client.search({ index: this.target, routing: workspaceId, body: { size: 10_000, sort: [{ key: 'asc' }], query: { bool: { filter: this.visibleFilter(markers, workspaceId) } } } });
    return this.documentsOf(res.body, markers).map(({ score: _score, ...doc }) => doc);
  }

  async close(): Promise<void> {
    if (this.ownsClient) await this.client.close();
  }
}

function hitsOf(body: unknown): { _id: string; _score?: number; _source: Source }[] {
  return (body as { hits: { hits: { _id: string; _score?: number; _source: Source }[] } }).hits.hits;
}

function groupByDoc(changes: readonly DocChange[]): Map<string, DocChange[]> {
  const byDoc = new Map<string, DocChange[]>();
  for (const c of changes) {
    const key = docKey(c);
    byDoc.set(key, [...(byDoc.get(key) ?? []), c]);
  }
  return byDoc;
}

/** One bulk operation per id (a bulk request must not write one id twice): the one of the highest event. */
function lastPerId<T extends { id: string; source: Source }>(ops: readonly T[]): T[] {
  const byId = new Map<string, T>();
  for (const op of ops) {
    const seen = byId.get(op.id);
    if (!seen || String(seen.source.event_id) < String(op.source.event_id)) byId.set(op.id, op);
  }
  return [...byId.values()];
}

/** A sortable, unique-enough build name: UTC time to the millisecond. */
function buildName(now = new Date()): string {
  return now.toISOString().replace(/[^0-9]/g, '').slice(0, 17);
}
