// The enhanced fan-out stand-in (infra/local/fanout.ts) behaves as Kinesis does where a reader
// depends on it: the consumer registry, subscription renewal, ResourceInUseException and the
// takeover after 5 s, a closed shard's last event naming its children (resharding),
// MillisBehindLatest, and backpressure (a reader that does not read is not pushed to). Checked
// with the real SDK's SubscribeToShardCommand, and a raw HTTP/2 client for flow control.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DescribeStreamConsumerCommand, KinesisClient, ListStreamConsumersCommand, PutRecordsCommand, RegisterStreamConsumerCommand, SplitShardCommand, SubscribeToShardCommand, type SubscribeToShardEvent, type SubscribeToShardEventStream } from '@aws-sdk/client-kinesis';
import { NodeHttp2Handler } from '@smithy/node-http-handler';
import { listShards } from '@taskflow/stream';
import http2 from 'node:http2';
import { type FanOutStandIn, registerStreamConsumer, startFanOutStandIn, streamArn } from '../../infra/local/fanout.js';
import { awsConfig, createTestStream, kinesisClient } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

let kinesis: KinesisClient;
let client: KinesisClient;
let standIn: FanOutStandIn;
let region: string;

beforeAll(async () => {
  kinesis = kinesisClient();
  region = awsConfig().region;
  // Kinesis' 5-minute subscriptions and 5 s takeover; nothing wakes this one, it looks every 25 ms.
  standIn = await startFanOutStandIn({ kinesis, pollMs: 25 });
  client = new KinesisClient({ region, endpoint: standIn.url, credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, requestHandler: new NodeHttp2Handler(), maxAttempts: 1 });
});

afterAll(async () => {
  client.destroy();
  await standIn.close();
  kinesis.destroy();
});

async function put(stream: string, count: number, bytes = 16): Promise<void> {
  const Records = Array.from({ length: count }, (_, n) => ({ PartitionKey: `k${n}`, Data: Buffer.alloc(bytes, n % 256) }));
  const out = await kinesis.send(new PutRecordsCommand({ StreamName: stream, Records }));
  expect(out.FailedRecordCount ?? 0).toBe(0);
}

async function subscribe(consumerArn: string, shardId: string): Promise<AsyncIterator<SubscribeToShardEventStream>> {
  const out = await client.send(new SubscribeToShardCommand({ ConsumerARN: consumerArn, ShardId: shardId, StartingPosition: { Type: 'TRIM_HORIZON' } }));
  return out.EventStream![Symbol.asyncIterator]();
}

/** Events until `until` says enough, or the subscription ends. */
async function eventsUntil(events: AsyncIterator<SubscribeToShardEventStream>, until: (seen: SubscribeToShardEvent[]) => boolean): Promise<SubscribeToShardEvent[]> {
  const seen: SubscribeToShardEvent[] = [];
  while (!until(seen)) {
    const step = await events.next();
    if (step.done) break;
    if (step.value.SubscribeToShardEvent) seen.push(step.value.SubscribeToShardEvent);
  }
  return seen;
}
const recordCount = (events: SubscribeToShardEvent[]) => events.reduce((n, e) => n + (e.Records?.length ?? 0), 0);

describe('enhanced fan-out stand-in', () => {
  it('keeps a registry of stream consumers, and refuses a subscription of one it does not know', async () => {
    const stream = await createTestStream('fanout-registry', 1);
    const arn = await registerStreamConsumer(standIn.url, region, stream, 'reader');
    expect(arn).toMatch(new RegExp(`^${streamArn(region, stream)}/consumer/reader:\\d+$`));
    // Registered already: the same ARN back, as the deployment's idempotent registration expects.
    await expect(client.send(new RegisterStreamConsumerCommand({ StreamARN: streamArn(region, stream), ConsumerName: 'reader' }))).rejects.toMatchObject({ name: 'ResourceInUseException' });
    expect(await registerStreamConsumer(standIn.url, region, stream, 'reader')).toBe(arn);
    expect((await client.send(new DescribeStreamConsumerCommand({ ConsumerARN: arn }))).ConsumerDescription).toMatchObject({ ConsumerName: 'reader', ConsumerStatus: 'ACTIVE', StreamARN: streamArn(region, stream) });
    expect((await client.send(new ListStreamConsumersCommand({ StreamARN: streamArn(region, stream) }))).Consumers?.map((c) => c.ConsumerName)).toEqual(['reader']);
    const [shard] = await listShards(kinesis, stream);
    await expect(subscribe(`${streamArn(region, stream)}/consumer/unknown:1`, shard!.shardId)).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });

  it('refuses a second subscription within 5 s (ResourceInUseException); a later one takes over and the first ends with that exception', async () => {
    const stream = await createTestStream('fanout-takeover', 1);
    const arn = await registerStreamConsumer(standIn.url, region, stream, 'reader');
    const [shard] = await listShards(kinesis, stream);
    await put(stream, 3);
    const first = await subscribe(arn, shard!.shardId);
    expect(recordCount(await eventsUntil(first, (seen) => recordCount(seen) >= 3))).toBe(3);
    await expect(subscribe(arn, shard!.shardId)).rejects.toMatchObject({ name: 'ResourceInUseException' });
    // Retried as the reader does, until the 5 s have passed and it takes over.
    let second: AsyncIterator<SubscribeToShardEventStream> | undefined;
    await waitFor(async () => (second = await subscribe(arn, shard!.shardId).catch(() => undefined)) !== undefined, 'the takeover after 5 s', 15_000);
    await expect(eventsUntil(first, () => false)).rejects.toMatchObject({ name: 'ResourceInUseException' });
    expect(recordCount(await eventsUntil(second!, (seen) => recordCount(seen) >= 3))).toBe(3);
    await second!.return?.();
  });

  it('ends a subscription after its time with a continuation to renew from, and reports MillisBehindLatest', async () => {
    const short = await startFanOutStandIn({ kinesis, subscriptionMs: 500, pollMs: 25 });
    const shortClient = new KinesisClient({ region, endpoint: short.url, credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, requestHandler: new NodeHttp2Handler(), maxAttempts: 1 });
    try {
      const stream = await createTestStream('fanout-renew', 1);
      const arn = await registerStreamConsumer(short.url, region, stream, 'reader');
      const [shard] = await listShards(kinesis, stream);
      await put(stream, 5);
      const out = await shortClient.send(new SubscribeToShardCommand({ ConsumerARN: arn, ShardId: shard!.shardId, StartingPosition: { Type: 'TRIM_HORIZON' } }));
      const events = await eventsUntil(out.EventStream![Symbol.asyncIterator](), () => false); // until the subscription's end
      expect(recordCount(events)).toBe(5);
      expect(events.every((e) => typeof e.MillisBehindLatest === 'number' && e.ContinuationSequenceNumber)).toBe(true);
      const continuation = events.at(-1)!.ContinuationSequenceNumber!;
      await put(stream, 2);
      const renewed = await shortClient.send(new SubscribeToShardCommand({ ConsumerARN: arn, ShardId: shard!.shardId, StartingPosition: { Type: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: continuation } }));
      expect(recordCount(await eventsUntil(renewed.EventStream![Symbol.asyncIterator](), (seen) => recordCount(seen) >= 2))).toBe(2);
    } finally {
      shortClient.destroy();
      await short.close();
    }
  });

  it('gives a closed shard read to its end a last event without continuation, naming its child shards', async () => {
    const stream = await createTestStream('fanout-reshard', 1);
    const arn = await registerStreamConsumer(standIn.url, region, stream, 'reader');
    const [parent] = await listShards(kinesis, stream);
    await put(stream, 4);
    await kinesis.send(new SplitShardCommand({ StreamName: stream, ShardToSplit: parent!.shardId, NewStartingHashKey: (2n ** 127n).toString() }));
    await waitFor(async () => (await listShards(kinesis, stream)).length === 3, 'the split');
    const events = await eventsUntil(await subscribe(arn, parent!.shardId), () => false);
    expect(recordCount(events)).toBe(4);
    const last = events.at(-1)!;
    expect(last.ContinuationSequenceNumber).toBeUndefined();
    const children = (await listShards(kinesis, stream)).filter((s) => s.parentShardIds.includes(parent!.shardId)).map((s) => s.shardId);
    expect(children).toHaveLength(2);
    expect(last.ChildShards?.map((c) => c.ShardId).sort()).toEqual(children.sort());
    expect(last.ChildShards?.every((c) => c.ParentShards?.includes(parent!.shardId))).toBe(true);
  });

  it('stops pushing to a reader that does not read (HTTP/2 flow control) and resumes, nothing lost, when it reads again', async () => {
    const stream = await createTestStream('fanout-backpressure', 1);
    const arn = await registerStreamConsumer(standIn.url, region, stream, 'reader');
    const [shard] = await listShards(kinesis, stream);
    const session = http2.connect(standIn.url);
    try {
      const req = session.request({ ':method': 'POST', ':path': '/', 'x-amz-target': 'Kinesis_20131202.SubscribeToShard', 'content-type': 'application/x-amz-json-1.1' });
      req.end(JSON.stringify({ ConsumerARN: arn, ShardId: shard!.shardId, StartingPosition: { Type: 'TRIM_HORIZON' } }));
      req.pause();
      // 3 MB of records: far beyond the stream's flow-control window while nothing is read.
      await put(stream, 30, 100_000);
      await waitFor(() => standIn.backlogged() === 1, 'the stand-in to wait for its reader');
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.resume();
      await waitFor(() => recordsIn(Buffer.concat(chunks)) >= 30, 'every record once the reader reads');
      expect(recordsIn(Buffer.concat(chunks))).toBe(30);
      expect(standIn.backlogged()).toBe(0);
      req.close();
    } finally {
      session.close();
    }
  });
});

/** Records in the complete SubscribeToShardEvent messages of an event-stream body. */
function recordsIn(body: Buffer): number {
  let n = 0;
  for (let at = 0; at + 12 <= body.length; ) {
    const total = body.readUInt32BE(at);
    if (at + total > body.length) break;
    const headersLength = body.readUInt32BE(at + 4);
    const payload = body.subarray(at + 12 + headersLength, at + total - 4);
    const parsed = JSON.parse(payload.toString() || '{}') as { Records?: unknown[] };
    n += parsed.Records?.length ?? 0;
    at += total;
  }
  return n;
}
