// The demo board in a real browser (Debian's headless Chromium via playwright-core) at the end of
// the whole local pipeline: Postgres → capture → Kinesis → router → MQTT over WebSocket → SDK.
// Two windows: an edit in one appears in the other; a change committed with plain SQL appears in
// both; a window that goes offline and comes back has lost nothing; the search box finds a task
// committed with SQL, through the search service reading the same stream; the bell counts the
// user's notifications (the notifications service reading it too) and marks them read. Records commit → screen
// latency in .taskflow/e2e-browser.json (picked up by `npm run bench:e2e`).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { demoSessions, startBoardServer } from '../../clients/demo-board/server.js';
import { DEMO, seedDemo } from '../../db/seed.js';
import { silentLogger } from '../../lib/logger.js';
import { loadConfig as loadNotificationsConfig } from '../../notifications/config.js';
import { startNotifications, type RunningNotifications } from '../../notifications/service.js';
import { loadConfig as loadSearchConfig } from '../../search/config.js';
import { startSearch, type RunningSearch } from '../../search/service.js';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { sleep, waitFor } from '../support/wait.js';

const CHROMIUM = '/usr/bin/chromium';
// As root Chromium needs --no-sandbox; the rest keeps it from calling out of this closed network.
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

interface Probe { applied: string[]; latenciesMs: number[]; status: string; resyncs: number }

let pipeline: TestPipeline;
let board: Awaited<ReturnType<typeof startBoardServer>>;
let pool: pg.Pool;
let browser: Browser;
let search: RunningSearch;
let notifications: RunningNotifications;
const searchDir = mkdtempSync(join(tmpdir(), 'board-e2e-search-'));
const contexts: BrowserContext[] = [];
const user = Object.values(DEMO.users)[0] as string;

beforeAll(async () => {
  // The notifications service publishes on the users' topics as its own service identity.
  pipeline = await startTestPipeline({ prefix: 'board-e2e', serviceUsers: ['service:notifications'] });
  await seedDemo(pipeline.databaseUrl); // after capture started: the demo memberships travel the pipeline
  pool = new pg.Pool({ connectionString: pipeline.databaseUrl, max: 2 });
  search = await startSearch(
    loadSearchConfig({ ...pipeline.env, SEARCH_DB_PATH: join(searchDir, 'search.db'), SEARCH_PORT: '0', KINESIS_POLL_INTERVAL_MS: '50', KINESIS_MIN_CALL_SPACING_MS: '0' }),
    silentLogger,
  );
  notifications = await startNotifications(
    loadNotificationsConfig({ ...pipeline.env, NOTIFICATIONS_PORT: '0', KINESIS_POLL_INTERVAL_MS: '50', KINESIS_MIN_CALL_SPACING_MS: '0' }),
    silentLogger,
  );
  board = await startBoardServer({
    pool,
    port: 0,
    logger: silentLogger,
    healthSources: [
      { name: 'capture', url: pipeline.capture.metricsUrl },
      { name: 'router', url: pipeline.router.metricsUrl },
      { name: 'search', url: search.metricsUrl },
    ],
    healthEveryMs: 500,
    session: demoSessions({
      users: DEMO.users,
      workspaceId: DEMO.workspaceId,
      projectId: DEMO.projectId,
      mqttUrl: pipeline.broker.wsUrl,
      replayUrl: pipeline.router.replayUrl,
      searchUrl: search.apiUrl,
      notificationsUrl: notifications.apiUrl,
      sign: (userId) => pipeline.token(userId),
      env: { TASKFLOW_ENV: 'development' },
    }),
  });
  const token = await pipeline.token(user);
  await waitFor(
    async () => (await fetch(`${pipeline.router.replayUrl}/v1/workspaces/${DEMO.workspaceId}/projects/${DEMO.projectId}/changes?after=0&limit=1`, { headers: { authorization: `Bearer ${token}` } })).status === 200,
    () => 'the router to learn the demo memberships',
  );
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await board?.close();
  await search?.stop();
  await notifications?.stop();
  await pool?.end();
  await pipeline?.stop();
  rmSync(searchDir, { recursive: true, force: true });
});

async function openBoard(query = ''): Promise<{ page: Page; context: BrowserContext }> {
  const context = await browser.newContext();
  contexts.push(context);
  const page = await context.newPage();
  await page.goto(`${board.url}${query}`);
  await page.waitForFunction(() => (window as unknown as { taskflowBoard?: Probe }).taskflowBoard?.status === 'live', undefined, { timeout: 30_000 });
  return { page, context };
}

const probe = (page: Page) => page.evaluate(() => (window as unknown as { taskflowBoard: Probe }).taskflowBoard);
const cardTitle = (page: Page, status: string, title: string) => page.locator(`.column[data-status="${status}"] .card .title`, { hasText: title });

describe('demo board in a real browser', () => {
  it('shows one window’s edits in the other, SQL commits in both, and loses nothing offline', async () => {
    const a = await openBoard();
    const b = await openBoard(`?user=${Object.keys(DEMO.users)[1]}`); // as another demo user

    // An edit in window A (through the board's API) appears in window B through the pipeline.
    const first = a.page.locator('.column[data-status="todo"] .card').first();
    const title = (await first.locator('.title').textContent())!;
    await first.click();
    await a.page.selectOption('#detail-status', 'review');
    await cardTitle(b.page, 'review', title).waitFor({ timeout: 15_000 });
    await cardTitle(a.page, 'review', title).waitFor({ timeout: 15_000 });

    // A change committed directly with SQL appears in both; its commit → screen latency is recorded.
    const { rows } = await pool.query<{ id: string }>('SELECT id FROM tasks WHERE workspace_id = $1 AND project_id = $2 ORDER BY position LIMIT 1', [DEMO.workspaceId, DEMO.projectId]);
    const sqlTitle = `Renamed by SQL ${Date.now()}`;
    await pool.query('UPDATE tasks SET title = $1, updated_at = now() WHERE id = $2', [sqlTitle, rows[0]!.id]);
    for (const page of [a.page, b.page]) await page.locator('.card .title', { hasText: sqlTitle }).waitFor({ timeout: 15_000 });
    const latencyMs = (await probe(b.page)).latenciesMs.at(-1)!;
    expect(latencyMs).toBeGreaterThanOrEqual(0);

    // Window B goes offline; changes committed meanwhile all arrive once it is back.
    await b.context.setOffline(true);
    await waitFor(async () => (await probe(b.page)).status !== 'live', () => 'window B to notice it is offline', 30_000);
    const offlineTitles: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const t = `Committed while B was offline #${i} ${Date.now()}`;
      offlineTitles.push(t);
      await pool.query('UPDATE tasks SET title = $1, updated_at = now() WHERE id = $2', [t, rows[0]!.id]);
      await sleep(200); // not a wait: the three commits come apart while B is offline
    }
    await a.page.locator('.card .title', { hasText: offlineTitles[2]! }).waitFor({ timeout: 15_000 });
    await b.context.setOffline(false);
    await b.page.locator('.card .title', { hasText: offlineTitles[2]! }).waitFor({ timeout: 30_000 });

    // Both windows applied the very same changes, each once, in the same order, with no resync.
    await waitFor(async () => (await probe(b.page)).applied.length === (await probe(a.page)).applied.length, () => 'B to catch up with A', 15_000);
    const [pa, pb] = [await probe(a.page), await probe(b.page)];
    expect(pb.applied).toEqual(pa.applied);
    expect(new Set(pa.applied).size).toBe(pa.applied.length);
    expect([pa.resyncs, pb.resyncs]).toEqual([0, 0]);

    mkdirSync('.taskflow', { recursive: true });
    writeFileSync('.taskflow/e2e-browser.json', JSON.stringify({ date: new Date().toISOString(), browser_commit_to_screen_ms: latencyMs, changes_applied: pa.applied.length }, null, 2));
    console.log(`demo board e2e: SQL commit → screen ${latencyMs} ms; ${pa.applied.length} changes applied identically in both windows`);
  }, 120_000);

  it('shows each task’s labels and due date (task v2), from the demo data and live from SQL', async () => {
    const { page } = await openBoard();
    const { rows } = await pool.query<{ id: string; title: string; labels: string[]; due: string | null }>(
      `SELECT id, title, labels, to_char(due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS due FROM tasks WHERE workspace_id = $1 AND project_id = $2 ORDER BY position, id`,
      [DEMO.workspaceId, DEMO.projectId],
    );
    expect(rows.some((r) => r.labels.length > 0) && rows.some((r) => r.due !== null)).toBe(true); // the demo data has both
    const shown = async (id: string) => {
      const card = page.locator(`.card[data-task-id="${id}"]`);
      return { labels: await card.locator('.tags .label').allTextContents(), due: (await card.locator('.tags .due').allTextContents())[0] ?? null };
    };
    for (const r of rows) expect({ id: r.id, ...(await shown(r.id)) }).toEqual({ id: r.id, labels: r.labels, due: r.due === null ? null : `due ${r.due}` });

    // A change of both columns with plain SQL reaches the card through the pipeline (17:30 in UTC+2 is 15:30 UTC: still the 24th).
    const target = rows[0]!;
    await pool.query(`UPDATE tasks SET labels = ARRAY['e2e', 'needs review'], due_at = '2027-03-24T17:30:00+02:00', updated_at = now() WHERE id = $1`, [target.id]);
    let last = {};
    await waitFor(
      async () => JSON.stringify((last = await shown(target.id))) === JSON.stringify({ labels: ['e2e', 'needs review'], due: 'due 2027-03-24' }),
      () => `the card to show the new labels and due date: ${JSON.stringify(last)}`,
      15_000,
    );
    await page.locator(`.card[data-task-id="${target.id}"]`).click();
    expect(await page.locator('#detail .tags .label').allTextContents()).toEqual(['e2e', 'needs review']);
  }, 60_000);

  it('finds a task committed with SQL through the search box, and opens it', async () => {
    const { page } = await openBoard();
    const { rows } = await pool.query<{ id: string }>('SELECT id FROM tasks WHERE workspace_id = $1 AND project_id = $2 ORDER BY position DESC LIMIT 1', [DEMO.workspaceId, DEMO.projectId]);
    const word = `Quokka${Date.now()}`;
    await pool.query('UPDATE tasks SET title = $1, updated_at = now() WHERE id = $2', [`Feed the ${word}`, rows[0]!.id]);
    await page.locator('.card .title', { hasText: word }).waitFor({ timeout: 15_000 });
    // The index may lag the board by a poll: ask again until the search finds it.
    await waitFor(
      async () => {
        await page.fill('#search-input', word.slice(0, 8).toLowerCase());
        await page.press('#search-input', 'Enter');
        return page.locator('#search-results .search-result', { hasText: word }).isVisible({ timeout: 1000 }).catch(() => false);
      },
      () => 'the search box to find the task',
      30_000,
    );
    await page.locator('#search-results .search-result', { hasText: word }).click();
    await page.locator('.card.selected .title', { hasText: word }).waitFor({ timeout: 5_000 });
    expect(await page.inputValue('#detail-title')).toBe(`Feed the ${word}`);
  }, 60_000);

  it('links to the pipeline health page, whose charts show the live figures of the services and of the board’s browsers', async () => {
    const { page } = await openBoard();
    // A change shown on this page: its commit → screen latency goes to the board's server.
    const { rows } = await pool.query<{ id: string }>('SELECT id FROM tasks WHERE workspace_id = $1 AND project_id = $2 ORDER BY position LIMIT 1', [DEMO.workspaceId, DEMO.projectId]);
    const title = `Watched from the health page ${Date.now()}`;
    await pool.query('UPDATE tasks SET title = $1, updated_at = now() WHERE id = $2', [title, rows[0]!.id]);
    await page.locator('.card .title', { hasText: title }).waitFor({ timeout: 15_000 });

    const [health] = await Promise.all([page.context().waitForEvent('page'), page.click('#health-link')]);
    await health.waitForLoadState();
    expect(new URL(health.url()).pathname).toBe('/health');
    const latest = async (chart: string) => JSON.parse((await health.getAttribute(`#${chart}`, 'data-latest')) ?? '{}') as Record<string, number | null>;
    const figures = await waitFor(
      async () => {
        const f = { client: await latest('commit-to-client'), lag: await latest('capture-lag'), age: await latest('iterator-age'), perChange: await latest('messages-per-change'), dlq: await latest('dlq') };
        return typeof f.client['client p95'] === 'number' && typeof f.lag.lag === 'number' && typeof f.age.router === 'number' && typeof f.age.search === 'number' && 'router' in f.dlq ? f : undefined;
      },
      () => 'the health page to chart client latency, capture lag, both consumers’ iterator age and dead letters',
      60_000,
    );
    expect(figures.client['client p95']).toBeGreaterThan(0);
    expect(figures.lag.lag).toBeGreaterThanOrEqual(0);
    const sources = await health.evaluate(() => (window as unknown as { taskflowHealth: { sources: { name: string; ok: boolean }[] } }).taskflowHealth.sources);
    expect(sources).toEqual([
      { name: 'capture', url: pipeline.capture.metricsUrl, ok: true },
      { name: 'router', url: pipeline.router.metricsUrl, ok: true },
      { name: 'search', url: search.metricsUrl, ok: true },
    ]);
    // Every chart drew a line once there was data (no chart left on "no data yet").
    for (const chart of ['commit-to-client', 'capture-lag', 'iterator-age']) expect(await health.locator(`#${chart} svg polyline`).count()).toBeGreaterThan(0);
  }, 90_000);

  it('rings the bell when the board’s user is assigned a task, lists it when opened and marks it read', async () => {
    const other = Object.values(DEMO.users)[1] as string;
    const token = await pipeline.token(user);
    const inbox = async () => {
      const res = await fetch(`${notifications.apiUrl}/v1/workspaces/${DEMO.workspaceId}/notifications`, { headers: { authorization: `Bearer ${token}` } });
      return res.status === 200 ? ((await res.json()) as { notifications: { text?: string }[]; unread: number }) : undefined;
    };
    // Another user creates a task assigned to the board's user, with plain SQL.
    const assign = (title: string) =>
      pool.query(
        `INSERT INTO tasks (id, workspace_id, project_id, title, status, position, assignee_id, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'todo', 1, $5, $6, now(), now())`,
        [randomUUID(), DEMO.workspaceId, DEMO.projectId, title, user, other],
      );
    // One shard, read in order: once this first assignment is in the inbox, so is all the seed notified the user of.
    const earlier = `Earlier assignment ${Date.now()}`;
    await assign(earlier);
    await waitFor(async () => (await inbox())?.notifications.some((n) => n.text === earlier), () => 'the inbox to hold the first assignment', 60_000);

    const { page } = await openBoard();
    const count = async () => Number((await page.getAttribute('#bell-count', 'data-unread')) ?? NaN);
    await waitFor(async () => (await count()) > 0, () => 'the bell to count the unread notifications', 30_000);
    // Opening the bell lists the latest and marks them read.
    await page.click('#bell');
    await page.locator('#notifications li', { hasText: earlier }).waitFor({ timeout: 15_000 });
    await waitFor(async () => (await count()) === 0, () => 'the count to drop to 0 once the list was opened', 30_000);
    await page.click('#bell'); // closed again

    // A new assignment rings the bell live; opening it lists the notification and the count drops to 0.
    const title = `Assigned to you ${Date.now()}`;
    await assign(title);
    let shown = NaN;
    await waitFor(async () => (shown = await count()) === 1, () => `the bell to count the new assignment (shows ${shown})`, 30_000);
    await page.click('#bell');
    await page.locator('#notifications li.notification', { hasText: title }).waitFor({ timeout: 15_000 });
    await waitFor(async () => (await count()) === 0, () => 'the count to drop to 0', 30_000);
    expect((await inbox())?.unread).toBe(0); // the inbox agrees: marked read there, not only on the page
  }, 120_000);
});
