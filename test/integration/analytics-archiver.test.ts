// The archiver on the local stack (kinesalite, dynalite) with its own Firehose stand-in that
// fails records and throttles calls: every valid event reaches the archive (records packed and
// gzipped by the archiver, objects multi-member gzip), malformed ones go to the DLQ with their
// reason, and the shard is checkpointed only after Firehose accepted them all.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { loadArchiverConfig } from '../../analytics/config.js';
import { DLQ_SOURCE } from '../../analytics/archiver.js';
import { startArchiver, type RunningArchiver } from '../../analytics/service.js';
import { DynamoDeadLetterStore } from '../../lib/dlq.js';
import { DynamoLeaseStore } from '@taskflow/stream';
import { silentLogger } from '../../lib/logger.js';
import { FsObjectStore } from '../../lib/object-store.js';
import { type LocalFirehose, startFirehose } from '../../infra/local/firehose/server.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { archiverTestEnv, createTestStream, createTestTables, dynamoClient, kinesisClient } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

const N = 600;
let kinesis: KinesisClient;
let dynamo: DynamoDBClient;
let streamName: string;
let tables: Record<string, string>;
let dir: string;
let store: FsObjectStore;
let firehose: LocalFirehose;
let archiver: RunningArchiver;
let calls = 0;
const recordAttempts = new Map<string, number>();
const linesPerRecord: number[] = [];

beforeAll(async () => {
  kinesis = kinesisClient();
  dynamo = dynamoClient();
  [streamName, tables] = await Promise.all([createTestStream('archiver', 2), createTestTables('archiver', ['leases', 'dlq'])]);
  dir = mkdtempSync(join(tmpdir(), 'archiver-test-'));
  store = new FsObjectStore(dir);
  firehose = await startFirehose({
    store: () => store,
    streams: [{ name: 'archive', bucket: 'b', prefix: 'raw/', errorPrefix: 'errors/', hints: { sizeInMBs: 1, intervalInSeconds: 0 }, compression: 'UNCOMPRESSED', fileExtension: '.gz' }],
    faults: {
      // Every third call is throttled; every record (a gzip member of lines) fails on its first
      // attempt when the LSN of one of its events ends in 3 or 7.
      throttleCall: () => ++calls % 3 === 0,
      failRecord: (_s, data) => {
        const ids = gunzipSync(data).toString().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { id: string }).id);
        linesPerRecord.push(ids.length);
        const n = (recordAttempts.get(ids[0]!) ?? 0) + 1;
        recordAttempts.set(ids[0]!, n);
        return n === 1 && ids.some((id) => /[37]-\d+$/.test(id)) ? 'ServiceUnavailableException' : undefined;
      },
    },
  });
  const config = loadArchiverConfig({
    ...archiverTestEnv({ streamName, firehoseEndpoint: firehose.endpoint, tables }),
    KINESIS_MAX_RECORDS: '250',
    ARCHIVER_BACKOFF_BASE_MS: '5',
    ARCHIVER_BACKOFF_MAX_MS: '50',
  });
  archiver = await startArchiver(config, silentLogger);
});

afterAll(async () => {
  await archiver?.stop();
  await firehose?.stop();
  kinesis?.destroy();
  dynamo?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function archivedIds(): Promise<string[]> {
  const ids: string[] = [];
  for (const o of await store.list('raw/')) {
    const text = gunzipSync(await store.get(o.key)).toString();
    expect(text.endsWith('\n')).toBe(true);
    for (const line of text.slice(0, -1).split('\n')) ids.push((JSON.parse(line) as { id: string }).id);
  }
  return ids;
}

describe('archiver', () => {
  it('archives every valid event through partial failures and throttling, dead-letters the malformed, and checkpoints', async () => {
    const events = Array.from({ length: N }, (_, i) =>
      sampleEvent('task.updated', { commitLsn: 0x1000n + BigInt(i), workspaceId: `11111111-1111-4111-8111-00000000000${i % 4}`, entityId: `33333333-3333-4333-8333-${String(i).padStart(12, '0')}` }),
    );
    const records = [
      ...events.map((e) => ({ PartitionKey: e.workspaceid, Data: Buffer.from(JSON.stringify(e)) })),
      { PartitionKey: 'w', Data: Buffer.from('{not json') },
      { PartitionKey: 'w', Data: Buffer.from(JSON.stringify({ ...events[0], type: 'taskflow.nothing.happened' })) },
    ];
    for (let i = 0; i < records.length; i += 500) {
      const out = await kinesis.send(new PutRecordsCommand({ StreamName: streamName, Records: records.slice(i, i + 500) }));
      expect(out.FailedRecordCount).toBe(0);
    }
    const ids = await waitFor(async () => {
      const archived = await archivedIds();
      return new Set(archived).size >= N && archived;
    }, `all ${N} events archived`, 30_000, 100);
    expect([...new Set(ids)].sort()).toEqual(events.map((e) => e.id).sort());
    // Only failed records were sent again: nothing arrives twice without a crash.
    expect(ids).toHaveLength(N);
    expect(calls).toBeGreaterThan(2);
    expect([...recordAttempts.values()].some((n) => n > 1)).toBe(true);
    // Lines were packed: fewer Firehose records than events.
    expect(Math.max(...linesPerRecord)).toBeGreaterThan(1);

    const dlq = new DynamoDeadLetterStore(dynamo, tables.dlq!);
    const letters = await dlq.list({ source: DLQ_SOURCE });
    expect(letters.map((l) => l.reason).sort()).toEqual(['malformed_json', 'unknown_type']);

    // Checkpoints follow: both shards' leases end at their last record.
    const leases = new DynamoLeaseStore(dynamo, tables.leases!, 'analytics-archiver');
    let all: Awaited<ReturnType<typeof leases.list>> = [];
    await waitFor(
      async () => {
        all = await leases.list();
        return all.length === 2 && all.every((l) => l.checkpoint !== 'TRIM_HORIZON');
      },
      () => `both leases checkpointed: ${JSON.stringify(all)}`,
      10_000,
      100,
    );
  });
});
