// The archiver's gzipped records end to end on real engines: kinesalite -> archiver (lines packed
// into gzip members) -> the local Firehose (UNCOMPRESSED, FileExtension .gz) -> s3rver -> loader ->
// DuckDB. Objects written before the change (plain lines, gzipped by a GZIP delivery stream into
// the same prefix) still load beside them: every event once.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import S3rver from 's3rver';
import { loadArchiverConfig, loadLoaderConfig } from '../../analytics/config.js';
import type { CallOutcome } from '../../analytics/delivery-plan.js';
import { FirehoseDeliveryStream } from '../../analytics/firehose.js';
import { startLoader } from '../../analytics/loader-service.js';
import { startArchiver, type RunningArchiver } from '../../analytics/service.js';
import { createFirehoseClient, createS3Client } from '../../lib/aws.js';
import { silentLogger } from '../../lib/logger.js';
import { S3ObjectStore } from '../../lib/object-store.js';
import { type LocalFirehose, startFirehose } from '../../infra/local/firehose/server.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { archiverTestEnv, createTestStream, createTestTables, kinesisClient } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

const N = 300;
let kinesis: KinesisClient;
let dir: string;
let s3rver: S3rver;
let store: S3ObjectStore;
let destroyS3: () => void;
let firehose: LocalFirehose;
let archiver: RunningArchiver;
let env: Record<string, string>;
/** What the archive stream received: the size and line count of each record. */
const received: { bytes: number; lines: number }[] = [];

const event = (i: number) => sampleEvent('task.updated', { commitLsn: 0x7000n + BigInt(i), entityId: `33333333-3333-4333-8333-${String(i).padStart(12, '0')}`, row: { status: i % 2 ? 'done' : 'todo' } });

beforeAll(async () => {
  kinesis = kinesisClient();
  const [streamName, tables] = await Promise.all([createTestStream('archive-gzip', 1), createTestTables('archive-gzip', ['leases', 'dlq'])]);
  dir = mkdtempSync(join(tmpdir(), 'archive-gzip-'));
  s3rver = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: join(dir, 's3rver'), configureBuckets: [{ name: 'archive' }] });
  const { port } = await s3rver.run();
  const s3Endpoint = `http://127.0.0.1:${port}`;
  const s3 = createS3Client({ region: 'us-east-1', s3Endpoint });
  destroyS3 = () => s3.destroy();
  store = new S3ObjectStore(s3, 'archive');
  firehose = await startFirehose({
    store: () => store,
    streams: [
      // Long interval: the test flushes, so one object holds many records (gzip members).
      { name: 'archive', bucket: 'archive', prefix: 'raw/', errorPrefix: 'errors/', hints: { sizeInMBs: 8, intervalInSeconds: 900 }, compression: 'UNCOMPRESSED', fileExtension: '.gz' },
      { name: 'before', bucket: 'archive', prefix: 'raw/', errorPrefix: 'errors/', hints: { sizeInMBs: 8, intervalInSeconds: 900 }, compression: 'GZIP' },
    ],
    faults: {
      failRecord(stream, data) {
        if (stream === 'archive') received.push({ bytes: data.length, lines: gunzipSync(data).toString().split('\n').length - 1 });
        return undefined;
      },
    },
  });
  env = {
    ...archiverTestEnv({ streamName, firehoseEndpoint: firehose.endpoint, tables }),
    // Small reads: many archiver batches, so many records in one object.
    KINESIS_MAX_RECORDS: '40',
    S3_ENDPOINT: s3Endpoint,
    ARCHIVE_BUCKET: 'archive',
    WAREHOUSE_PATH: join(dir, 'warehouse.duckdb'),
    LOADER_POLL_INTERVAL_MS: '50',
  };
  delete env.S3_DIR;
  archiver = await startArchiver(loadArchiverConfig(env), silentLogger);
});

afterAll(async () => {
  await archiver?.stop();
  await firehose?.stop();
  destroyS3?.();
  await s3rver?.close();
  kinesis?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('archive objects of gzip members', () => {
  it('are multi-member gzip files the loader reads whole, beside objects Firehose gzipped before the change', async () => {
    const events = Array.from({ length: N }, (_, i) => event(i));
    const fromArchiver = events.slice(0, 200);
    const before = events.slice(200);
    for (let i = 0; i < fromArchiver.length; i += 100) {
      await kinesis.send(new PutRecordsCommand({ StreamName: env.CHANGE_STREAM_NAME, Records: fromArchiver.slice(i, i + 100).map((e) => ({ PartitionKey: e.workspaceid, Data: Buffer.from(JSON.stringify(e)) })) }));
    }
    await waitFor(() => received.reduce((n, r) => n + r.lines, 0) >= fromArchiver.length, 'the archiver to put every event', 30_000, 50);
    // The earlier format: one plain line per record, gzipped by the delivery stream.
    const client = createFirehoseClient({ region: 'us-east-1', firehoseEndpoint: firehose.endpoint });
    const plain = new FirehoseDeliveryStream(client, 'before');
    try {
      const outcomes: CallOutcome[] = [];
      for (const e of before) outcomes.push(await plain.putRecordBatch([Buffer.from(`${JSON.stringify(e)}\n`)]));
      expect(outcomes.every((o) => o.kind === 'answered' && o.errors.every((x) => x === undefined))).toBe(true);
    } finally {
      client.destroy();
    }
    await firehose.flush();

    const objects = await store.list('raw/');
    expect(objects).toHaveLength(2);
    expect(objects.every((o) => o.key.endsWith('.gz'))).toBe(true);
    // The archiver's object: several records, i.e. several gzip members, one after another.
    expect(received.length).toBeGreaterThan(1);
    expect(received.some((r) => r.lines > 1)).toBe(true);
    const texts = await Promise.all(objects.map(async (o) => gunzipSync(await store.get(o.key)).toString()));
    const ids = texts.flatMap((t) => t.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { id: string }).id));
    expect(ids.sort()).toEqual(events.map((e) => e.id).sort());

    const loader = await startLoader(loadLoaderConfig(env), silentLogger);
    try {
      const counts = await waitFor(async () => {
        const [row] = await loader.warehouse.query('SELECT (SELECT count(*) FROM raw_events)::INTEGER AS raw, (SELECT count(*) FROM load_log)::INTEGER AS objects');
        return row && row.raw === N ? row : undefined;
      }, 'every event in raw_events', 20_000);
      expect(counts).toEqual({ raw: N, objects: 2 });
      const loaded = await loader.warehouse.query('SELECT id FROM raw_events ORDER BY id');
      expect(loaded.map((r) => r.id)).toEqual(events.map((e) => e.id).sort());
    } finally {
      await loader.stop();
    }
  }, 90_000);

});
