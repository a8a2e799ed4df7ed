// A poisoned raw archive on the real loader (archive folder -> loader -> DuckDB, quarantine in the
// stack's DynamoDB dead-letter table): an object that is not GZIP and an object with a line that
// is not JSON and an event the schemas refuse neither stop the loader nor reach the warehouse;
// each bad part is quarantined with its reason, the good objects and lines load. Once the object
// is replaced by a good copy, `taskflow analytics dlq redrive --source loader` brings it in; once
// a release reads the refused event (here: a validator that repairs its field), the redrive
// brings that in too — every event exactly once, a second redrive changing nothing.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadLoaderConfig } from '../../analytics/config.js';
import { startLoader, type RunningLoader } from '../../analytics/loader-service.js';
import { LOADER_METRICS } from '../../analytics/metrics.js';
import { LOADER_DLQ_SOURCE } from '../../analytics/quarantine.js';
import { redriveLoaderDeadLetters } from '../../analytics/redrive.js';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { tableEnvVar } from '../../lib/config.js';
import { DynamoDeadLetterStore } from '../../lib/dlq.js';
import { silentLogger } from '../../lib/logger.js';
import { FsObjectStore } from '../../lib/object-store.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { validateEvent } from '../../schemas/validate.js';
import { createTestTables, dynamoClient, testStackEnv } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

let dir: string;
let env: Record<string, string>;
let dynamo: DynamoDBClient;
let store: DynamoDeadLetterStore;
let archive: FsObjectStore;
let loader: RunningLoader;

const key = (second: number) => `raw/2026/11/26/12/archive-1-2026-11-26-12-00-${String(second).padStart(2, '0')}-0000000${second}-aaaa-4aaa-8aaa-aaaaaaaaaaaa.gz`;
const event = (n: number) => sampleEvent('task.updated', { commitLsn: 0x3000n + BigInt(n), entityId: `33333333-3333-4333-8333-00000000000${n}`, row: { status: 'done' } });
const lines = (...items: unknown[]) => gzipSync(items.map((i) => `${typeof i === 'string' ? i : JSON.stringify(i)}\n`).join(''));
const rawIds = async () => (await loader.warehouse.query('SELECT id, count(*)::INTEGER AS n FROM raw_events GROUP BY id ORDER BY id')).map((r) => `${String(r.id)}x${String(r.n)}`);
const once = (...ns: number[]) => ns.map((n) => `${event(n).id}x1`);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quarantine-test-'));
  const tables = await createTestTables('quarantine', ['dlq']);
  env = { ...testStackEnv(), S3_DIR: join(dir, 's3'), ARCHIVE_BUCKET: 'archive', [tableEnvVar('dlq')]: tables.dlq!, LOADER_POLL_INTERVAL_MS: '50', DQ_INTERVAL_MS: '0' };
  dynamo = dynamoClient();
  store = new DynamoDeadLetterStore(dynamo, tables.dlq!);
  archive = new FsObjectStore(join(dir, 's3', 'archive'));
});

afterAll(async () => {
  await loader?.stop();
  dynamo?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('analytics loader quarantine', () => {
  it('quarantines a poisoned object and lines with their reasons, loads the rest, and redrives them once fixed, each event once', async () => {
    const refusedEvent = { ...event(4), workspaceid: 42 };
    await archive.put(key(1), lines(event(1), event(2)));
    await archive.put(key(2), Buffer.from('this is not gzip'));
    await archive.put(key(3), lines(event(3), '{"id": "truncated', refusedEvent));
    loader = await startLoader(loadLoaderConfig(env), silentLogger);

    // The objects after the bad one load: the loader is not stuck on it.
    await waitFor(async () => (await rawIds()).join() === once(1, 2, 3).join() || undefined, 'the good lines in raw_events', 20_000);
    expect((await loader.warehouse.query('SELECT object_key, events::INTEGER AS events FROM load_log ORDER BY object_key')).map((r) => [r.object_key, r.events])).toEqual([
      [key(1), 2],
      [key(2), 0],
      [key(3), 1],
    ]);
    const letters = await store.list({ source: LOADER_DLQ_SOURCE });
    expect(letters.map((d) => ({ reason: d.reason, origin: d.origin })).sort((a, b) => `${a.origin.objectKey}${a.origin.line}`.localeCompare(`${b.origin.objectKey}${b.origin.line}`))).toEqual([
      { reason: 'bad_gzip', origin: { objectKey: key(2) } },
      { reason: 'malformed_json', origin: { objectKey: key(3), line: '2' } },
      { reason: 'schema_violation', origin: { objectKey: key(3), line: '3' } },
    ]);
    expect(letters.find((d) => d.reason === 'schema_violation')!.message).toMatch(/workspaceid/);
    const metrics = await (await fetch(loader.metricsUrl)).text();
    expect(metrics).toMatch(new RegExp(`^${LOADER_METRICS.quarantined}\\{reason="bad_gzip",[^}]*\\} 1$`, 'm'));

    // The object fixed in the archive (a good copy at its key, holding an event loaded already):
    // the CLI copies it in; the lines it cannot read yet stay, named, and it exits 1.
    await archive.put(key(2), lines(event(5), event(1)));
    const cli = spawnSync(process.execPath, ['bin/taskflow.js', 'analytics', 'dlq', 'redrive', '--source', 'loader'], { env: { ...process.env, ...env, NODE_OPTIONS: '' }, encoding: 'utf8' });
    expect(cli.stdout).toMatch(/1 dead letter\(s\) redriven, 2 refused/);
    expect(cli.status).toBe(1);
    await waitFor(async () => (await rawIds()).join() === once(1, 2, 3, 5).join() || undefined, 'the fixed object loaded', 20_000);

    // A release that reads the refused event (its workspace repaired) redrives it; the line that
    // is not JSON stays. Twice: the second finds nothing new to bring.
    const repairing = (input: unknown) => validateEvent(typeof (input as { workspaceid?: unknown }).workspaceid === 'number' ? { ...(input as object), workspaceid: event(4).workspaceid } : input);
    const first = await redriveLoaderDeadLetters({ store, validate: repairing, archive, prefix: 'raw/' });
    expect(first.redriven.map((d) => d.reason)).toEqual(['schema_violation']);
    expect(first.refused.map((r) => r.letter.reason)).toEqual(['malformed_json']);
    await waitFor(async () => (await rawIds()).join() === once(1, 2, 3, 4, 5).join() || undefined, 'the repaired event loaded', 20_000);
    const [row] = await loader.warehouse.query(`SELECT workspace_id FROM raw_events WHERE id = '${event(4).id}'`);
    expect(row).toEqual({ workspace_id: event(4).workspaceid });
    const again = await redriveLoaderDeadLetters({ store, validate: repairing, archive, prefix: 'raw/' });
    expect(again.redriven).toEqual([]);
    const list = spawnSync(process.execPath, ['bin/taskflow.js', 'analytics', 'dlq', 'list', '--source', 'loader'], { env: { ...process.env, ...env, NODE_OPTIONS: '' }, encoding: 'utf8' });
    expect(list.stdout).toMatch(/malformed_json/);
    expect(list.stdout).toMatch(/^1 dead letter\(s\)$/m);
    expect(await rawIds()).toEqual(once(1, 2, 3, 4, 5));
  }, 90_000);
});
