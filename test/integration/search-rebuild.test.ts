// `taskflow replay search --rebuild` on the OpenSearch adapter (against the recording HTTP fake,
// test/support/opensearch-fake.ts): Postgres → capture → Kinesis feeds the live search service,
// which writes through the alias; the rebuild (its own process) replays the stream into a new
// index while the live service keeps writing the alias, moves the alias there in one `_aliases`
// request (remove + add), keeps the old index (--keep-old), and catches up. Through the alias the
// rebuilt index then equals the one built live, document for document.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type RunningCapture } from '../../capture/main.js';
import { runWorkload, workloadTenantIds } from '../../db/workload.js';
import { createLogger } from '../../lib/logger.js';
import { loadConfig } from '../../search/config.js';
import { OpenSearchIndex } from '../../search/opensearch-index.js';
import { type RunningSearch, startSearch } from '../../search/service.js';
import { startTestCapture } from '../support/capture.js';
import { startOpenSearchFake, type OpenSearchFake } from '../support/opensearch-fake.js';
import { captureDatabaseUrl, createTestDatabase, createTestStream, createTestTables, testStackEnv, uniqueName } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

const WORKLOAD = { workspaces: 2, projectsPerWorkspace: 2, seed: 'search-rebuild-it' } as const;
const dir = mkdtempSync(join(tmpdir(), 'search-rebuild-it-'));
const alias = uniqueName('search-rebuild-it', 60, '-').toLowerCase();

let fake: OpenSearchFake;
let env: Record<string, string>;
let db: pg.Client;
let capture: RunningCapture;
let search: RunningSearch;
let sourceDatabaseUrl: string;
const startedAt = new Date(Date.now() - 1000);

beforeAll(async () => {
  fake = await startOpenSearchFake();
  sourceDatabaseUrl = await createTestDatabase('search_rebuild_it');
  const [stream, tables] = await Promise.all([createTestStream('search-rebuild-it', 2), createTestTables('search-rebuild-it', ['leases', 'dlq', 'checkpoints'])]);
  env = {
    ...testStackEnv(),
    DATABASE_URL: captureDatabaseUrl(sourceDatabaseUrl),
    CHANGE_STREAM_NAME: stream,
    DYNAMODB_TABLE_LEASES: tables.leases!,
    DYNAMODB_TABLE_DLQ: tables.dlq!,
    DYNAMODB_TABLE_CHECKPOINTS: tables.checkpoints!,
    CAPTURE_SLOT: uniqueName('search_rebuild_it'),
    CAPTURE_ACK_INTERVAL_MS: '100',
    SEARCH_ENGINE: 'opensearch',
    OPENSEARCH_URL: fake.url,
    OPENSEARCH_ALIAS: alias,
    SEARCH_PORT: '0',
    METRICS_PORT: '0',
    JWT_SECRET: `search-rebuild-it-${randomUUID()}`,
    KINESIS_POLL_INTERVAL_MS: '50',
    KINESIS_MIN_CALL_SPACING_MS: '0',
    KINESIS_WORKER_ID: 'search-0',
  };
  db = new pg.Client({ connectionString: sourceDatabaseUrl });
  await db.connect();
  capture = await startTestCapture(env, createLogger('search-rebuild-it-capture', 'silent'));
  search = await startSearch(loadConfig(env), createLogger('search-rebuild-it-search', 'silent'));
}, 120_000);

afterAll(async () => {
  await search?.stop('abandon').catch(() => undefined);
  await capture?.close().catch(() => undefined);
  await db?.end();
  await fake?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Every workspace's documents as `name` (the alias, or one concrete index) holds them. */
async function documentsOf(name: string, workspaces: readonly string[]) {
  const index = await OpenSearchIndex.open({ node: fake.url, alias: name });
  try {
    return await Promise.all(workspaces.map(async (w) => ({ w, docs: await index.documents(w) })));
  } finally {
    await index.close();
  }
}

function rebuildProcess(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['bin/taskflow.js', 'replay', 'search', ...args], { env: { ...process.env, ...env, NODE_OPTIONS: '', LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  // A hung rebuild fails the test with what it printed, not with the test's timeout.
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  return new Promise((resolve) => child.once('exit', (code) => (clearTimeout(timer), resolve({ code, stderr }))));
}

describe('taskflow replay search --rebuild', () => {
  it('replays into a new index while the live service writes the alias, swaps the alias atomically, keeps the old index, and equals the live one', async () => {
    const workspaces = workloadTenantIds(WORKLOAD).workspaces;
    const stats = await runWorkload({ databaseUrl: sourceDatabaseUrl, ratePerSec: 200, transactions: 300, concurrency: 3, ...WORKLOAD });
    expect(stats.committedTransactions).toBe(300);
    const sentinels: string[] = await Promise.all(
      workspaces.map(async (w) => {
        const id = randomUUID();
        await db.query(`INSERT INTO tasks (id, workspace_id, project_id, title) VALUES ($1, $2, $3, 'rebuild sentinel')`, [id, w.id, w.projects[0]]);
        return id;
      }),
    );
    const ids = workspaces.map((w) => w.id);
    await waitFor(async () => (await documentsOf(alias, ids)).flatMap((d) => d.docs).filter((d) => sentinels.includes(d.id)).length === sentinels.length, 'the live index to have the sentinels', 60_000);
    const live = await documentsOf(alias, ids);
    expect(live.flatMap((d) => d.docs).length).toBeGreaterThan(30);
    const [before] = fake.aliases.get(alias)!;

    const since = fake.requests.length;
    const run = await rebuildProcess(['--rebuild', '--keep-old', '--from', startedAt.toISOString(), '--progress', join(dir, 'replay-search.json')]);
    expect(run).toEqual({ code: 0, stderr: expect.stringMatching(/rebuilding into the new index[\s\S]*alias moved to[\s\S]*rebuild done/) });
    const [after, ...more] = fake.aliases.get(alias)!;
    expect(more).toEqual([]);
    expect(after).not.toBe(before);
    expect(fake.indices.has(before!)).toBe(true);

    // Over the wire: the new index created, the replay's writes into it, then one atomic swap, and no delete.
    const wire = fake.requests.slice(since);
    const created = wire.findIndex((r) => r.method === 'PUT' && r.path === `/${after}`);
    const swap = wire.findIndex((r) => r.path === '/_aliases');
    expect(created).toBeGreaterThanOrEqual(0);
    expect(swap).toBeGreaterThan(created);
    expect(wire[swap]!.body).toEqual({ actions: [{ remove: { index: before, alias } }, { add: { index: after, alias } }] });
    const rebuildWrites = wire.slice(created, swap).filter((r) => r.path === '/_bulk' && (r.body as { index?: { _index: string } }[]).some((l) => l.index?._index === after));
    expect(rebuildWrites.length).toBeGreaterThan(0);
    expect(wire.some((r) => r.method === 'DELETE')).toBe(false);

    expect(await documentsOf(alias, ids)).toEqual(live);
    expect(await documentsOf(before!, ids)).toEqual(live);
    // Run again: done already, nothing moves.
    expect(await rebuildProcess(['--rebuild', '--keep-old', '--from', startedAt.toISOString(), '--progress', join(dir, 'replay-search.json')])).toEqual({ code: 0, stderr: expect.stringMatching(/done already/) });
  }, 180_000);
});
