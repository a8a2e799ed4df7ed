// The audit service's configuration, read once from the environment (lib/config.ts fails fast
// naming the bad variable).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type AwsConfig, loadAwsConfig } from '../lib/aws.js';
import { type Env, int, optionalStr, str, tableEnvVar } from '../lib/config.js';
import { ConfigError } from '../lib/errors.js';
import { type ConsumerEnvConfig, loadConsumerConfig } from '../lib/kinesis-consumer/index.js';

/** `taskflow dev`'s audit key, created on first use beside its JWT secret; production takes AUDIT_KEY from its secret store. */
export const DEV_AUDIT_KEY_FILE = '.taskflow/dev-audit-key';

export interface AuditConfig {
  aws: AwsConfig;
  consumer: ConsumerEnvConfig;
  consumerName: string;
  dlqTable: string;
  /** Folder of the filesystem store (locally under the stack's S3 folder). */
  storeDir: string;
  /** Key of the pseudonyms and row digests (HMAC-SHA256), per environment. */
  key: Uint8Array;
  metricsPort: number;
  /** Workspaces whose last event id the checkpoint keeps. */
  maxMarks: number;
}

/** AUDIT_KEY (at least 32 characters) or AUDIT_KEY_FILE: the per-environment secret. */
export function loadAuditKey(env: Env): Uint8Array {
  const inline = optionalStr(env, 'AUDIT_KEY');
  const file = optionalStr(env, 'AUDIT_KEY_FILE');
  let key: string;
  if (inline !== undefined) key = inline;
  else if (file !== undefined) {
    try {
      key = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new ConfigError('AUDIT_KEY_FILE', `cannot read ${file}: ${(err as Error).message}`);
    }
  } else throw new ConfigError('AUDIT_KEY', 'AUDIT_KEY or AUDIT_KEY_FILE must be set (the key of the audit pseudonyms)');
  if (key.length < 32) throw new ConfigError(inline !== undefined ? 'AUDIT_KEY' : 'AUDIT_KEY_FILE', 'the key must be at least 32 characters');
  return new TextEncoder().encode(key);
}

/** AUDIT_STORE_DIR, else `<S3_DIR>/taskflow-audit` (the local stack's S3 folder). */
export function auditStoreDir(env: Env): string {
  const dir = optionalStr(env, 'AUDIT_STORE_DIR');
  if (dir) return dir;
  const s3 = optionalStr(env, 'S3_DIR');
  if (s3) return join(s3, 'taskflow-audit');
  throw new ConfigError('AUDIT_STORE_DIR', 'AUDIT_STORE_DIR (or S3_DIR) must be set: where the audit segments are written');
}

export function loadConfig(env: Env): AuditConfig {
  return {
    aws: loadAwsConfig(env),
    consumer: loadConsumerConfig(env),
    consumerName: str(env, 'AUDIT_CONSUMER_NAME', 'audit'),
    dlqTable: str(env, tableEnvVar('dlq'), 'taskflow-dlq'),
    storeDir: auditStoreDir(env),
    key: loadAuditKey(env),
    metricsPort: int(env, 'METRICS_PORT', 0, { min: 0, max: 65535 }),
    maxMarks: int(env, 'AUDIT_MAX_MARKS', 3000, { min: 1, max: 4000 }),
  };
}
