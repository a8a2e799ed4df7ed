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
// Each test's waits (start-up 60 s, then the exit) add up past jest's 60 s default on a loaded host.
const TEST_TIMEOUT_MS = 180_000;

/** Alive and not a zombie waiting to be reaped. */
function isAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

interface ShellStarted {
  shellPid: number;
  stackPid: number;
  stateFile: string;
  log(): string;
  cleanup(): void;
}

/** Starts `taskflow stack --ephemeral` under a shell (its parent); returns as soon as the stack's pid is known. */
async function spawnUnderShell(): Promise<ShellStarted> {
  const dir = mkdtempSync(join(tmpdir(), 'taskflow-lifecycle-'));
  const stateFile = join(dir, 'stack.json');
  const shell = spawn('sh', ['-c', `"${process.execPath}" bin/taskflow.js stack --ephemeral --state-file "${stateFile}" > "${dir}/log" 2>&1 & echo $!; wait`], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'ignore'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  const stackPid = await new Promise<number>((r) => shell.stdout.once('data', (d: Buffer) => r(Number(d.toString().trim()))));
  const log = (): string => (existsSync(join(dir, 'log')) ? readFileSync(join(dir, 'log'), 'utf8') : '(no log)');
  return { shellPid: shell.pid!, stackPid, stateFile, log, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** As spawnUnderShell, then waits until the stack is up; adds its Postgres pid and the stack info. */
async function stackUnderShell(): Promise<ShellStarted & { postmasterPid: number; info: StackInfo }> {
  const s = await spawnUnderShell();
  await waitFor(() => existsSync(s.stateFile) || !isAlive(s.stackPid), 'the state file', 60_000);
  if (!existsSync(s.stateFile)) throw new Error(`stack did not start:\n${s.log()}`);
  const info = JSON.parse(readFileSync(s.stateFile, 'utf8')) as StackInfo;
  const postmasterPid = Number(readFileSync(join(info.postgres.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  return { ...s, postmasterPid, info };
}

describe('taskflow stack lifecycle', () => {
  it('stops cleanly (Postgres included, data deleted) when its parent process dies', async () => {
    const s = await stackUnderShell();
    try {
      expect(isAlive(s.postmasterPid)).toBe(true);
      process.kill(s.shellPid, 'SIGKILL');
      await waitFor(() => !isAlive(s.stackPid), () => `the stack to exit; its log:\n${s.log()}`);
      expect(isAlive(s.postmasterPid)).toBe(false);
      expect(existsSync(s.info.dataDir)).toBe(false);
    } finally {
      s.cleanup();
    }
  }, TEST_TIMEOUT_MS);

  // The stack once read its parent's pid only after the engines were up, so a parent that died
  // during start-up went unnoticed and the engines ran on, orphaned, for good.
  it('stops when its parent dies while the engines are still starting', async () => {
    const s = await spawnUnderShell();
    try {
      await waitFor(() => s.log().includes('taskflow stack starting'), () => `the stack to start starting; its log:\n${s.log()}`, 60_000);
      process.kill(s.shellPid, 'SIGKILL');
      await waitFor(() => !isAlive(s.stackPid), () => `the stack to exit; its log:\n${s.log()}`, 90_000);
      expect(s.log()).toMatch(/stopping \(parent process \d+ exited\)/);
    } finally {
      if (isAlive(s.stackPid)) process.kill(s.stackPid, 'SIGKILL');
      s.cleanup();
    }
  }, TEST_TIMEOUT_MS);

  it('takes Postgres down with it when the stack process itself is SIGKILLed', async () => {
    const s = await stackUnderShell();
    try {
      process.kill(s.stackPid, 'SIGKILL');
      await waitFor(() => !isAlive(s.postmasterPid), () => `postgres to exit; the stack's log:\n${s.log()}`, 15_000);
    } finally {
      if (isAlive(s.shellPid)) process.kill(s.shellPid, 'SIGKILL');
      rmSync(s.info.dataDir, { recursive: true, force: true });
      s.cleanup();
    }
  }, TEST_TIMEOUT_MS);
});
