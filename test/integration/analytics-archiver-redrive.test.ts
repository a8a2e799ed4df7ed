// The archiver's dead letters redriven to Firehose (`taskflow analytics dlq redrive --source
// archiver`) on the local stack (kinesalite, dynalite) and the local Firehose stand-in: a record
// a stricter Firehose refused (record_too_large) and a record that is not JSON are dead-lettered;
// redriven to the same Firehose both are refused again and stay (exit 1); once Firehose takes the
// record (a stand-in with Firehose's own limits, throttling and failing records on their first
// attempt), the redrive puts it in the archive exactly once, and a second redrive adds nothing.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DLQ_SOURCE } from '../../analytics/archiver.js';
import { loadArchiverConfig } from '../../analytics/config.js';
import { startArchiver, type RunningArchiver } from '../../analytics/service.js';
import { tableEnvVar } from '../../lib/config.js';
import { DynamoDeadLetterStore } from '../../lib/dlq.js';
import { silentLogger } from '../../lib/logger.js';
import { FsObjectStore } from '../../lib/object-store.js';
import { type DeliveryStreamConfig, type LocalFirehose, startFirehose } from '../../infra/local/firehose/server.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { archiverTestEnv, createTestStream, createTestTables, dynamoClient, kinesisClient } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

let kinesis: KinesisClient;
let dynamo: DynamoDBClient;
let dir: string;
let store: FsObjectStore;
let strict: LocalFirehose;
let archiver: RunningArchiver;
let env: Record<string, string>;

const stream: DeliveryStreamConfig = { name: 'archive', bucket: 'b', prefix: 'raw/', errorPrefix: 'errors/', hints: { sizeInMBs: 1, intervalInSeconds: 0 }, compression: 'UNCOMPRESSED', fileExtension: '.gz' };
const small = sampleEvent('task.updated', { commitLsn: 0x4000n, row: { status: 'done' } });
// Hex hardly compresses: gzipped by the archiver it is still above the stricter Firehose's 3,000 bytes.
const big = sampleEvent('task.created', { commitLsn: 0x4001n, row: { description: randomBytes(4000).toString('hex') } });

async function archivedIds(): Promise<string[]> {
  const ids: string[] = [];
  for (const o of await store.list('raw/')) {
    for (const line of gunzipSync(await store.get(o.key)).toString().split('\n').filter(Boolean)) ids.push((JSON.parse(line) as { id: string }).id);
  }
  return ids.sort();
}

/** The CLI, run asynchronously: the Firehose stand-ins answer it from this process. */
function redrive(firehoseEndpoint: string): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/taskflow.js', 'analytics', 'dlq', 'redrive', '--source', 'archiver'], { env: { ...process.env, ...env, FIREHOSE_ENDPOINT: firehoseEndpoint, NODE_OPTIONS: '' }, encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  kinesis = kinesisClient();
  dynamo = dynamoClient();
  const [streamName, tables] = await Promise.all([createTestStream('archiver-redrive', 1), createTestTables('archiver-redrive', ['leases', 'dlq'])]);
  dir = mkdtempSync(join(tmpdir(), 'archiver-redrive-'));
  store = new FsObjectStore(dir);
  // Refuses any record above 3,000 bytes, as Firehose refuses one above 1,000 KiB.
  strict = await startFirehose({ store: () => store, streams: [stream], limits: { bytesPerRecord: 3000 } });
  env = {
    ...archiverTestEnv({ streamName, firehoseEndpoint: strict.endpoint, tables }),
    ARCHIVER_BACKOFF_BASE_MS: '5',
    ARCHIVER_BACKOFF_MAX_MS: '50',
  };
  archiver = await startArchiver(loadArchiverConfig(env), silentLogger);
});

afterAll(async () => {
  await archiver?.stop();
  await strict?.stop();
  kinesis?.destroy();
  dynamo?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('archiver dead letters redriven to Firehose', () => {
  it('keeps what Firehose still refuses, and puts what it takes in the archive once', async () => {
    const records = [Buffer.from(JSON.stringify(small)), Buffer.from('not json'), Buffer.from(JSON.stringify(big))];
    await kinesis.send(new PutRecordsCommand({ StreamName: env.CHANGE_STREAM_NAME, Records: records.map((Data) => ({ PartitionKey: small.workspaceid, Data })) }));
    const letters = new DynamoDeadLetterStore(dynamo, env[tableEnvVar('dlq')]!);
    const dead = await waitFor(async () => {
      const l = await letters.list({ source: DLQ_SOURCE });
      return l.length === 2 ? l : undefined;
    }, 'the two dead letters', 20_000);
    expect(dead.map((d) => d.reason).sort()).toEqual(['record_too_large', 'undecodable_record']);
    expect(await archivedIds()).toEqual([small.id]);

    // The same Firehose refuses the record again: both stay, named, exit 1.
    const again = await redrive(strict.endpoint);
    expect(again.stdout).toMatch(/0 dead letter\(s\) redriven, 2 refused/);
    expect(again.stderr).toMatch(/refused by Firehose: ValidationException/);
    expect(again.status).toBe(1);

    // A Firehose that takes it, throttling every other call and failing each record once.
    let calls = 0;
    const attempts = new Map<string, number>();
    const taking = await startFirehose({
      store: () => store,
      streams: [stream],
      faults: {
        throttleCall: () => ++calls % 2 === 0,
        failRecord: (_s, data) => {
          const id = (JSON.parse(gunzipSync(data).toString().split('\n')[0]!) as { id: string }).id;
          attempts.set(id, (attempts.get(id) ?? 0) + 1);
          return attempts.get(id) === 1 ? 'ServiceUnavailableException' : undefined;
        },
      },
    });
    try {
      const done = await redrive(taking.endpoint);
      expect(done.stdout).toMatch(/1 dead letter\(s\) redriven, 1 refused/);
      expect(done.stdout).toContain(`redriven ${dead.find((d) => d.reason === 'record_too_large')!.id} (record_too_large)`);
      expect(attempts.get(big.id)).toBeGreaterThan(1);
      await waitFor(async () => ((await archivedIds()).length === 2 ? true : undefined), 'the redriven record in the archive', 20_000);
      expect(await archivedIds()).toEqual([small.id, big.id].sort());
      // Redriven letters are marked: a second redrive brings nothing twice.
      const second = await redrive(taking.endpoint);
      expect(second.stdout).toMatch(/0 dead letter\(s\) redriven, 1 refused/);
      await taking.flush();
      expect(await archivedIds()).toEqual([small.id, big.id].sort());
      expect((await letters.list({ source: DLQ_SOURCE })).map((d) => d.reason)).toEqual(['undecodable_record']);
    } finally {
      await taking.stop();
    }
  }, 90_000);
});
