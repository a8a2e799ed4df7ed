// The search service's configuration, read once from the environment (lib/config.ts fails fast
// naming the bad variable). The consumer's own settings are the shared KINESIS_* ones.
import { type AwsConfig, loadAwsConfig } from '../lib/aws.js';
import { type Env, int, oneOf, optionalStr, str, url, tableEnvVar } from '../lib/config.js';
import { ConfigError } from '../lib/errors.js';
import { type JwtConfig, loadJwtConfig } from '../lib/jwt.js';
import { type ConsumerEnvConfig, loadConsumerConfig } from '../lib/kinesis-consumer/index.js';

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
  /** Upper bound of `limit` (and its default). */
  maxResults: number;
}

function loadEngine(env: Env): SearchEngine {
  const kind = oneOf(env, 'SEARCH_ENGINE', ['sqlite', 'opensearch'] as const, 'sqlite');
  if (kind === 'opensearch') return { kind, url: url(env, 'OPENSEARCH_URL'), alias: str(env, 'OPENSEARCH_ALIAS', 'taskflow-search') };
  const path = optionalStr(env, 'SEARCH_DB_PATH');
  if (!path) throw new ConfigError('SEARCH_DB_PATH', 'is required with SEARCH_ENGINE=sqlite (the index file, e.g. <data dir>/search/search.db)');
  return { kind, path };
}

export function loadConfig(env: Env): SearchConfig {
  return {
    aws: loadAwsConfig(env),
    consumer: loadConsumerConfig(env),
    consumerName: str(env, 'SEARCH_CONSUMER_NAME', 'search'),
    dlqTable: str(env, tableEnvVar('dlq'), 'taskflow-dlq'),
    engine: loadEngine(env),
    jwt: loadJwtConfig(env),
    port: int(env, 'SEARCH_PORT', 0, { min: 0, max: 65535 }),
    metricsPort: int(env, 'METRICS_PORT', 0, { min: 0, max: 65535 }),
    maxResults: int(env, 'SEARCH_MAX_RESULTS', 50, { min: 1, max: 500 }),
  };
}
