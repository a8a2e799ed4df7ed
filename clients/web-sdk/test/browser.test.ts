// The minified IIFE browser bundle (mqtt.js inside) in headless Chromium: it connects over
// WebSocket to a real broker, catches up from the replay API (cross-origin fetch), decodes
// gzipped thin batches with the browser's DecompressionStream, and loses nothing when the page
// goes offline and back (Playwright's setOffline fires the offline/online events).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { build } from 'esbuild';
import { existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startBroker, type Broker } from '../../../infra/local/broker.js';
import { waitFor } from '../../../test/support/wait.js';
import { bundleOptions } from '../scripts/build.mjs';
import { ProjectFeed } from './project-feed.js';

const CHROMIUM = '/usr/bin/chromium';
const describeIfChromium = existsSync(CHROMIUM) ? describe : describe.skip;

let broker: Broker;
let feed: ProjectFeed;
let site: Server;
let siteUrl: string;
let browser: Browser;

beforeAll(async () => {
  broker = await startBroker({ tcpPort: 0, wsPort: 0 });
  feed = await new ProjectFeed({ publishUrl: broker.publishUrl }).start();
  const result = await build({ ...bundleOptions(join(tmpdir(), 'taskflow-realtime-browser-test')).iife, write: false, sourcemap: false });
  const bundle = result.outputFiles.find((f) => f.path.endsWith('.js'))!.text;
  site = createServer((req, res) => {
    if (req.url === '/sdk.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
    else res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>sdk</title><script src="/sdk.js"></script>');
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}/`;
  if (existsSync(CHROMIUM)) browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => site.close(() => resolve()));
  await feed.close();
  await broker.stop();
});

async function seqs(page: Page): Promise<number[]> {
  return page.evaluate(() => (window as unknown as { seen: number[] }).seen);
}

async function waitForSeqs(page: Page, count: number): Promise<number[]> {
  let seen: number[] = [];
  // On a time-out the caller's comparison says what is missing.
  await waitFor(async () => (seen = await seqs(page)).length >= count, `${count} seqs on the page`, 15_000).catch(() => undefined);
  return seen;
}

describeIfChromium('browser bundle in Chromium', () => {
  it('catches up, goes live, decodes gzip and thin, and recovers from going offline', async () => {
    const ws = randomUUID();
    const project = randomUUID();
    await feed.commit(ws, project, 3, { publish: false });
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(siteUrl);
    await page.evaluate(
      ({ url, replayUrl, ws, project }) => {
        const w = window as unknown as { seen: number[]; statuses: string[]; TaskflowRealtime: typeof import('../src/index.js') };
        w.seen = [];
        w.statuses = [];
        const client = w.TaskflowRealtime.createClient({ url, token: 'browser-token', replayUrl, backoff: { baseMs: 100, maxMs: 1000 } });
        client.subscribeProject(ws, project, {
          fromSeq: 1,
          onChange: (change) => w.seen.push(change.seq),
          onResync: () => w.seen.push(-1),
          onStatus: (status) => w.statuses.push(status),
        });
      },
      { url: broker.wsUrl, replayUrl: feed.replayUrl, ws, project },
    );
    expect(await waitForSeqs(page, 3)).toEqual([1, 2, 3]);
    await page.waitForFunction(() => (window as unknown as { statuses: string[] }).statuses.at(-1) === 'live');
    await feed.commit(ws, project, 2, { mode: 'thin', gzip: true });
    expect(await waitForSeqs(page, 5)).toEqual([1, 2, 3, 4, 5]);

    await context.setOffline(true);
    await page.waitForFunction(() => (window as unknown as { statuses: string[] }).statuses.at(-1) === 'offline');
    await feed.commit(ws, project, 2, { gzip: true }); // published while the page is offline
    await context.setOffline(false);
    expect(await waitForSeqs(page, 7)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    await context.close();
  }, 60_000);
});
