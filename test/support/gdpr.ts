// The gdpr processor's surroundings on the test stack, shared by its end-to-end test and bench:gdpr:
// a database and every table the processor's sinks open, the environment naming them, and the
// analytics loader that holds the warehouse (its purge runs behind the loader's erasure endpoint).
import { join } from 'node:path';
import { type ServiceProcess, startServiceProcess } from './service-process.js';
import { createTestDatabase, createTestTables, testStackEnv } from './stack.js';

const PROCESSOR_TABLES = ['gdpr-requests', 'subject-keys', 'changelog', 'notifications', 'notification-watchers', 'notification-memberships', 'dlq'] as const;

/** A fresh database and tables, and the environment of `taskflow gdpr` over them, with its files under `dir`. */
export async function gdprTestEnv(name: string, dir: string, secrets: { auditKey: string; jwtSecret: string }): Promise<{ url: string; env: Record<string, string> }> {
  const url = await createTestDatabase(name.replaceAll('-', '_'));
  const tables = await createTestTables(name, [...PROCESSOR_TABLES]);
  const env: Record<string, string> = {
    ...testStackEnv(),
    DATABASE_URL: url,
    TASKFLOW_ENV: 'development',
    DYNAMODB_TABLE_GDPR_REQUESTS: tables['gdpr-requests']!,
    DYNAMODB_TABLE_SUBJECT_KEYS: tables['subject-keys']!,
    DYNAMODB_TABLE_CHANGELOG: tables.changelog!,
    DYNAMODB_TABLE_NOTIFICATIONS: tables.notifications!,
    DYNAMODB_TABLE_NOTIFICATION_WATCHERS: tables['notification-watchers']!,
    DYNAMODB_TABLE_NOTIFICATION_MEMBERSHIPS: tables['notification-memberships']!,
    DYNAMODB_TABLE_DLQ: tables.dlq!,
    SUBJECT_KEYS_LOCAL_KEK_FILE: join(dir, 'kek'),
    AUDIT_KEY: secrets.auditKey,
    AUDIT_STORE_DIR: join(dir, 'audit'),
    SEARCH_DB_PATH: join(dir, 'search', 'search.db'),
    GDPR_POLL_INTERVAL_MS: '200',
    METRICS_PORT: '0',
    JWT_SECRET: secrets.jwtSecret,
  };
  return { url, env };
}

/**
 * `taskflow analytics load` over the archive folder `dir`/s3/archive, its warehouse in `dir`, no
 * retention or data-quality runs, and its erasure endpoint on a free port; `env` gains
 * WAREHOUSE_ERASURE_URL, where the processor's warehouse sinks find it.
 */
export async function startErasureLoader(env: Record<string, string>, dir: string, pollMs: number): Promise<ServiceProcess> {
  const loader = await startServiceProcess(['analytics', 'load'], {
    ...env,
    S3_DIR: join(dir, 's3'),
    ARCHIVE_BUCKET: 'archive',
    WAREHOUSE_PATH: join(dir, 'warehouse.duckdb'),
    LOADER_POLL_INTERVAL_MS: String(pollMs),
    LOADER_FULL_LIST_INTERVAL_MS: '0',
    RETENTION_INTERVAL_MS: '0',
    DQ_INTERVAL_MS: '0',
    LOADER_ERASURE_PORT: '0',
  }, ['loader started']);
  env.WAREHOUSE_ERASURE_URL = String(loader.entries['loader started']!.erasure);
  return loader;
}
