// `taskflow stack` never leaves engines behind: it stops when whoever started it dies, and its
// Postgres dies with it even when the stack process itself is SIGKILLed.
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { StackInfo } from '../../lib/stack-info.js';
import { waitFor } from '../../test/support/wait.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

/** Alive and not a zombie waiting to be reaped. */
function isAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Starts `taskflow stack --ephemeral` under a shell (its parent); returns pids and the stack info. */
async function stackUnderShell(): Promise<{ shellPid: number; stackPid: number; postmasterPid: number; info: StackInfo; cleanup(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'taskflow-lifecycle-'));
  const stateFile = join(dir, 'stack.json');
  const shell = spawn('sh', ['-c', `"${process.execPath}" bin/taskflow.js stack --ephemeral --state-file "${stateFile}" > "${dir}/log" 2>&1 & echo $!; wait`], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'ignore'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  const stackPid = await new Promise<number>((r) => shell.stdout.once('data', (d: Buffer) => r(Number(d.toString().trim()))));
  await waitFor(() => existsSync(stateFile) || !isAlive(stackPid), 'the state file', 60_000);
  if (!existsSync(stateFile)) throw new Error(`stack did not start:\n${readFileSync(join(dir, 'log'), 'utf8')}`);
  const info = JSON.parse(readFileSync(stateFile, 'utf8')) as StackInfo;
  const postmasterPid = Number(readFileSync(join(info.postgres.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  return { shellPid: shell.pid!, stackPid, postmasterPid, info, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

describe('taskflow stack lifecycle', () => {
  it('stops cleanly (Postgres included, data deleted) when its parent process dies', async () => {
    const s = await stackUnderShell();
    try {
      expect(isAlive(s.postmasterPid)).toBe(true);
      process.kill(s.shellPid, 'SIGKILL');
      await waitFor(() => !isAlive(s.stackPid), 'the stack to exit');
      expect(isAlive(s.postmasterPid)).toBe(false);
      expect(existsSync(s.info.dataDir)).toBe(false);
    } finally {
      s.cleanup();
    }
  });

  it('takes Postgres down with it when the stack process itself is SIGKILLed', async () => {
    const s = await stackUnderShell();
    try {
      process.kill(s.stackPid, 'SIGKILL');
      await waitFor(() => !isAlive(s.postmasterPid), 'postgres to exit', 15_000);
    } finally {
      if (isAlive(s.shellPid)) process.kill(s.shellPid, 'SIGKILL');
      rmSync(s.info.dataDir, { recursive: true, force: true });
      s.cleanup();
    }
  });
});
