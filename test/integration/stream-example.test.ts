// The example consumer of packages/stream (examples/change-log.ts) against the local stack's
// kinesalite and dynalite: every change once and in order per workspace, though records are
// redelivered and a bad one is on the stream; after a restart it resumes from its checkpoints.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import type { StreamEvent } from '@taskflow/stream';
import { encodeAggregated, encodePlain } from '@taskflow/stream/codec';
import { DynamoDeadLetterStore } from '../../lib/dlq.js';
import { silentLogger } from '../../lib/logger.js';
import { changeLog } from '../../packages/stream/examples/change-log.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { createTestStream, createTestTables, dynamoClient, kinesisClient, testStackEnv } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

const WORKSPACES = ['11111111-1111-4111-8111-0000000000e1', '11111111-1111-4111-8111-0000000000e2', '11111111-1111-4111-8111-0000000000e3'];

let kinesis: KinesisClient;
let dynamo: DynamoDBClient;
let tables: Record<string, string>;
let stream: string;

beforeAll(async () => {
  kinesis = kinesisClient();
  dynamo = dynamoClient();
  tables = await createTestTables('stream-example', ['leases', 'dlq']);
  stream = await createTestStream('stream-example', 2);
});

afterAll(() => {
  kinesis.destroy();
  dynamo.destroy();
});

/** `count` task updates per workspace from commit LSN `fromLsn` on, interleaved across workspaces (their ids ascend). */
function changes(fromLsn: number, count: number): { ws: string; bytes: Buffer; id: string }[] {
  const out = [];
  for (let i = 0; i < count; i++) {
    for (const [w, ws] of WORKSPACES.entries()) {
      const e = sampleEvent('task.updated', { workspaceId: ws, commitLsn: BigInt(fromLsn + i * 16 + w), txIndex: 0 });
      out.push({ ws, bytes: Buffer.from(JSON.stringify(e)), id: e.id });
    }
  }
  return out;
}

async function put(records: { partitionKey: string; data: Uint8Array }[]): Promise<void> {
  for (let i = 0; i < records.length; i += 100) {
    const out = await kinesis.send(new PutRecordsCommand({ StreamName: stream, Records: records.slice(i, i + 100).map((r) => ({ PartitionKey: r.partitionKey, Data: r.data })) }));
    expect(out.FailedRecordCount ?? 0).toBe(0);
  }
}

function start(received: StreamEvent[]) {
  const env = { ...testStackEnv(), CHANGE_STREAM_NAME: stream, DYNAMODB_TABLE_LEASES: tables.leases!, KINESIS_POLL_INTERVAL_MS: '20', KINESIS_MIN_CALL_SPACING_MS: '0', KINESIS_FAILOVER_MS: '3000', KINESIS_SHARD_SYNC_MS: '1000', KINESIS_WORKER_ID: 'example-0' };
  return changeLog({ env, kinesis, dynamo, dlq: new DynamoDeadLetterStore(dynamo, tables.dlq!), logger: silentLogger, onChange: (e) => void received.push(e) });
}

function expectOnceInOrder(received: StreamEvent[], expectedIds: string[]): void {
  expect(received.map((e) => e.id).sort()).toEqual([...expectedIds].sort());
  for (const ws of WORKSPACES) {
    const ids = received.filter((e) => e.workspaceId === ws).map((e) => e.id);
    expect(ids).toEqual([...ids].sort());
  }
}

describe('the example consumer (packages/stream/examples/change-log.ts)', () => {
  it('hands over every change once in workspace order, dead-letters a bad record, and resumes from its checkpoints', async () => {
    const first = changes(0x1000, 20);
    // Plain records, an aggregated one, every record of the first half again (a producer's retry), and garbage.
    const plain = first.slice(0, 45).map((c) => ({ partitionKey: c.ws, data: encodePlain(c.bytes) }));
    const aggregated = WORKSPACES.map((ws) => ({ partitionKey: ws, data: encodeAggregated(ws, first.slice(45).filter((c) => c.ws === ws).map((c) => c.bytes)) }));
    // A last change per workspace, put after the repeats: once it is in, its shard's repeats were read.
    const last = changes(0x8000, 1);
    await put([...plain, ...aggregated, ...plain.slice(0, 30), { partitionKey: WORKSPACES[0]!, data: Buffer.from('{"not": "an event"') }, ...last.map((c) => ({ partitionKey: c.ws, data: encodePlain(c.bytes) }))]);
    const expected = [...first, ...last].map((c) => c.id);

    const received: StreamEvent[] = [];
    let consumer = start(received);
    await consumer.start();
    try {
      await waitFor(() => last.every((c) => received.some((e) => e.id === c.id)), 'the last change of every workspace', 60_000);
      expectOnceInOrder(received, expected);
      const dlq = new DynamoDeadLetterStore(dynamo, tables.dlq!);
      await waitFor(async () => (await dlq.list({ source: 'change-log' })).length === 1, 'the bad record dead-lettered', 10_000);
    } finally {
      await consumer.stop();
    }

    // Restarted: only what came after the checkpoints, though an old record is put again.
    const second = changes(0x9000, 5);
    await put([...plain.slice(0, 3), ...second.map((c) => ({ partitionKey: c.ws, data: encodePlain(c.bytes) }))]);
    const afterRestart: StreamEvent[] = [];
    consumer = start(afterRestart);
    await consumer.start();
    try {
      await waitFor(() => afterRestart.length >= second.length, 'the changes put after the restart', 60_000);
      expectOnceInOrder(afterRestart, second.map((c) => c.id));
    } finally {
      await consumer.stop();
    }
  });
});
