// The search index's erasure sink (gdpr/POLICY.md `search-index`): the subject's comments are
// deleted from the index and every indexed value holding their id, email, name or authored text
// (a description they wrote, a mention of their email) is emptied, replay-safe (documents.ts
// erasedState); the index's own membership projection forgets them. SQLite engine
// (sqlite-index.ts), opened beside the search service on the same file: WAL lets both write.
import type { Env } from '../lib/config.js';
import { readSettings } from '../lib/config.js';
import { type ErasureSink, type SinkSteps, bindSink, identifierStrings, type SubjectIdentifiers } from '../lib/erasure.js';
import { TaskflowError } from '../lib/errors.js';
import { SEARCH_SETTINGS } from './config.js';
import { SqliteSearchIndex } from './sqlite-index.js';

const subjectOf = (ids: SubjectIdentifiers) => ({ subject: ids.subject, needles: identifierStrings(ids), comments: ids.authored.filter((a) => a.table === 'comments').map((a) => a.id) });

export const SEARCH_INDEX_SINK: SinkSteps<SqliteSearchIndex> = {
  sink: 'search-index',
  purge: (index, ids, onProgress) => {
    const changed = index.erase(subjectOf(ids));
    onProgress?.(changed);
    return Promise.resolve({ changed });
  },
  scan: (index, ids) => Promise.resolve(index.holding(subjectOf(ids))),
};

export const ERASURE_SINKS = [SEARCH_INDEX_SINK] as const;

export function openErasureSinks(env: Env): Promise<{ sinks: ErasureSink[]; close(): Promise<void> }> {
  const s = readSettings(env, { engine: SEARCH_SETTINGS.engine, dbPath: SEARCH_SETTINGS.dbPath });
  if (s.engine !== 'sqlite') throw new TaskflowError('GDPR_SINK_UNSUPPORTED', `search-index: erasure is written for SEARCH_ENGINE=sqlite only, not ${s.engine}; the processor cannot claim this sink`);
  if (!s.dbPath) throw new TaskflowError('GDPR_SINK_UNCONFIGURED', "search-index: SEARCH_DB_PATH is not set; the processor purges the search service's index file and needs its path (the search service's own setting)");
  const index = new SqliteSearchIndex(s.dbPath);
  return Promise.resolve({ sinks: [bindSink(SEARCH_INDEX_SINK, index)], close: () => index.close() });
}
