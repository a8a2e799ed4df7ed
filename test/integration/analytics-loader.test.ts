// Stream -> archiver -> local Firehose -> archive folder -> loader -> DuckDB on the local stack:
// a created-then-updated task (the update omitting its unchanged TOASTed description) reaches the
// curated `tasks` view with both changes; a restarted loader loads nothing twice.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadArchiverConfig, loadLoaderConfig } from '../../analytics/config.js';
import { startLoader, type RunningLoader } from '../../analytics/loader-service.js';
import { LOADER_METRICS } from '../../analytics/metrics.js';
import { startArchiver, type RunningArchiver } from '../../analytics/service.js';
import { silentLogger } from '../../lib/logger.js';
import { FsObjectStore } from '../../lib/object-store.js';
import { type LocalFirehose, startFirehose } from '../../infra/local/firehose/server.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { archiverTestEnv, createTestStream, createTestTables, kinesisClient } from '../support/stack.js';
import { sleep, waitFor } from '../support/wait.js';

let kinesis: KinesisClient;
let dir: string;
let firehose: LocalFirehose;
let archiver: RunningArchiver;
let loaderEnv: Record<string, string>;

beforeAll(async () => {
  kinesis = kinesisClient();
  const [streamName, tables] = await Promise.all([createTestStream('loader', 1), createTestTables('loader', ['leases', 'dlq'])]);
  dir = mkdtempSync(join(tmpdir(), 'loader-test-'));
  firehose = await startFirehose({
    store: (bucket) => new FsObjectStore(join(dir, 's3', bucket)),
    streams: [{ name: 'archive', bucket: 'archive', prefix: 'raw/', errorPrefix: 'errors/', hints: { sizeInMBs: 1, intervalInSeconds: 0 }, compression: 'UNCOMPRESSED', fileExtension: '.gz' }],
  });
  const env = {
    ...archiverTestEnv({ streamName, firehoseEndpoint: firehose.endpoint, tables }),
    S3_DIR: join(dir, 's3'),
    ARCHIVE_BUCKET: 'archive',
    LOADER_POLL_INTERVAL_MS: '50',
  };
  loaderEnv = env;
  archiver = await startArchiver(loadArchiverConfig(env), silentLogger);
});

afterAll(async () => {
  await archiver?.stop();
  await firehose?.stop();
  kinesis?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('analytics loader', () => {
  it('puts a change into the curated table, leaves omitted columns alone, and loads each object once across restarts', async () => {
    const task = '33333333-3333-4333-8333-0000000000aa';
    const created = sampleEvent('task.created', { commitLsn: 0x2000n, entityId: task, row: { description: 'long text', status: 'todo' } });
    const updated = sampleEvent('task.updated', { commitLsn: 0x2001n, entityId: task, row: { status: 'done' }, changed: ['status'], omitted: ['description'] });
    await kinesis.send(
      new PutRecordsCommand({ StreamName: loaderEnv.CHANGE_STREAM_NAME, Records: [created, updated].map((e) => ({ PartitionKey: e.workspaceid, Data: Buffer.from(JSON.stringify(e)) })) }),
    );
    let loader: RunningLoader = await startLoader(loadLoaderConfig(loaderEnv), silentLogger);
    let row: Record<string, unknown> | undefined;
    try {
      row = await waitFor(async () => {
        const rows = await loader.warehouse.query(`SELECT status, description, last_event_id FROM tasks WHERE id = '${task}'`);
        return rows[0]?.last_event_id === updated.id ? rows[0] : undefined;
      }, 'the update in the curated tasks table', 20_000);
    } finally {
      await loader.stop();
    }
    expect(row).toEqual({ status: 'done', description: 'long text', last_event_id: updated.id });

    loader = await startLoader(loadLoaderConfig(loaderEnv), silentLogger);
    try {
      // Asserting that nothing happens: a restarted loader must not load the same objects again.
      await sleep(300);
      const [counts] = await loader.warehouse.query('SELECT (SELECT count(*) FROM raw_events)::INTEGER AS raw, (SELECT sum(new_events) FROM load_log)::INTEGER AS loaded');
      expect(counts).toEqual({ raw: 2, loaded: 2 });
      // Freshness from the warehouse's newest commit at start (the samples' 2026-11-26), nothing pending.
      const text = await (await fetch(loader.metricsUrl)).text();
      const metric = (name: string) => Number(text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))?.split(' ').at(-1));
      expect(metric(LOADER_METRICS.freshness)).toBeCloseTo((Date.now() - Date.parse(updated.time)) / 1000, -1);
      expect(metric(LOADER_METRICS.pending)).toBe(0);
      expect(metric(LOADER_METRICS.oldestPending)).toBe(0);
    } finally {
      await loader.stop();
    }
  });

  it('taskflow analytics dq names the failing check with sample rows and exits 1', () => {
    // The sample events were committed on 2026-11-26 (stale by the 900 s freshness default), and
    // the task's project never travelled the stream.
    const out = spawnSync(process.execPath, ['bin/taskflow.js', 'analytics', 'dq', '--json'], { env: { ...process.env, ...loaderEnv, NODE_OPTIONS: '' }, encoding: 'utf8' });
    expect(out.status).toBe(1);
    const results = JSON.parse(out.stdout) as { check: string; passed: boolean; sample: Record<string, unknown>[] }[];
    expect(results.filter((r) => !r.passed).map((r) => r.check)).toEqual(['referential_integrity', 'freshness']);
    expect(results.find((r) => r.check === 'referential_integrity')!.sample).toEqual([{ id: '33333333-3333-4333-8333-0000000000aa', problem: 'task without its project' }]);
    expect(results.find((r) => r.check === 'freshness')!.sample[0]).toHaveProperty('latest_commit');
    const unknown = spawnSync(process.execPath, ['bin/taskflow.js', 'analytics', 'dq', '--check', 'nope'], { env: { ...process.env, ...loaderEnv, NODE_OPTIONS: '' }, encoding: 'utf8' });
    expect(unknown.stderr).toContain('DQ_UNKNOWN_CHECK');
  });
});
