import { describe, expect, it } from '@jest/globals';
import { loadConfig } from './config.js';

const base = { JWT_SECRET: 'search-config-test-secret-search-config', AWS_REGION: 'us-east-1' };

describe('search loadConfig', () => {
  it('names the variable it cannot use', () => {
    expect(() => loadConfig(base)).toThrow(/SEARCH_DB_PATH/);
    expect(() => loadConfig({ ...base, SEARCH_ENGINE: 'opensearch' })).toThrow(/OPENSEARCH_URL/);
    expect(() => loadConfig({ ...base, SEARCH_DB_PATH: '/tmp/x.db', SEARCH_MAX_RESULTS: '0' })).toThrow(/SEARCH_MAX_RESULTS/);
    expect(() => loadConfig({ ...base, SEARCH_ENGINE: 'elastic' })).toThrow(/SEARCH_ENGINE/);
  });

  it('defaults: consumer "search", SQLite, 50 results', () => {
    const c = loadConfig({ ...base, SEARCH_DB_PATH: '/tmp/x.db' });
    expect([c.consumerName, c.engine, c.maxResults]).toEqual(['search', { kind: 'sqlite', path: '/tmp/x.db' }, 50]);
    expect(loadConfig({ ...base, SEARCH_ENGINE: 'opensearch', OPENSEARCH_URL: 'https://search.example:9200' }).engine).toEqual({ kind: 'opensearch', url: 'https://search.example:9200', alias: 'taskflow-search' });
  });
});
