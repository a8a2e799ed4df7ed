// The local search engine: SQLite FTS5 through Node 24's built-in node:sqlite (no native
// module). One database file holds the documents' states, the full-text index of the visible
// ones, the truncate markers and the index's own membership projection, so one transaction
// applies a whole batch: a crash leaves the batch in or out, never half.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { Membership, Role } from '../lib/authz.js';
import { applyChange, type DocState, docKey, erasedByTruncate, erasedState, type IndexedTable, INDEXED_TABLES, type SearchDocument, stateHolds, visibleDocument } from './documents.js';
import { hasFilter, type IndexBatch, type SearchHit, type SearchIndex, type SearchQuery } from './search-index.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS docs (
  key TEXT PRIMARY KEY,
  table_name TEXT NOT NULL,
  written TEXT NOT NULL,
  deleted TEXT NOT NULL,
  state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS docs_by_table ON docs (table_name, written);
CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts USING fts5(
  title, text, workspace_id UNINDEXED, project_id UNINDEXED,
  tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS truncates (table_name TEXT PRIMARY KEY, event_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS memberships (
  user_id TEXT NOT NULL,
  membership_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  workspace_id TEXT,
  project_id TEXT,
  role TEXT,
  PRIMARY KEY (user_id, membership_id)
);
`;

/**
 * Filter columns of a visible task (labels as a JSON array, due_at as toISOString()), NULL
 * otherwise. Added to the docs table of a file an older release wrote; its documents get them
 * when next written, or all at once by rebuilding the index (delete the file, replay the stream).
 */
const FILTER_COLUMNS = ['labels', 'due_at'] as const;

/** Title matches weigh more than body matches (bm25 column weights: title, text). */
const BM25 = 'bm25(docs_fts, 4.0, 1.0)';
const MEMBERSHIPS_TABLE = 'memberships';

export class SqliteSearchIndex implements SearchIndex {
  private readonly db: DatabaseSync;
  private readonly stmt: Record<'getDoc' | 'putDoc' | 'delDoc' | 'delFts' | 'putFts' | 'putFilters' | 'getTruncate' | 'putTruncate' | 'putMembership' | 'membershipsOf', StatementSync>;

  /** `path`: the database file (created with its folder), or ':memory:'. */
  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new DatabaseSync(path);
    // WAL lets the API read while the indexer writes (and a redrive from the CLI write alongside);
    // synchronous=FULL: a committed batch survives power loss before its Kinesis checkpoint moves.
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;');
    this.db.exec(SCHEMA);
    const present = new Set((this.db.prepare('PRAGMA table_info(docs)').all() as { name: string }[]).map((c) => c.name));
    for (const column of FILTER_COLUMNS) if (!present.has(column)) this.db.exec(`ALTER TABLE docs ADD COLUMN ${column} TEXT`);
    this.stmt = {
      getDoc: this.db.prepare('SELECT rowid, state FROM docs WHERE key = ?'),
      putDoc: this.db.prepare(
        'INSERT INTO docs (key, table_name, written, deleted, state) VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET written = excluded.written, deleted = excluded.deleted, state = excluded.state RETURNING rowid',
      ),
      delDoc: this.db.prepare('DELETE FROM docs WHERE rowid = ?'),
      delFts: this.db.prepare('DELETE FROM docs_fts WHERE rowid = ?'),
      putFts: this.db.prepare('INSERT INTO docs_fts (rowid, title, text, workspace_id, project_id) VALUES (?, ?, ?, ?, ?)'),
      putFilters: this.db.prepare('UPDATE docs SET labels = ?, due_at = ? WHERE rowid = ?'),
      getTruncate: this.db.prepare('SELECT event_id FROM truncates WHERE table_name = ?'),
      putTruncate: this.db.prepare(
        'INSERT INTO truncates (table_name, event_id) VALUES (?, ?) ON CONFLICT (table_name) DO UPDATE SET event_id = max(event_id, excluded.event_id)',
      ),
      putMembership: this.db.prepare(
        `INSERT INTO memberships (user_id, membership_id, event_id, workspace_id, project_id, role) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (user_id, membership_id) DO UPDATE SET event_id = excluded.event_id, workspace_id = excluded.workspace_id, project_id = excluded.project_id, role = excluded.role
         WHERE excluded.event_id > memberships.event_id`,
      ),
      membershipsOf: this.db.prepare('SELECT workspace_id, project_id, role, event_id FROM memberships WHERE user_id = ? AND workspace_id IS NOT NULL'),
    };
  }

  private truncatedBefore(table: string): string {
    const row = this.stmt.getTruncate.get(table) as { event_id: string } | undefined;
    return row?.event_id ?? '';
  }

  /** Rewrites a document's full-text row from its state. */
  private reindex(rowid: number | bigint, state: DocState, truncatedBefore: string): void {
    this.stmt.delFts.run(rowid);
    const doc = visibleDocument(state, truncatedBefore);
    if (doc) this.stmt.putFts.run(rowid, doc.title, doc.text, doc.workspaceId, doc.projectId);
    const task = doc?.table === 'tasks' ? doc : null;
    this.stmt.putFilters.run(task ? JSON.stringify(task.labels) : null, task?.dueAt ?? null, rowid);
  }

  apply(batch: IndexBatch): Promise<void> {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      for (const t of batch.truncates) for (const table of t.tables) this.truncate(table, t.eventId);
      const markers = new Map<IndexedTable, string>(INDEXED_TABLES.map((t) => [t, this.truncatedBefore(t)]));
      for (const change of batch.changes) {
        const key = docKey(change);
        const current = this.stmt.getDoc.get(key) as { rowid: number; state: string } | undefined;
        const before = current ? (JSON.parse(current.state) as DocState) : undefined;
        const next = applyChange(before, change);
        const marker = markers.get(change.table) ?? '';
        if (!current && erasedByTruncate(next, marker)) continue; // older than the table's truncate: nothing to keep
        const { rowid } = this.stmt.putDoc.get(key, next.table, next.written, next.deleted, JSON.stringify(next)) as { rowid: number };
        this.reindex(rowid, next, marker);
      }
      for (const w of batch.memberships) {
        if ('truncatedBefore' in w) this.stmt.putTruncate.run(MEMBERSHIPS_TABLE, w.truncatedBefore);
        else this.stmt.putMembership.run(w.userId, w.membershipId, w.eventId, w.membership?.workspaceId ?? null, w.membership?.projectId ?? null, w.membership?.role ?? null);
      }
      this.db.exec('COMMIT');
    } catch (err) {
      this.db.exec('ROLLBACK');
      return Promise.reject(err);
    }
    return Promise.resolve();
  }

  /** Raises the table's marker; forgets what it cuts away and re-derives what it only trims. */
  private truncate(table: IndexedTable, eventId: string): void {
    if (this.truncatedBefore(table) >= eventId) return;
    this.stmt.putTruncate.run(table, eventId);
    const rows = this.db.prepare('SELECT rowid, state FROM docs WHERE table_name = ?').all(table) as { rowid: number; state: string }[];
    for (const row of rows) {
      const state = JSON.parse(row.state) as DocState;
      if (erasedByTruncate(state, eventId)) {
        this.stmt.delFts.run(row.rowid);
        this.stmt.delDoc.run(row.rowid);
      } else this.reindex(row.rowid, state, eventId);
    }
  }

  memberships(userId: string): Promise<Membership[]> {
    const cut = this.truncatedBefore(MEMBERSHIPS_TABLE);
    const rows = this.stmt.membershipsOf.all(userId) as { workspace_id: string; project_id: string | null; role: string; event_id: string }[];
    return Promise.resolve(rows.filter((r) => r.event_id > cut).map((r) => ({ workspaceId: r.workspace_id, projectId: r.project_id, role: r.role as Role })));
  }

  search(query: SearchQuery): Promise<SearchHit[]> {
    if (query.projects !== 'all' && query.projects.length === 0) return Promise.resolve([]);
    const where: string[] = ['f.workspace_id = ?'];
    const params: (string | number)[] = [query.workspaceId];
    if (query.terms.length > 0) {
      // Each term is a quoted FTS5 string with a prefix star: the parser sees no operator of ours.
      where.unshift('docs_fts MATCH ?');
      params.unshift(query.terms.map((t) => `"${t.replaceAll('"', '""')}"*`).join(' '));
    }
    if (query.projects !== 'all') {
      where.push(`f.project_id IN (${query.projects.map(() => '?').join(', ')})`);
      params.push(...query.projects);
    }
    const f = query.filter;
    if (hasFilter(f)) {
      where.push("d.table_name = 'tasks'");
      for (const label of f.labels ?? []) {
        where.push('EXISTS (SELECT 1 FROM json_each(d.labels) WHERE value = ?)');
        params.push(label);
      }
      if (f.dueAfter !== undefined) {
        where.push('d.due_at >= ?');
        params.push(f.dueAfter);
      }
      if (f.dueBefore !== undefined) {
        where.push('d.due_at < ?');
        params.push(f.dueBefore);
      }
    }
    const ranked = query.terms.length > 0;
    const rows = this.db
      .prepare(`SELECT d.state, ${ranked ? `-${BM25}` : '0'} AS score FROM docs_fts f JOIN docs d ON d.rowid = f.rowid WHERE ${where.join(' AND ')} ORDER BY ${ranked ? BM25 : 'd.key'} LIMIT ?`)
      .all(...params, query.limit) as { state: string; score: number }[];
    return Promise.resolve(this.hits(rows));
  }

  private hits(rows: { state: string; score: number }[]): SearchHit[] {
    const hits: SearchHit[] = [];
    for (const r of rows) {
      const state = JSON.parse(r.state) as DocState;
      const doc = visibleDocument(state, this.truncatedBefore(state.table));
      if (doc) hits.push({ ...doc, score: r.score });
    }
    return hits;
  }

  documents(workspaceId: string): Promise<SearchDocument[]> {
    const rows = this.db.prepare('SELECT d.state, 0 AS score FROM docs_fts f JOIN docs d ON d.rowid = f.rowid WHERE f.workspace_id = ? ORDER BY d.key').all(workspaceId) as {
      state: string;
      score: number;
    }[];
    return Promise.resolve(this.hits(rows).map(({ score: _score, ...doc }) => doc));
  }

  /**
   * Erasure of a subject (search/erasure-sink.ts): every document holding a needle loses those
   * values, the `comments` ids (theirs) are hidden as deleted, and the index's memberships of the
   * subject go. Freed pages are zeroed (secure_delete), the full-text segments merged and the WAL
   * checkpointed, so no copy is left in the file. Returns the documents and memberships changed.
   */
  erase(e: { subject: string; needles: readonly string[]; comments: readonly string[] }): number {
    const remove = new Set(e.comments);
    let changed = 0;
    this.db.exec('PRAGMA secure_delete = ON');
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const markers = new Map<IndexedTable, string>(INDEXED_TABLES.map((t) => [t, this.truncatedBefore(t)]));
      const update = this.db.prepare('UPDATE docs SET deleted = ?, state = ? WHERE rowid = ?');
      for (const row of this.db.prepare('SELECT rowid, state FROM docs').all() as { rowid: number; state: string }[]) {
        const state = JSON.parse(row.state) as DocState;
        const next = erasedState(state, e.needles, state.table === 'comments' && remove.has(state.id));
        if (!next) continue;
        update.run(next.deleted, JSON.stringify(next), row.rowid);
        this.reindex(row.rowid, next, markers.get(next.table) ?? '');
        changed += 1;
      }
      changed += Number(this.db.prepare('DELETE FROM memberships WHERE user_id = ?').run(e.subject).changes);
      this.db.exec('COMMIT');
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
    if (changed > 0) {
      this.db.exec("INSERT INTO docs_fts (docs_fts) VALUES ('optimize')");
      this.db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
    }
    return changed;
  }

  /** Reads every document and membership row; counts those holding a needle, a visible `comments` id, or the subject's memberships. */
  holding(e: { subject: string; needles: readonly string[]; comments: readonly string[] }): { scanned: number; found: number } {
    const remove = new Set(e.comments);
    let scanned = 0;
    let found = 0;
    for (const row of this.db.prepare('SELECT state FROM docs').all() as { state: string }[]) {
      const state = JSON.parse(row.state) as DocState;
      scanned += 1;
      if (stateHolds(state, e.needles) || (state.table === 'comments' && remove.has(state.id) && visibleDocument(state, this.truncatedBefore('comments')))) found += 1;
    }
    const m = this.db.prepare('SELECT count(*) AS n, sum(user_id = ?) AS mine FROM memberships').get(e.subject) as { n: number; mine: number | null };
    return { scanned: scanned + m.n, found: found + (m.mine ?? 0) };
  }

  close(): Promise<void> {
    if (this.db.isOpen) this.db.close();
    return Promise.resolve();
  }
}
