// `taskflow capture snapshot --for search` against the real engines: rows that existed before
// capture ran reach the search index through a snapshot aimed at search alone, while the router
// (a live SDK subscriber, its changelog), and notifications (inbox, watchers) skip every one of
// its events. A live change committed after the snapshot is the fence: once each reader has it,
// it has read (and skipped) the snapshot before it on the same shard.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createClient, type Change, type RealtimeClient, type Status } from '@taskflow/realtime';
import { setupWorkloadTenants, type WorkloadTenants } from '../../db/workload.js';
import { createDynamoClient } from '../../lib/aws.js';
import { createLogger } from '../../lib/logger.js';
import { loadConfig as loadNotificationsConfig } from '../../notifications/config.js';
import { type RunningNotifications, startNotifications } from '../../notifications/service.js';
import { DynamoWatcherStore } from '../../notifications/watchers.js';
import { loadConfig as loadSearchConfig } from '../../search/config.js';
import { type RunningSearch, startSearch } from '../../search/service.js';
import { SqliteSearchIndex } from '../../search/sqlite-index.js';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { awsConfig } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'snapshot-for-'));
const SEED = `snapshot-for-${randomUUID()}`;
const logger = createLogger('snapshot-for-it', 'silent');

let pipeline: TestPipeline;
let tenants: WorkloadTenants;
let search: RunningSearch;
let notifications: RunningNotifications;
let client: RealtimeClient | undefined;

beforeAll(async () => {
  pipeline = await startTestPipeline({
    prefix: 'snapshot-for',
    serviceUsers: ['service:notifications'],
    env: { SEARCH_DB_PATH: join(dir, 'search.db'), SEARCH_PORT: '0', NOTIFICATIONS_PORT: '0', KINESIS_POLL_INTERVAL_MS: '50', KINESIS_MIN_CALL_SPACING_MS: '0' },
    // Rows from before capture ran: only a snapshot brings them to the stream.
    beforeCapture: async (databaseUrl) => void (tenants = await setupWorkloadTenants(databaseUrl, { workspaces: 1, projectsPerWorkspace: 1, seed: SEED, tasksPerProject: 25 })),
  });
  search = await startSearch(loadSearchConfig(pipeline.env), logger);
  notifications = await startNotifications(loadNotificationsConfig(pipeline.env), logger);
}, 120_000);

afterAll(async () => {
  client?.close();
  await notifications?.stop();
  await search?.stop();
  await pipeline?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** `taskflow capture snapshot …` as an operator runs it; resolves with its exit code and output. */
function snapshotCommand(args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['bin/taskflow.js', 'capture', 'snapshot', ...args], { env: { ...process.env, ...pipeline.env, NODE_OPTIONS: '', LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, output })));
}

describe('capture snapshot --for search', () => {
  it('fills the search index and nothing else: no publish, no changelog entry, no notification or watcher', async () => {
    const ws = tenants.workspaces[0]!;
    const project = ws.projects[0]!;
    const db = new pg.Client({ connectionString: pipeline.databaseUrl });
    await db.connect();
    try {
      const seeded = (await db.query<{ id: string }>('SELECT id FROM tasks WHERE workspace_id = $1', [ws.id])).rows.map((r) => r.id).sort();
      expect(seeded.length).toBe(25);
      // An observer who joins live (so the router's and notifications' projections know it) and watches the project.
      const observer = randomUUID();
      await db.query('INSERT INTO users (id, email, display_name) VALUES ($1, $2, $3)', [observer, `${observer}@example.test`, 'observer']);
      await db.query("INSERT INTO memberships (id, workspace_id, user_id, project_id, role) VALUES ($1, $2, $3, NULL, 'member')", [randomUUID(), ws.id, observer]);
      const token = await pipeline.token(observer, 3600);
      const changelog = async () => {
        const res = await fetch(`${pipeline.router.replayUrl}/v1/workspaces/${ws.id}/projects/${project}/changes?after=0&limit=1000`, { headers: { authorization: `Bearer ${token}` } });
        return res.status === 200 ? ((await res.json()) as { changes: { seq: number; event: { id: string; subject: string } }[] }).changes : undefined;
      };
      await waitFor(changelog, 'the router to learn the observer membership', 30_000);
      const seen: Change[] = [];
      const statuses: Status[] = [];
      client = createClient({ url: pipeline.broker.wsUrl, token, replayUrl: pipeline.router.replayUrl, backoff: { baseMs: 100, maxMs: 1000 } });
      client.subscribeProject(ws.id, project, { fromSeq: 1, onChange: (c) => seen.push(c), onResync: () => {}, onStatus: (s) => statuses.push(s) });
      await waitFor(() => statuses.at(-1) === 'live', () => `the SDK subscription to be live (${statuses.join(' → ')})`);

      const snapshot = await snapshotCommand(['--for', 'search']);
      expect(snapshot).toEqual({ code: 0, output: expect.stringMatching(/snapshot done: \d+ rows/) });
      const index = new SqliteSearchIndex(join(dir, 'search.db'));
      try {
        await waitFor(async () => (await index.documents(ws.id)).filter((d) => d.table === 'tasks').length === seeded.length, 'the snapshot rows in the search index', 30_000);
        expect((await index.documents(ws.id)).filter((d) => d.table === 'tasks').map((d) => d.id).sort()).toEqual(seeded);
      } finally {
        await index.close();
      }

      // The fence: a live task, assigned to the observer by a seeded user.
      const fence = randomUUID();
      await db.query("INSERT INTO tasks (id, workspace_id, project_id, title, assignee_id, created_by) VALUES ($1, $2, $3, 'after the snapshot', $4, $5)", [fence, ws.id, project, observer, ws.users[0]]);
      const inbox = async () => {
        const res = await fetch(`${notifications.apiUrl}/v1/workspaces/${ws.id}/notifications`, { headers: { authorization: `Bearer ${token}` } });
        return res.status === 200 ? ((await res.json()) as { notifications: { kind: string; taskId: string }[] }).notifications : undefined;
      };
      const subjects = (changes: readonly Change[]) => changes.map((c) => (c.mode === 'full' ? c.event.subject : `tasks/${String(c.key?.id)}`));
      await waitFor(() => seen.length > 0 && subjects(seen).includes(`tasks/${fence}`), () => `the SDK subscriber to get the fence (got ${seen.length} changes)`, 30_000);
      await waitFor(async () => (await inbox())?.some((n) => n.taskId === fence), 'the fence notification in the inbox', 30_000);

      expect(subjects(seen)).toEqual([`tasks/${fence}`]);
      expect((await changelog())!.map((c) => c.event.subject)).toEqual([`tasks/${fence}`]);
      expect((await inbox())!.map((n) => [n.kind, n.taskId])).toEqual([['assigned', fence]]);
      const dynamo = createDynamoClient(awsConfig());
      try {
        const watchers = await new DynamoWatcherStore(dynamo, loadNotificationsConfig(pipeline.env).tables.watchers).watchers(seeded);
        expect([...watchers.values()].filter((w) => w.size > 0).length).toBe(0);
      } finally {
        dynamo.destroy();
      }
    } finally {
      await db.end();
    }
  }, 180_000);
});
