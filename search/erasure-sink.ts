// The search index's erasure sink (gdpr/POLICY.md `search-index`): the subject's comments are
// deleted from the index and every indexed value holding their id, email, name or authored text
// (a description they wrote, a mention of their email) is emptied, replay-safe (documents.ts
// erasedState); the index's own membership projection forgets them. Either engine: the SQLite
// file (sqlite-index.ts), opened beside the search service on the same file (WAL lets both
// write), or the OpenSearch alias the search service writes (opensearch-index.ts).
import type { Env } from '../lib/config.js';
import { readSettings, url } from '../lib/config.js';
import { type ErasureSink, type SinkSteps, bindSink, identifierStrings, type SubjectIdentifiers } from '../lib/erasure.js';
import { TaskflowError } from '../lib/errors.js';
import { SEARCH_SETTINGS } from './config.js';
import type { ErasureTarget } from './opensearch-index.js';
import { SqliteSearchIndex } from './sqlite-index.js';

/** What both engines offer erasure: the purge and the verification scan of one subject. */
export interface ErasableIndex {
  erase(e: ErasureTarget): number | Promise<number>;
  holding(e: ErasureTarget): { scanned: number; found: number } | Promise<{ scanned: number; found: number }>;
  close(): Promise<void>;
}

const subjectOf = (ids: SubjectIdentifiers): ErasureTarget => ({ subject: ids.subject, needles: identifierStrings(ids), comments: ids.authored.filter((a) => a.table === 'comments').map((a) => a.id) });

export const SEARCH_INDEX_SINK: SinkSteps<ErasableIndex> = {
  sink: 'search-index',
  purge: async (index, ids, onProgress) => {
    const changed = await index.erase(subjectOf(ids));
    onProgress?.(changed);
    return { changed };
  },
  scan: async (index, ids) => index.holding(subjectOf(ids)),
};

export const ERASURE_SINKS = [SEARCH_INDEX_SINK] as const;

async function openIndex(env: Env): Promise<ErasableIndex> {
  const s = readSettings(env, { engine: SEARCH_SETTINGS.engine, dbPath: SEARCH_SETTINGS.dbPath, opensearchAlias: SEARCH_SETTINGS.opensearchAlias });
  if (s.engine === 'opensearch') {
    const { OpenSearchIndex } = await import('./opensearch-index.js');
    // The processor waits for its writes to be searchable: its scan right after must see them.
    return OpenSearchIndex.open({ node: url(env, 'OPENSEARCH_URL'), alias: s.opensearchAlias, refresh: true });
  }
  if (!s.dbPath) throw new TaskflowError('GDPR_SINK_UNCONFIGURED', "search-index: SEARCH_DB_PATH is not set; the processor purges the search service's index file and needs its path (the search service's own setting)");
  return new SqliteSearchIndex(s.dbPath);
}

export async function openErasureSinks(env: Env): Promise<{ sinks: ErasureSink[]; close(): Promise<void> }> {
  const index = await openIndex(env);
  return { sinks: [bindSink(SEARCH_INDEX_SINK, index)], close: () => index.close() };
}
