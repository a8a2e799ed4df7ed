// The audit service's configuration, read once from the environment (lib/config.ts fails fast
// naming the bad variable). AUDIT_SETTINGS declares each variable once: loadConfig, `taskflow
// audit --help` and the reference in audit/README.md all come from it.
import { readFileSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { AWS_SETTINGS, type AwsConfig, loadAwsConfig } from '../lib/aws.js';
import { DEV_MODE_SETTINGS, isDevelopment } from '../lib/dev-mode.js';
import { type Env, intSetting, oneOfSetting, optionalSetting, readSettings, stringSetting, tableEnvVar, uniqueSettings } from '../lib/config.js';
import { ConfigError } from '../lib/errors.js';
import { CONSUMER_SETTINGS, type ConsumerEnvConfig, loadConsumerConfig } from '@taskflow/stream';
import { LOG_SETTINGS } from '../lib/logger.js';
import { S3_DIR_SETTING } from '../lib/object-store.js';
import { METRICS_SETTINGS } from '../lib/metrics.js';
import { SUBJECT_KEY_SETTINGS } from '../lib/subject-keys.js';

/** `taskflow dev`'s audit key, created on first use beside its JWT secret; production takes AUDIT_KEY from its secret store. */
export const DEV_AUDIT_KEY_FILE = '.taskflow/dev-audit-key';

export interface AuditConfig {
  aws: AwsConfig;
  consumer: ConsumerEnvConfig;
  consumerName: string;
  dlqTable: string;
  /** Where the trail is kept: a folder (locally under the stack's S3 folder) or S3 with Object Lock. */
  store: AuditStoreConfig;
  /** Key of the pseudonyms and row digests (HMAC-SHA256), per environment. */
  key: Uint8Array;
  metricsPort: number;
  metricsHost: string;
  /** Workspaces whose last event id the checkpoint keeps. */
  maxMarks: number;
  /** Least time between two checkpoints of a shard. */
  checkpointIntervalMs: number;
  /** The erased-subjects list (the subject-keys table's tombstones): no identity mapping is written for them. */
  erasedSubjects: { table: string; ttlMs: number };
}

export type AuditStoreConfig = { kind: 'file'; dir: string } | { kind: 's3'; lockedBucket: string; mutableBucket: string; retentionDays: number };

const MIN_KEY_CHARS = 32;

/** Everything audit reads from the environment (besides the consumer's, AWS and log settings). */
export const AUDIT_SETTINGS = {
  consumerName: stringSetting({ name: 'AUDIT_CONSUMER_NAME', default: 'audit', meaning: "Name of the audit trail's leases and checkpoints (independent of every other reader's)." }),
  dlqTable: stringSetting({ name: tableEnvVar('dlq'), default: 'taskflow-dlq', meaning: 'Dead-letter table (lib/dlq.ts).' }),
  store: oneOfSetting({ name: 'AUDIT_STORE', allowed: ['file', 's3'] as const, default: 'file', meaning: 'file: a folder (AUDIT_STORE_DIR; local); s3: AUDIT_BUCKET under Object Lock and AUDIT_IDENTITY_BUCKET (production).' }),
  storeDir: optionalSetting({ name: 'AUDIT_STORE_DIR', default: '<S3_DIR>/taskflow-audit', meaning: 'Folder of the segment store (file store).' }),
  bucket: optionalSetting({ name: 'AUDIT_BUCKET', default: 'required with AUDIT_STORE=s3', meaning: 'S3 bucket with Object Lock enabled: segments, redrive marks and erasure proofs, each locked in compliance mode.' }),
  identityBucket: optionalSetting({ name: 'AUDIT_IDENTITY_BUCKET', default: 'required with AUDIT_STORE=s3', meaning: 'S3 bucket without Object Lock: the identity mapping (pseudonym → user id), which erasure deletes.' }),
  // SOC 2 evidence is kept a year and a bit; the bucket's default retention is the same (infra/aws/stacks/compliance.ts).
  retentionDays: intSetting({ name: 'AUDIT_RETENTION_DAYS', default: 400, min: 1, max: 36_500, meaning: 'Days each segment stays locked (Object Lock compliance mode: nobody can delete or overwrite it before).' }),
  s3Dir: S3_DIR_SETTING,
  key: optionalSetting({ name: 'AUDIT_KEY', default: 'unset: AUDIT_KEY_FILE', meaning: `Key of the actor pseudonyms and row digests (HMAC-SHA256, at least ${MIN_KEY_CHARS} characters), per environment.` }),
  keyFile: optionalSetting({ name: 'AUDIT_KEY_FILE', default: 'required without AUDIT_KEY', meaning: `File holding that key (\`npm start\` creates ${DEV_AUDIT_KEY_FILE}).` }),
  ...METRICS_SETTINGS,
  maxMarks: intSetting({ name: 'AUDIT_MAX_MARKS', default: 3000, min: 1, max: 4000, meaning: 'Workspaces whose last event id the checkpoint keeps.' }),
  // Each checkpoint writes the marks (up to ~200 KB) into the lease's state slot: one per read of every
  // shard would be the lease table's largest cost (infra/aws/cost/model.ts).
  checkpointIntervalMs: intSetting({ name: 'AUDIT_CHECKPOINT_INTERVAL_MS', default: 5000, min: 0, max: 60_000, meaning: "Least time between two checkpoints of a shard (writing the marks into its lease's state slot); a new holder folds the segments written since. 0: after every batch." }),
};

/** Where audit reads the erased-subjects list, and how long it trusts an answer (it unwraps no key: no KMS). */
const ERASED_SUBJECT_SETTINGS = { erasedTable: SUBJECT_KEY_SETTINGS.table, erasedTtlMs: SUBJECT_KEY_SETTINGS.cacheTtlMs };

/** What `taskflow audit --help` and audit/README.md list: every variable the audit service reads. */
export const AUDIT_SETTING_LIST = uniqueSettings(AUDIT_SETTINGS, ERASED_SUBJECT_SETTINGS, CONSUMER_SETTINGS, AWS_SETTINGS, DEV_MODE_SETTINGS, LOG_SETTINGS);

/** AUDIT_KEY (at least 32 characters) or AUDIT_KEY_FILE: the per-environment secret. */
export function loadAuditKey(env: Env): Uint8Array {
  const inline = AUDIT_SETTINGS.key.read(env);
  const file = AUDIT_SETTINGS.keyFile.read(env);
  let key: string;
  if (inline !== undefined) key = inline;
  else if (file !== undefined) {
    // The dev key sits in a checkout, readable by whoever has it: a trail keyed with it proves nothing.
    if (isDevAuditKeyFile(file) && !isDevelopment(env)) {
      throw new ConfigError('AUDIT_KEY_FILE', `${file} is the development audit key (created by \`taskflow dev\`), used only in development mode (TASKFLOW_ENV=development); production sets AUDIT_KEY from its secret store`);
    }
    try {
      key = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new ConfigError('AUDIT_KEY_FILE', `cannot read ${file}: ${(err as Error).message}`);
    }
  } else throw new ConfigError('AUDIT_KEY', 'AUDIT_KEY or AUDIT_KEY_FILE must be set (the key of the audit pseudonyms)');
  if (key.length < MIN_KEY_CHARS) throw new ConfigError(inline !== undefined ? 'AUDIT_KEY' : 'AUDIT_KEY_FILE', `the key must be at least ${MIN_KEY_CHARS} characters`);
  return new TextEncoder().encode(key);
}

function isDevAuditKeyFile(path: string): boolean {
  return resolve(path).endsWith(sep + DEV_AUDIT_KEY_FILE.split('/').join(sep));
}

/** AUDIT_STORE_DIR, else `<S3_DIR>/taskflow-audit` (the local stack's S3 folder). */
export function auditStoreDir(env: Env): string {
  const dir = AUDIT_SETTINGS.storeDir.read(env);
  if (dir) return dir;
  const s3 = AUDIT_SETTINGS.s3Dir.read(env);
  if (s3) return join(s3, 'taskflow-audit');
  throw new ConfigError('AUDIT_STORE_DIR', 'AUDIT_STORE_DIR (or S3_DIR) must be set: where the audit segments are written');
}

/** AUDIT_STORE and what it needs: the folder, or the two buckets and the retention. */
export function loadAuditStoreConfig(env: Env): AuditStoreConfig {
  if (AUDIT_SETTINGS.store.read(env) === 'file') return { kind: 'file', dir: auditStoreDir(env) };
  const lockedBucket = AUDIT_SETTINGS.bucket.read(env);
  const mutableBucket = AUDIT_SETTINGS.identityBucket.read(env);
  if (!lockedBucket) throw new ConfigError('AUDIT_BUCKET', 'is required with AUDIT_STORE=s3 (the bucket with Object Lock)');
  if (!mutableBucket) throw new ConfigError('AUDIT_IDENTITY_BUCKET', 'is required with AUDIT_STORE=s3 (the identity mapping, deleted by erasure)');
  if (mutableBucket === lockedBucket) throw new ConfigError('AUDIT_IDENTITY_BUCKET', 'must not be AUDIT_BUCKET: erasure deletes identity mappings, which Object Lock would forbid');
  return { kind: 's3', lockedBucket, mutableBucket, retentionDays: AUDIT_SETTINGS.retentionDays.read(env) };
}

export function loadConfig(env: Env): AuditConfig {
  const s = readSettings(env, { consumerName: AUDIT_SETTINGS.consumerName, dlqTable: AUDIT_SETTINGS.dlqTable, metricsPort: AUDIT_SETTINGS.metricsPort, metricsHost: AUDIT_SETTINGS.metricsHost, maxMarks: AUDIT_SETTINGS.maxMarks, checkpointIntervalMs: AUDIT_SETTINGS.checkpointIntervalMs, ...ERASED_SUBJECT_SETTINGS });
  return {
    aws: loadAwsConfig(env),
    consumer: loadConsumerConfig(env),
    consumerName: s.consumerName,
    dlqTable: s.dlqTable,
    store: loadAuditStoreConfig(env),
    key: loadAuditKey(env),
    metricsPort: s.metricsPort,
    metricsHost: s.metricsHost,
    maxMarks: s.maxMarks,
    checkpointIntervalMs: s.checkpointIntervalMs,
    erasedSubjects: { table: s.erasedTable, ttlMs: s.erasedTtlMs },
  };
}
