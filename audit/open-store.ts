// The audit store AUDIT_STORE names: the folder locally, S3 with Object Lock in production.
import { type AwsConfig, createS3Client } from '../lib/aws.js';
import type { AuditStoreConfig } from './config.js';
import { S3AuditStore } from './s3-store.js';
import { type AuditStore, FileAuditStore } from './store.js';

export function openAuditStore(config: AuditStoreConfig, aws: AwsConfig): AuditStore {
  if (config.kind === 'file') return new FileAuditStore(config.dir);
  return new S3AuditStore(createS3Client(aws), config);
}

/** Where the store is, for log lines. */
export function describeAuditStore(config: AuditStoreConfig): string {
  return config.kind === 'file' ? config.dir : `s3://${config.lockedBucket} (Object Lock, ${config.retentionDays} days) + s3://${config.mutableBucket}`;
}
