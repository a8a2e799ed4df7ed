// Opens the configured engine behind the SearchIndex port.
import type { SearchEngine } from './config.js';
import type { SearchIndex } from './search-index.js';
import { SqliteSearchIndex } from './sqlite-index.js';

export async function openSearchIndex(engine: SearchEngine): Promise<SearchIndex> {
  if (engine.kind === 'sqlite') return new SqliteSearchIndex(engine.path);
  const { OpenSearchIndex } = await import('./opensearch-index.js');
  return OpenSearchIndex.open({ node: engine.url, alias: engine.alias });
}
