import { describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEV_AUDIT_KEY_FILE, loadAuditKey, loadAuditStoreConfig } from './config.js';

const KEY = 'k'.repeat(40);

function keyFileAt(relative: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'audit-key-')), relative);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, `${KEY}\n`);
  return path;
}

describe('the audit key', () => {
  it("refuses taskflow dev's key file outside development mode, naming the setting", () => {
    const devFile = keyFileAt(DEV_AUDIT_KEY_FILE);
    expect(() => loadAuditKey({ AUDIT_KEY_FILE: devFile })).toThrow(/AUDIT_KEY_FILE.*development audit key.*AUDIT_KEY/s);
    expect(() => loadAuditKey({ AUDIT_KEY_FILE: devFile, TASKFLOW_ENV: 'production' })).toThrow(/development mode/);
    expect(loadAuditKey({ AUDIT_KEY_FILE: devFile, TASKFLOW_ENV: 'development' })).toEqual(new TextEncoder().encode(KEY));
  });

  it('takes a key from the secret store (AUDIT_KEY or a mounted file) in production', () => {
    expect(loadAuditKey({ AUDIT_KEY: KEY })).toEqual(new TextEncoder().encode(KEY));
    expect(loadAuditKey({ AUDIT_KEY_FILE: keyFileAt('secrets/audit-key') })).toEqual(new TextEncoder().encode(KEY));
  });

  it('refuses a missing or short key', () => {
    expect(() => loadAuditKey({})).toThrow(/AUDIT_KEY/);
    expect(() => loadAuditKey({ AUDIT_KEY: 'short' })).toThrow(/at least 32/);
  });
});

describe('the audit store setting', () => {
  it('is a folder by default and S3 with two distinct buckets with AUDIT_STORE=s3', () => {
    expect(loadAuditStoreConfig({ AUDIT_STORE_DIR: '/data/audit' })).toEqual({ kind: 'file', dir: '/data/audit' });
    const s3 = { AUDIT_STORE: 's3', AUDIT_BUCKET: 'locked', AUDIT_IDENTITY_BUCKET: 'identities' };
    expect(loadAuditStoreConfig(s3)).toEqual({ kind: 's3', lockedBucket: 'locked', mutableBucket: 'identities', retentionDays: 400 });
    expect(loadAuditStoreConfig({ ...s3, AUDIT_RETENTION_DAYS: '30' })).toMatchObject({ retentionDays: 30 });
    expect(() => loadAuditStoreConfig({ AUDIT_STORE: 's3', AUDIT_IDENTITY_BUCKET: 'identities' })).toThrow(/AUDIT_BUCKET/);
    expect(() => loadAuditStoreConfig({ AUDIT_STORE: 's3', AUDIT_BUCKET: 'locked' })).toThrow(/AUDIT_IDENTITY_BUCKET/);
    expect(() => loadAuditStoreConfig({ ...s3, AUDIT_IDENTITY_BUCKET: 'locked' })).toThrow(/must not be AUDIT_BUCKET/);
    expect(() => loadAuditStoreConfig({ ...s3, AUDIT_RETENTION_DAYS: '0' })).toThrow(/AUDIT_RETENTION_DAYS/);
    expect(() => loadAuditStoreConfig({ AUDIT_STORE: 'tape' })).toThrow(/AUDIT_STORE/);
  });
});
