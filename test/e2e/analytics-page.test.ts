// The board's analytics page in a real browser (Debian's headless Chromium via playwright-core) at
// the end of the real analytics path: Postgres → capture → Kinesis → archiver → local Firehose →
// archive folder → loader → DuckDB → analytics API → page. The demo seed's changes show as bars
// with the API's own counts, and the freshness is shown.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { chromium, type Browser } from 'playwright-core';
import { loadArchiverConfig, loadLoaderConfig } from '../../analytics/config.js';
import { startLoader, type RunningLoader } from '../../analytics/loader-service.js';
import { startArchiver, type RunningArchiver } from '../../analytics/service.js';
import { demoSessions, startBoardServer } from '../../clients/demo-board/server.js';
import { DEMO, seedDemo } from '../../db/seed.js';
import { type LocalFirehose, startFirehose } from '../../infra/local/firehose/server.js';
import { silentLogger } from '../../lib/logger.js';
import { FsObjectStore } from '../../lib/object-store.js';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let pipeline: TestPipeline;
let firehose: LocalFirehose;
let archiver: RunningArchiver;
let loader: RunningLoader;
let board: Awaited<ReturnType<typeof startBoardServer>>;
let pool: pg.Pool;
let browser: Browser;
const dir = mkdtempSync(join(tmpdir(), 'analytics-page-'));

beforeAll(async () => {
  pipeline = await startTestPipeline({ prefix: 'analytics-page' });
  firehose = await startFirehose({
    store: (bucket) => new FsObjectStore(join(dir, 's3', bucket)),
    streams: [{ name: 'archive', bucket: 'archive', prefix: 'raw/', errorPrefix: 'errors/', hints: { sizeInMBs: 1, intervalInSeconds: 0 }, compression: 'UNCOMPRESSED', fileExtension: '.gz' }],
  });
  const env = {
    ...pipeline.env,
    FIREHOSE_ENDPOINT: firehose.endpoint,
    FIREHOSE_DELIVERY_STREAM: 'archive',
    KINESIS_POLL_INTERVAL_MS: '50',
    KINESIS_MIN_CALL_SPACING_MS: '0',
    S3_DIR: join(dir, 's3'),
    ARCHIVE_BUCKET: 'archive',
    LOADER_POLL_INTERVAL_MS: '50',
    ANALYTICS_API_PORT: '0',
  };
  archiver = await startArchiver(loadArchiverConfig(env), silentLogger);
  loader = await startLoader(loadLoaderConfig(env), silentLogger);
  await seedDemo(pipeline.databaseUrl); // after capture started: the demo rows travel the pipeline
  pool = new pg.Pool({ connectionString: pipeline.databaseUrl, max: 2 });
  board = await startBoardServer({
    pool,
    port: 0,
    logger: silentLogger,
    session: demoSessions({
      users: DEMO.users,
      workspaceId: DEMO.workspaceId,
      projectId: DEMO.projectId,
      mqttUrl: pipeline.broker.wsUrl,
      replayUrl: pipeline.router.replayUrl,
      analyticsUrl: loader.apiUrl!,
      sign: (userId) => pipeline.token(userId),
      env: { TASKFLOW_ENV: 'development' },
    }),
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await board?.close();
  await pool?.end();
  await loader?.stop();
  await archiver?.stop();
  await firehose?.stop();
  await pipeline?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('board analytics page in a real browser', () => {
  it('charts the changes per minute of the demo project from the warehouse and shows the freshness', async () => {
    const page = await browser.newPage();
    await page.goto(`${board.url}analytics`);
    // The page refreshes every 5 s; the seed's changes reach the warehouse within a few.
    await page.locator(`#chart rect.bar[data-project="${DEMO.projectId}"]`).first().waitFor({ timeout: 60_000 });
    const bars = await page.locator('#chart rect.bar').evaluateAll((els) => els.map((e) => ({ project: e.getAttribute('data-project'), changes: Number(e.getAttribute('data-changes')) })));
    const shown = bars.filter((b) => b.project === DEMO.projectId).reduce((a, b) => a + b.changes, 0);
    expect(shown).toBeGreaterThan(0);
    // The numbers are the warehouse's: the page's bars sum to what raw_events holds for the project (up to the page's last refresh).
    const [row] = await loader.warehouse.query(`SELECT count(*)::INTEGER AS n FROM raw_events WHERE project_id = '${DEMO.projectId}'`);
    expect(shown).toBeLessThanOrEqual(Number(row!.n));
    const seconds = Number(await page.locator('#freshness').getAttribute('data-seconds'));
    expect(Number.isFinite(seconds)).toBe(true);
    expect(await page.locator('#freshness').textContent()).toMatch(/^\d+\.\d s$/);
    expect(await page.locator('#error').textContent()).toBe('');
  }, 90_000);
});
