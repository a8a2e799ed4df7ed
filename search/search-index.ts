// The port between the indexer and a search engine: the local SQLite FTS5 adapter
// (sqlite-index.ts) and the production OpenSearch adapter (opensearch-index.ts) both implement
// it, and both decide with the same pure model (documents.ts).
import type { Membership } from '../lib/authz.js';
import type { MembershipsTruncated, MembershipWrite } from '../lib/membership-events.js';
import { TaskflowError } from '../lib/errors.js';
import type { DocChange, SearchDocument, TableTruncate } from './documents.js';

/** What one batch of the stream does to the index. Every part is idempotent and commutative. */
export interface IndexBatch {
  changes: readonly DocChange[];
  truncates: readonly TableTruncate[];
  memberships: readonly (MembershipWrite | MembershipsTruncated)[];
}

export interface SearchQuery {
  workspaceId: string;
  /** Already parsed: the terms every hit must contain (prefix match on each). Empty: filters only, hits in document order. */
  terms: readonly string[];
  /** Filters (tasks only: a comment has no labels or due date). */
  filter?: SearchFilter;
  /** From lib/authz.ts readableProjects: 'all' of the workspace, or these projects only. */
  projects: 'all' | readonly string[];
  limit: number;
}

/** Task fields a query narrows by; each given part must hold. */
export interface SearchFilter {
  /** Every one of these labels, compared exactly. */
  labels?: readonly string[];
  /** due_at at or after this instant (toISOString()). */
  dueAfter?: string;
  /** due_at before this instant (toISOString()). */
  dueBefore?: string;
}

export const MAX_FILTER_LABELS = 8;
export const MAX_LABEL_CHARS = 100;

/** Whether a filter narrows anything. */
export function hasFilter(f: SearchFilter | undefined): f is SearchFilter {
  return f !== undefined && ((f.labels?.length ?? 0) > 0 || f.dueAfter !== undefined || f.dueBefore !== undefined);
}

/** `label` (repeatable), `due_after`, `due_before` query parameters → a filter; due bounds are ISO 8601 dates or date-times. */
export function parseSearchFilter(query: URLSearchParams): SearchFilter {
  const labels = [...new Set(query.getAll('label'))];
  if (labels.length > MAX_FILTER_LABELS) throw new TaskflowError('BAD_QUERY', `at most ${MAX_FILTER_LABELS} label filters`);
  if (labels.some((l) => l.length === 0 || l.length > MAX_LABEL_CHARS)) throw new TaskflowError('BAD_QUERY', `a label filter is 1 to ${MAX_LABEL_CHARS} characters`);
  const instant = (name: string): string | undefined => {
    const v = query.get(name);
    if (v === null) return undefined;
    // Date.parse alone takes many shapes ('1', 'June 3'); accept ISO 8601 only.
    if (!/^\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d))?$/.test(v) || Number.isNaN(Date.parse(v))) {
      throw new TaskflowError('BAD_QUERY', `${name} must be an ISO 8601 date or date-time with a zone`);
    }
    return new Date(v).toISOString();
  };
  const dueAfter = instant('due_after');
  const dueBefore = instant('due_before');
  return { ...(labels.length > 0 ? { labels } : {}), ...(dueAfter ? { dueAfter } : {}), ...(dueBefore ? { dueBefore } : {}) };
}

/** The same filter as a predicate over a document (the engines filter in their own query language; tests compare). */
export function matchesFilter(doc: SearchDocument, f: SearchFilter | undefined): boolean {
  if (!hasFilter(f)) return true;
  if (doc.table !== 'tasks') return false;
  if (f.labels?.some((l) => !doc.labels.includes(l))) return false;
  if (f.dueAfter !== undefined && (doc.dueAt === null || doc.dueAt < f.dueAfter)) return false;
  if (f.dueBefore !== undefined && (doc.dueAt === null || doc.dueAt >= f.dueBefore)) return false;
  return true;
}

export interface SearchHit extends SearchDocument {
  /** Higher is better; comparable within one answer only. */
  score: number;
}

export interface SearchIndex {
  /** Applies the batch durably (resolves once it would survive a crash). */
  apply(batch: IndexBatch): Promise<void>;
  /** The user's memberships as the index's own projection knows them. */
  memberships(userId: string): Promise<Membership[]>;
  search(query: SearchQuery): Promise<SearchHit[]>;
  /** Every visible document of a workspace (tests, rebuild comparisons). */
  documents(workspaceId: string): Promise<SearchDocument[]>;
  close(): Promise<void>;
}

export const MAX_QUERY_CHARS = 200;
export const MAX_QUERY_TERMS = 16;

/**
 * `q` → the terms of a query: words of letters and digits (any script), lower-cased; at most
 * MAX_QUERY_TERMS. Operators of either engine's query syntax never get through, so user input
 * cannot change the query's shape.
 */
export function parseQueryTerms(q: string): string[] {
  if (q.length > MAX_QUERY_CHARS) throw new TaskflowError('BAD_QUERY', `q is longer than ${MAX_QUERY_CHARS} characters`);
  const terms = q.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  if (terms.length === 0) throw new TaskflowError('BAD_QUERY', 'q has no word to search for');
  return [...new Set(terms)].slice(0, MAX_QUERY_TERMS);
}
