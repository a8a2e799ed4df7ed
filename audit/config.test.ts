import { describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEV_AUDIT_KEY_FILE, loadAuditKey } from './config.js';

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
