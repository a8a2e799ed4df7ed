// The enhanced fan-out reader (packages/stream consumer/fanout-reader.ts) with the real
// @aws-sdk/client-kinesis SubscribeToShardCommand over HTTP/2, against the local stand-in
// (infra/local/fanout.ts) reading kinesalite: records in order, none lost or repeated
// across subscription renewals, and a crashed consumer's successor resumes after its checkpoint.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { NodeHttp2Handler } from '@smithy/node-http-handler';
import { type Consumer, FanOutShardReader, type ShardProcessor, TRIM_HORIZON, createConsumer, listShards } from '@taskflow/stream';
import { type FanOutStandIn, registerStreamConsumer, startFanOutStandIn } from '../../infra/local/fanout.js';
import { awsConfig, createTestStream, createTestTables, dynamoClient, kinesisClient } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

let kinesis: KinesisClient;
let dynamo: DynamoDBClient;
let fanOutClient: KinesisClient;
let standIn: FanOutStandIn;
let stream: string;
let ARN: string;
let crashArn: string;

beforeAll(async () => {
  kinesis = kinesisClient();
  dynamo = dynamoClient();
  stream = await createTestStream('fanout', 1);
  // Subscriptions of 1.5 s instead of 5 minutes: every test crosses several renewals.
  standIn = await startFanOutStandIn({ kinesis, subscriptionMs: 1500, pollMs: 25 });
  ARN = await registerStreamConsumer(standIn.url, awsConfig().region, stream, 'fanout-test');
  crashArn = await registerStreamConsumer(standIn.url, awsConfig().region, stream, 'fanout-test-crash');
  fanOutClient = new KinesisClient({ region: awsConfig().region, endpoint: standIn.url, credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, requestHandler: new NodeHttp2Handler(), maxAttempts: 1 });
});

afterAll(async () => {
  fanOutClient.destroy();
  await standIn.close();
  kinesis.destroy();
  dynamo.destroy();
});

async function put(from: number, to: number): Promise<void> {
  const Records = [];
  for (let n = from; n < to; n++) Records.push({ PartitionKey: `k${n % 3}`, Data: Buffer.from(JSON.stringify({ n })) });
  const out = await kinesis.send(new PutRecordsCommand({ StreamName: stream, Records }));
  expect(out.FailedRecordCount ?? 0).toBe(0);
}
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const numberOf = (data: Uint8Array) => (JSON.parse(Buffer.from(data).toString()) as { n: number }).n;

describe('enhanced fan-out reader against the SubscribeToShard stand-in', () => {
  it('reads every record once, in order, across subscription renewals', async () => {
    const [shard] = await listShards(kinesis, stream);
    const reader = new FanOutShardReader({ kinesis: fanOutClient, consumerArn: ARN });
    const sub = reader.open(shard!.shardId, { type: 'TRIM_HORIZON' });
    const seen: number[] = [];
    const controller = new AbortController();
    const reading = (async () => {
      while (!controller.signal.aborted) for (const r of (await sub.next(controller.signal)).records) seen.push(numberOf(r.data));
    })();
    try {
      await put(0, 40);
      await waitFor(() => seen.length >= 40, 'the first 40 records');
      const subscriptionsBefore = standIn.subscriptions();
      await waitFor(() => standIn.subscriptions() >= subscriptionsBefore + 2, 'two subscription renewals', 15_000);
      await put(40, 80);
      await waitFor(() => seen.length >= 80, 'the records put after the renewals');
      expect(seen).toEqual(range(0, 80));
    } finally {
      controller.abort();
      await reading;
      sub.close();
    }
  });

  it('chosen by its settings (fanOut), a crashed consumer is taken over after the failover time and resumes after its checkpoint', async () => {
    const { leases } = (await createTestTables('fanout', ['leases'])) as { leases: string };
    const delivered: { worker: string; n: number }[] = [];
    const processor = (worker: string) => (): ShardProcessor => ({
      initialize: async () => {},
      processRecords: async (batch, checkpointer) => {
        for (const r of batch.records) delivered.push({ worker, n: numberOf(r.data) });
        await checkpointer.checkpoint();
      },
      shutdown: async () => {},
    });
    const consumer = (worker: string): Consumer =>
      createConsumer({ name: 'fanout-test', streamName: stream, kinesis, dynamo, leaseTable: leases, workerId: worker, processor: processor(worker), fanOut: { consumerArn: crashArn, endpoint: standIn.url }, failoverTimeMs: 2000, shardSyncIntervalMs: 500, initialPosition: TRIM_HORIZON });
    const base = 1000;
    await put(base, base + 30);
    const a = consumer('a');
    await a.start();
    let b: Consumer | undefined;
    try {
      await waitFor(() => delivered.filter((d) => d.n >= base).length >= 30, 'worker a to read 30 records');
      await a.stop('abandon'); // a crash: no release, no final checkpoint
      await put(base + 30, base + 50);
      b = consumer('b');
      await b.start();
      await waitFor(() => delivered.some((d) => d.worker === 'b' && d.n === base + 49), 'worker b to take over and read on', 30_000);
      // Everything a checkpointed is not read again; nothing is lost.
      const ours = delivered.filter((d) => d.n >= base);
      expect(ours.map((d) => d.n)).toEqual(range(base, base + 50).filter((n) => ours.some((d) => d.n === n)));
      expect(new Set(ours.map((d) => d.n))).toEqual(new Set(range(base, base + 50)));
      expect(ours.filter((d) => d.worker === 'b').map((d) => d.n)).toEqual(range(base + 30, base + 50));
    } finally {
      await a.stop('abandon');
      await b?.stop('abandon');
    }
  });
});
