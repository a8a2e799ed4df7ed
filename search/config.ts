// The search service's configuration, read once from the environment (lib/config.ts fails fast
// naming the bad variable). SEARCH_SETTINGS declares each variable once: loadConfig, `taskflow
// search --help` and the reference in search/README.md all come from it; the consumer's own
// settings are the shared KINESIS_* ones (packages/stream/src/consumer/config.ts).
import { AWS_SETTINGS, type AwsConfig, loadAwsConfig } from '../lib/aws.js';
import { type Env, intSetting, oneOfSetting, optionalSetting, readSettings, stringSetting, tableEnvVar, uniqueSettings, url } from '../lib/config.js';
import { DEV_MODE_SETTINGS } from '../lib/dev-mode.js';
import { ConfigError } from '../lib/errors.js';
import { JWT_SETTINGS, type JwtConfig, loadJwtConfig } from '../lib/jwt.js';
import { CONSUMER_SETTINGS, type ConsumerEnvConfig, loadConsumerConfig } from '@taskflow/stream';
import { LOG_SETTINGS } from '../lib/logger.js';
import { METRICS_SETTINGS } from '../lib/metrics.js';
import { SUBJECT_KEY_SETTINGS, type SubjectKeyConfig, readerKeyConfig } from '../lib/subject-keys.js';

export type SearchEngine = { kind: 'sqlite'; path: string } | { kind: 'opensearch'; url: string; alias: string };

export interface SearchConfig {
  aws: AwsConfig;
  consumer: ConsumerEnvConfig;
  consumerName: string;
  dlqTable: string;
  engine: SearchEngine;
  jwt: JwtConfig;
  port: number;
  metricsPort: number;
  metricsHost: string;
  /** Upper bound of `limit` (and its default). */
  maxResults: number;
  /** Per user: search requests per second, burst, and requests in flight (lib/user-limits.ts). */
  limits: { ratePerSec: number; burst: number; maxConcurrent: number; maxUsers: number };
  /** Subject keys to decrypt personal fields for indexing (crypto-shredding); none: encrypted fields are not indexed as text. */
  subjectKeys?: SubjectKeyConfig;
}

/** Everything search reads from the environment (besides the consumer's, AWS, JWT and log settings). */
export const SEARCH_SETTINGS = {
  consumerName: stringSetting({ name: 'SEARCH_CONSUMER_NAME', default: 'search', meaning: "Name of search's leases and checkpoints (independent of every other reader's)." }),
  dlqTable: stringSetting({ name: tableEnvVar('dlq'), default: 'taskflow-dlq', meaning: 'Dead-letter table (lib/dlq.ts).' }),
  engine: oneOfSetting({ name: 'SEARCH_ENGINE', allowed: ['sqlite', 'opensearch'] as const, default: 'sqlite', meaning: 'The index: a SQLite FTS5 file, or an OpenSearch cluster.' }),
  dbPath: optionalSetting({ name: 'SEARCH_DB_PATH', default: 'required with sqlite', meaning: 'The SQLite index file, e.g. <data dir>/search/search.db.' }),
  opensearchUrl: optionalSetting({ name: 'OPENSEARCH_URL', type: 'URL', default: 'required with opensearch', meaning: 'The OpenSearch cluster.' }),
  opensearchAlias: stringSetting({ name: 'OPENSEARCH_ALIAS', default: 'taskflow-search', meaning: 'The OpenSearch alias of the index.' }),
  port: intSetting({ name: 'SEARCH_PORT', default: 0, min: 0, max: 65535, meaning: 'Port of the search API; 0 picks a free one.' }),
  ...METRICS_SETTINGS,
  maxResults: intSetting({ name: 'SEARCH_MAX_RESULTS', default: 50, min: 1, max: 500, meaning: 'Upper bound of a query\'s `limit`, and its default.' }),
  // The replay API's defaults: a search box sends one query per typing pause, far below them.
  ratePerUser: intSetting({ name: 'SEARCH_RATE_PER_USER', default: 20, min: 1, meaning: 'Search requests per second one user may make (token bucket; 429 beyond it).' }),
  burstPerUser: intSetting({ name: 'SEARCH_BURST_PER_USER', default: 100, min: 1, meaning: 'Search requests one user may make at once before the rate applies.' }),
  concurrencyPerUser: intSetting({ name: 'SEARCH_CONCURRENCY_PER_USER', default: 50, min: 1, meaning: 'Search requests of one user in flight at a time.' }),
};

/** What `taskflow search --help` and search/README.md list: every variable search reads. */
export const SEARCH_SETTING_LIST = uniqueSettings(SEARCH_SETTINGS, CONSUMER_SETTINGS, AWS_SETTINGS, JWT_SETTINGS, SUBJECT_KEY_SETTINGS, DEV_MODE_SETTINGS, LOG_SETTINGS);

function engineOf(env: Env, s: { engine: 'sqlite' | 'opensearch'; dbPath: string | undefined; opensearchUrl: string | undefined; opensearchAlias: string }): SearchEngine {
  if (s.engine === 'opensearch') return { kind: 'opensearch', url: url(env, 'OPENSEARCH_URL'), alias: s.opensearchAlias };
  if (!s.dbPath) throw new ConfigError('SEARCH_DB_PATH', 'is required with SEARCH_ENGINE=sqlite (the index file, e.g. <data dir>/search/search.db)');
  return { kind: 'sqlite', path: s.dbPath };
}

export function loadConfig(env: Env): SearchConfig {
  const s = readSettings(env, SEARCH_SETTINGS);
  return {
    aws: loadAwsConfig(env),
    consumer: loadConsumerConfig(env),
    consumerName: s.consumerName,
    dlqTable: s.dlqTable,
    engine: engineOf(env, s),
    jwt: loadJwtConfig(env),
    port: s.port,
    metricsPort: s.metricsPort,
    metricsHost: s.metricsHost,
    maxResults: s.maxResults,
    limits: { ratePerSec: s.ratePerUser, burst: s.burstPerUser, maxConcurrent: s.concurrencyPerUser, maxUsers: 100_000 },
    ...readerKeyConfig(env),
  };
}
