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
  /** Already parsed: the terms every hit must contain (prefix match on each). */
  terms: readonly string[];
  /** From lib/authz.ts readableProjects: 'all' of the workspace, or these projects only. */
  projects: 'all' | readonly string[];
  limit: number;
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
