// Every setting of the analytics services (archiver, loader, data quality), read once from the
// environment; lib/config.ts fails fast naming the bad variable. ARCHIVER_SETTINGS and
// LOADER_SETTINGS declare each variable once: the loaders, `taskflow analytics --help` and the
// reference in analytics/README.md all come from them.
import { join } from 'node:path';
import { AWS_SETTINGS, type AwsConfig, loadAwsConfig } from '../lib/aws.js';
import { type Env, intSetting, optionalSetting, readSettings, str, stringSetting, tableEnvVar, uniqueSettings } from '../lib/config.js';
import { CONSUMER_SETTINGS, type ConsumerEnvConfig, loadConsumerConfig } from '@taskflow/stream';
import { ConfigError } from '../lib/errors.js';
import { SUBJECT_KEY_SETTINGS, type SubjectKeyConfig, readerKeyConfig } from '../lib/subject-keys.js';
import { LOG_SETTINGS } from '../lib/logger.js';
import { JWT_SETTINGS, type JwtConfig, loadJwtConfig } from '../lib/jwt.js';
import { DEV_MODE_SETTINGS } from '../lib/dev-mode.js';
import { S3_DIR_SETTING } from '../lib/object-store.js';
import { METRICS_SETTINGS } from '../lib/metrics.js';
import type { RetentionPolicy } from './retention.js';

export interface ArchiverConfig {
  aws: AwsConfig;
  consumer: ConsumerEnvConfig;
  /** Its own lease name: the archiver's checkpoints are independent of every other reader's. */
  consumerName: string;
  deliveryStreamName: string;
  dlqTable: string;
  metricsPort: number;
  metricsHost: string;
  /** Backoff ceiling for the first retry after throttling, and the largest delay. */
  backoff: { baseMs: number; maxMs: number };
}

/** The dead-letter table: the archiver's dead letters and the loader's quarantine (sources analytics-archiver, analytics-loader). */
const DLQ_TABLE_SETTING = stringSetting({ name: tableEnvVar('dlq'), default: 'taskflow-dlq', meaning: "Dead-letter table (lib/dlq.ts): the archiver's dead letters and the loader's quarantined archive lines and objects." });

/** What the archiver reads (besides the consumer's, AWS and log settings). */
export const ARCHIVER_SETTINGS = {
  consumerName: stringSetting({ name: 'ARCHIVER_CONSUMER_NAME', default: 'analytics-archiver', meaning: "Name of the archiver's leases and checkpoints (independent of every other reader's)." }),
  deliveryStreamName: stringSetting({ name: 'FIREHOSE_DELIVERY_STREAM', meaning: 'The Firehose delivery stream of the raw archive (FIREHOSE_ENDPOINT locally).' }),
  dlqTable: DLQ_TABLE_SETTING,
  ...METRICS_SETTINGS,
  backoffBaseMs: intSetting({ name: 'ARCHIVER_BACKOFF_BASE_MS', default: 100, min: 1, meaning: 'Backoff ceiling of the first retry after Firehose throttles.' }),
  backoffMaxMs: intSetting({ name: 'ARCHIVER_BACKOFF_MAX_MS', default: 5_000, min: 1, meaning: 'Largest backoff delay.' }),
};

/** What `taskflow analytics archive` reads. */
export const ARCHIVER_SETTING_LIST = uniqueSettings(ARCHIVER_SETTINGS, CONSUMER_SETTINGS, AWS_SETTINGS, LOG_SETTINGS);

export function loadArchiverConfig(env: Env): ArchiverConfig {
  const s = readSettings(env, ARCHIVER_SETTINGS);
  return {
    aws: loadAwsConfig(env),
    consumer: loadConsumerConfig(env),
    consumerName: s.consumerName,
    deliveryStreamName: s.deliveryStreamName,
    dlqTable: s.dlqTable,
    metricsPort: s.metricsPort,
    metricsHost: s.metricsHost,
    backoff: { baseMs: s.backoffBaseMs, maxMs: s.backoffMaxMs },
  };
}

/** What the loader and the data-quality checks read (besides AWS and log settings). */
export const LOADER_SETTINGS = {
  archiveBucket: stringSetting({ name: 'ARCHIVE_BUCKET', meaning: 'Bucket of the raw archive the loader reads.' }),
  archivePrefix: stringSetting({ name: 'ARCHIVE_PREFIX', default: 'raw/', meaning: 'Key prefix of the raw archive.' }),
  s3Dir: S3_DIR_SETTING,
  dlqTable: DLQ_TABLE_SETTING,
  warehousePath: optionalSetting({ name: 'WAREHOUSE_PATH', default: '<S3_DIR>/../warehouse.duckdb', meaning: 'The DuckDB warehouse file (one writing process per file).' }),
  pollIntervalMs: intSetting({ name: 'LOADER_POLL_INTERVAL_MS', default: 250, min: 10, meaning: 'Wait before listing the archive again when nothing was new.' }),
  fullListIntervalMs: intSetting({ name: 'LOADER_FULL_LIST_INTERVAL_MS', default: 600_000, min: 0, meaning: 'The loader lists the whole archive at start and this often (0: every pass); in between only keys from the lookback on.' }),
  listLookbackSeconds: intSetting({ name: 'LOADER_LIST_LOOKBACK_SECONDS', default: 900, min: 0, meaning: "Incremental listings start this long before the newest loaded key's time (Firehose's largest buffer interval)." }),
  erasurePort: optionalSetting({
    name: 'LOADER_ERASURE_PORT',
    type: 'integer 0..65535',
    default: 'unset: no erasure endpoint',
    meaning: "Port of the loader's internal erasure endpoint, which the gdpr processor calls to purge and scan the warehouse (0 picks a free one); it accepts only a JWT of service:gdpr, verified with the JWT_* settings.",
  }),
  apiPort: optionalSetting({ name: 'ANALYTICS_API_PORT', type: 'integer 0..65535', default: 'unset: no API', meaning: "Port of the read-only analytics API for the board's analytics page (0 picks a free one); it verifies tokens with the JWT_* settings." }),
  ...METRICS_SETTINGS,
  dqIntervalMs: intSetting({ name: 'DQ_INTERVAL_MS', default: 60_000, min: 0, meaning: 'The loader runs the data-quality checks after a load at most this often; 0 never.' }),
  dqFreshnessMaxSeconds: intSetting({ name: 'DQ_FRESHNESS_MAX_SECONDS', default: 900, min: 1, meaning: 'Freshness check: the newest event may be at most this old.' }),
  dqSettleSeconds: intSetting({ name: 'DQ_SETTLE_SECONDS', default: 60, min: 0, meaning: 'Volume check: how old a transaction must be before it is expected complete.' }),
  retentionIntervalMs: intSetting({ name: 'RETENTION_INTERVAL_MS', default: 3_600_000, min: 0, meaning: 'The loader applies retention at start and this often; 0 never (production: S3 lifecycle rules).' }),
  retentionRawDays: intSetting({ name: 'RETENTION_RAW_DAYS', default: 30, min: 1, meaning: 'Raw archive objects older than this many days are deleted.' }),
  retentionCuratedDays: intSetting({ name: 'RETENTION_CURATED_DAYS', default: 730, min: 1, meaning: 'Warehouse day partitions (raw_events, hence history and metrics) older than this many days are dropped.' }),
};

/** What `taskflow analytics load` (and `dq`) read. */
export const LOADER_SETTING_LIST = uniqueSettings(LOADER_SETTINGS, SUBJECT_KEY_SETTINGS, AWS_SETTINGS, JWT_SETTINGS, DEV_MODE_SETTINGS, LOG_SETTINGS);

/** Where the raw archive is read from: a local folder per bucket (S3_DIR) or an S3 API (S3_ENDPOINT, or AWS). */
export type ArchiveLocation = { kind: 'folder'; dir: string; bucket: string; prefix: string } | { kind: 's3'; bucket: string; prefix: string };

export function loadArchiveLocation(env: Env): ArchiveLocation {
  const bucket = LOADER_SETTINGS.archiveBucket.read(env);
  const prefix = LOADER_SETTINGS.archivePrefix.read(env);
  const dir = LOADER_SETTINGS.s3Dir.read(env);
  return dir && !AWS_SETTINGS.s3Endpoint.read(env) ? { kind: 'folder', dir, bucket, prefix } : { kind: 's3', bucket, prefix };
}

export interface LoaderConfig {
  aws: AwsConfig;
  archive: ArchiveLocation;
  /** The DuckDB database file (one writing process per file). */
  warehousePath: string;
  /** Where quarantined archive parts go (quarantine.ts). */
  dlqTable: string;
  pollIntervalMs: number;
  listing: { fullListEveryMs: number; lookbackMs: number };
  metricsPort: number;
  metricsHost: string;
  /** The analytics API: its port and how it verifies tokens; undefined: not served. */
  api?: { port: number; jwt: JwtConfig };
  /** The subject-keys table, whose tombstones are the erased-subjects list the loader checks; none: not checked. */
  subjectKeys?: SubjectKeyConfig;
  /** The internal erasure endpoint (analytics/erasure-api.ts); undefined: not served. */
  erasure?: { port: number; jwt: JwtConfig };
  dq: DqConfig;
  retention: { intervalMs: number } & RetentionPolicy;
}

export interface DqConfig {
  /** The loader runs the checks after a load at most this often; 0 never. */
  intervalMs: number;
  freshnessMaxSeconds: number;
  settleSeconds: number;
}

export function loadDqConfig(env: Env): DqConfig {
  return {
    intervalMs: LOADER_SETTINGS.dqIntervalMs.read(env),
    freshnessMaxSeconds: LOADER_SETTINGS.dqFreshnessMaxSeconds.read(env),
    settleSeconds: LOADER_SETTINGS.dqSettleSeconds.read(env),
  };
}

export function loadLoaderConfig(env: Env): LoaderConfig {
  const s3Dir = LOADER_SETTINGS.s3Dir.read(env);
  return {
    aws: loadAwsConfig(env),
    archive: loadArchiveLocation(env),
    // Locally the warehouse sits beside the S3 folder, in the stack's data directory.
    warehousePath: str(env, 'WAREHOUSE_PATH', s3Dir ? join(s3Dir, '..', 'warehouse.duckdb') : undefined),
    dlqTable: LOADER_SETTINGS.dlqTable.read(env),
    pollIntervalMs: LOADER_SETTINGS.pollIntervalMs.read(env),
    listing: { fullListEveryMs: LOADER_SETTINGS.fullListIntervalMs.read(env), lookbackMs: 1000 * LOADER_SETTINGS.listLookbackSeconds.read(env) },
    metricsPort: LOADER_SETTINGS.metricsPort.read(env),
    metricsHost: LOADER_SETTINGS.metricsHost.read(env),
    ...apiConfig(env),
    ...erasureConfig(env),
    ...readerKeyConfig(env),
    dq: loadDqConfig(env),
    retention: {
      intervalMs: LOADER_SETTINGS.retentionIntervalMs.read(env),
      rawDays: LOADER_SETTINGS.retentionRawDays.read(env),
      curatedDays: LOADER_SETTINGS.retentionCuratedDays.read(env),
    },
  };
}

function portOf(raw: string, name: string): number {
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(name, `must be an integer from 0 to 65535, got ${raw}`);
  return port;
}

function apiConfig(env: Env): { api?: { port: number; jwt: JwtConfig } } {
  const raw = LOADER_SETTINGS.apiPort.read(env);
  return raw === undefined ? {} : { api: { port: portOf(raw, 'ANALYTICS_API_PORT'), jwt: loadJwtConfig(env) } };
}

function erasureConfig(env: Env): { erasure?: { port: number; jwt: JwtConfig } } {
  const raw = LOADER_SETTINGS.erasurePort.read(env);
  return raw === undefined ? {} : { erasure: { port: portOf(raw, 'LOADER_ERASURE_PORT'), jwt: loadJwtConfig(env) } };
}
