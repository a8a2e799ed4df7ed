// `taskflow dev` as a developer runs it: a first start builds and seeds a new data directory,
// a second start reuses it, Ctrl-C (SIGINT to the process group) stops everything and removes
// the state file, and no process of the run is left behind.
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { StackInfo } from '../../lib/stack-info.js';
import { waitFor } from '../../test/support/wait.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

/** Pids of processes whose command line mentions `needle`. */
function processesMentioning(needle: string): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle);
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function devRun(dataDir: string, stateFile: string): Promise<{ output: string; info: StackInfo }> {
  const child = spawn(process.execPath, ['bin/taskflow.js', 'dev', '--free-ports', '--data-dir', dataDir, '--state-file', stateFile], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const started = Date.now();
  const left = () => Math.max(0, 90_000 - (Date.now() - started)); // one budget for the three waits
  await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`taskflow dev exited (${child.exitCode}):\n${output}`);
      return output.includes('Ctrl-C stops everything');
    },
    () => `taskflow dev to become ready:\n${output}`,
    left(),
    100,
  );
  const info = JSON.parse(readFileSync(stateFile, 'utf8')) as StackInfo;
  // The services start alongside the seed: wait for search's and notifications' APIs before stopping.
  for (const service of ['search', 'notifications'] as const) {
    await waitFor(() => fetch(`${info.http[service]}/healthz`).then((r) => r.ok, () => false), () => `${service} to start:\n${output}`, left(), 200);
  }
  process.kill(-child.pid!, 'SIGINT');
  expect(await exited).toBe(0);
  return { output, info };
}

describe('taskflow dev', () => {
  it('starts, seeds, stops on Ctrl-C, and reuses its data directory on the next start', async () => {
    const dataDir = mkdtempSync(join('/var/tmp', 'taskflow-devtest-'));
    const stateFile = join(mkdtempSync(join(tmpdir(), 'taskflow-devtest-state-')), 'stack.json');
    try {
      const first = await devRun(dataDir, stateFile);
      expect(first.output).toMatch(/database +new; migrations applied now: 0001_core\.sql.*; demo rows inserted: [1-9]\d*/);
      expect(first.info.postgres.url).toMatch(/^postgres:\/\//);
      // Search runs with the rest; its index is a file under the data dir, kept for the next start.
      expect(first.output).toMatch(/services +.*\bsearch\b/);
      expect(first.info.http.search).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(first.output).toMatch(/services +.*\bnotifications\b/);
      expect(first.info.http.notifications).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(existsSync(join(dataDir, 'search', 'search.db'))).toBe(true);
      expect(existsSync(stateFile)).toBe(false);

      const second = await devRun(dataDir, stateFile);
      expect(second.output).toMatch(/database +reused; migrations applied now: none; demo rows inserted: 0/);
      expect(second.output).toContain('taskflow dev stopped');
      expect(processesMentioning(dataDir)).toEqual([]);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(join(stateFile, '..'), { recursive: true, force: true });
    }
  }, 240_000);
});
