// `taskflow replay search` rebuilds a dropped index: Postgres → capture → Kinesis feeds the live
// search service (index A) under a workload with a TRUNCATE in it; then `taskflow replay search
// --from <before the workload>` (its own process, interrupted once and run again: it resumes) fills
// a new, empty index B from the stream's retention. B equals A, document for document, and knows
// the same memberships.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type RunningCapture } from '../../capture/main.js';
import { runWorkload, workloadTenantIds } from '../../db/workload.js';
import { createLogger } from '../../lib/logger.js';
import type { ReplayProgress } from '../../lib/replay.js';
import { loadConfig } from '../../search/config.js';
import { type RunningSearch, startSearch } from '../../search/service.js';
import { SqliteSearchIndex } from '../../search/sqlite-index.js';
import { startTestCapture } from '../support/capture.js';
import { captureDatabaseUrl, createTestDatabase, createTestStream, createTestTables, testStackEnv, uniqueName } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

const WORKLOAD = { workspaces: 3, projectsPerWorkspace: 2, seed: 'replay-it' } as const;
const dir = mkdtempSync(join(tmpdir(), 'replay-it-'));
const liveIndex = join(dir, 'live', 'search.db');
const rebuiltIndex = join(dir, 'rebuilt', 'search.db');
const progressFile = join(dir, 'replay-search.json');

let env: Record<string, string>;
let db: pg.Client;
let capture: RunningCapture;
let search: RunningSearch;
let sourceDatabaseUrl: string;
const startedAt = new Date(Date.now() - 1000);

beforeAll(async () => {
  sourceDatabaseUrl = await createTestDatabase('replay_it');
  const [stream, tables] = await Promise.all([createTestStream('replay-it', 2), createTestTables('replay-it', ['leases', 'dlq', 'checkpoints'])]);
  env = {
    ...testStackEnv(),
    DATABASE_URL: captureDatabaseUrl(sourceDatabaseUrl),
    CHANGE_STREAM_NAME: stream,
    DYNAMODB_TABLE_LEASES: tables.leases!,
    DYNAMODB_TABLE_DLQ: tables.dlq!,
    DYNAMODB_TABLE_CHECKPOINTS: tables.checkpoints!,
    CAPTURE_SLOT: uniqueName('replay_it'),
    CAPTURE_ACK_INTERVAL_MS: '100',
    SEARCH_DB_PATH: liveIndex,
    SEARCH_PORT: '0',
    METRICS_PORT: '0',
    JWT_SECRET: `replay-it-${randomUUID()}`,
    KINESIS_POLL_INTERVAL_MS: '50',
    KINESIS_MIN_CALL_SPACING_MS: '0',
    KINESIS_FAILOVER_MS: '2000',
    KINESIS_WORKER_ID: 'search-0',
  };
  db = new pg.Client({ connectionString: sourceDatabaseUrl });
  await db.connect();
  capture = await startTestCapture(env, createLogger('replay-it-capture', 'silent'));
  search = await startSearch(loadConfig(env), createLogger('replay-it-search', 'silent'));
}, 120_000);

afterAll(async () => {
  await search?.stop('abandon').catch(() => undefined);
  await capture?.close().catch(() => undefined);
  await db?.end();
  rmSync(dir, { recursive: true, force: true });
});

async function documentsOf(path: string, workspaces: readonly string[]) {
  const index = new SqliteSearchIndex(path);
  try {
    return await Promise.all(workspaces.map(async (w) => ({ w, docs: await index.documents(w) })));
  } finally {
    await index.close();
  }
}

async function membershipsOf(path: string, users: readonly string[]) {
  const index = new SqliteSearchIndex(path);
  try {
    return await Promise.all(users.map(async (u) => ({ u, memberships: (await index.memberships(u)).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))) })));
  } finally {
    await index.close();
  }
}

/** `taskflow replay search …` as an operator runs it; resolves with its exit code and stderr. */
function replayProcess(args: string[], onStarted?: (child: ReturnType<typeof spawn>) => void): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['bin/taskflow.js', 'replay', 'search', ...args], { env: { ...process.env, ...env, SEARCH_DB_PATH: rebuiltIndex, NODE_OPTIONS: '', LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  onStarted?.(child);
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stderr })));
}

describe('taskflow replay', () => {
  it('rebuilds a dropped search index from the stream, equal to the one built live, resuming after an interruption', async () => {
    const tenants = workloadTenantIds(WORKLOAD);
    const workspaces = tenants.workspaces.map((w) => w.id);
    const stats = await runWorkload({ databaseUrl: sourceDatabaseUrl, ratePerSec: 200, transactions: 600, concurrency: 3, ...WORKLOAD });
    expect(stats.committedTransactions).toBe(600);
    // A truncate (workspace "*", its own shard) in the history, and comments after it.
    await db.query('TRUNCATE comments');
    const sentinels = await Promise.all(
      tenants.workspaces.map(async (w) => {
        const project = w.projects[0]!;
        const id = randomUUID();
        await db.query(`INSERT INTO tasks (id, workspace_id, project_id, title) VALUES ($1, $2, $3, 'replay sentinel')`, [id, w.id, project]);
        return id;
      }),
    );
    // The live index has everything: each workspace's last change, and no comment left from before the truncate.
    await waitFor(
      async () => {
        const docs = (await documentsOf(liveIndex, workspaces)).flatMap((d) => d.docs);
        return sentinels.every((s) => docs.some((d) => d.id === s)) && docs.every((d) => d.table === 'tasks');
      },
      () => 'the live index to have the sentinels and the truncate',
      60_000,
    );
    const live = await documentsOf(liveIndex, workspaces);
    expect(live.flatMap((d) => d.docs).length).toBeGreaterThan(50);

    // Rebuild into an empty index: stopped once as soon as it has made progress, then run again.
    const first = await replayProcess(['--from', startedAt.toISOString(), '--progress', progressFile], (child) => {
      void waitFor(() => existsSync(progressFile), () => 'the replay to save progress', 30_000).then(() => child.kill('SIGINT'));
    });
    expect({ code: first.code, stderr: first.stderr }).toEqual({ code: first.code === 0 ? 0 : 130, stderr: expect.any(String) });
    const second = await replayProcess(['--from', startedAt.toISOString(), '--progress', progressFile]);
    expect({ code: second.code, stderr: second.stderr }).toEqual({ code: 0, stderr: expect.stringMatching(first.code === 130 ? /resuming the replay/ : /done already/) });
    const progress = JSON.parse(readFileSync(progressFile, 'utf8')) as ReplayProgress;
    expect(progress).toMatchObject({ consumer: 'search', done: true, archive: { done: true } });
    expect(Object.values(progress.shards).every((s) => s.done)).toBe(true);

    expect(await documentsOf(rebuiltIndex, workspaces)).toEqual(live);
    const users = [...new Set(tenants.workspaces.flatMap((w) => w.users))];
    expect(users.length).toBeGreaterThan(0);
    expect(await membershipsOf(rebuiltIndex, users)).toEqual(await membershipsOf(liveIndex, users));
    console.log(`replay: ${live.flatMap((d) => d.docs).length} documents rebuilt equal to the live index (${progress.events} events replayed; first run exited ${first.code})`);
  }, 150_000);
});
