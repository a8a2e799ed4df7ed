// Services started as in production (no TASKFLOW_ENV): what exists only for development is a
// start-up error naming the setting, never a silent fallback.
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function taskflow(args: string[], env: Record<string, string>): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'taskflow.js'), ...args], {
    cwd: mkdtempSync(join(tmpdir(), 'prod-mode-')),
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', AWS_REGION: 'us-east-1', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: r.status, stderr: r.stderr };
}

describe('production start-up', () => {
  it('the router without JWT_JWKS_URL or JWT_SECRET exits naming JWT_JWKS_URL and writes no secret file', () => {
    const secretFile = join(mkdtempSync(join(tmpdir(), 'prod-mode-')), 'dev-jwt-secret');
    const r = taskflow(['router'], { CHANGE_STREAM_NAME: 'changes', JWT_SECRET_FILE: secretFile });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/CONFIG_INVALID: JWT_JWKS_URL: is required/);
    expect(existsSync(secretFile)).toBe(false);
  });

  it('the demo board refuses to start and says it is development only', () => {
    const r = taskflow(['board'], { DATABASE_URL: 'postgres://127.0.0.1:1/none', MQTT_WS_URL: 'ws://127.0.0.1:1/mqtt', REPLAY_URL: 'http://127.0.0.1:1', JWT_SECRET: 'x'.repeat(32) });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/DEVELOPMENT_ONLY: the demo board .*exists only in development mode \(TASKFLOW_ENV=development/);
  });
});
