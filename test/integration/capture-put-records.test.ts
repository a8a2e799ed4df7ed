// Capture's PutRecords past the SDK's middleware (capture/producer.ts on lib/aws-direct.ts): against kinesalite the
// records land as the SDK would put them; against a recording fake, a request Kinesis refused as a
// whole goes through the SDK once more, while throttling, 5xx and transport errors throw for the
// producer's backoff (no second request).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { kinesisPutRecords } from '../../capture/producer.js';
import { createKinesisClient } from '../../lib/aws.js';
import { createTestStream, kinesisClient } from '../support/stack.js';

let kinesis: KinesisClient;
let stream: string;

beforeAll(async () => {
  kinesis = kinesisClient();
  stream = await createTestStream('kinesis-direct', 2);
}, 60_000);

afterAll(() => kinesis?.destroy());

/** A stand-in for Kinesis answering each request with the next canned answer; records the targets. */
async function fakeKinesis(answers: { status: number; body: unknown }[]): Promise<{ server: Server; url: string; targets: string[] }> {
  const targets: string[] = [];
  const server = createServer((req, res) => {
    targets.push(String(req.headers['x-amz-target']));
    req.resume();
    req.on('end', () => {
      const a = answers.shift() ?? { status: 500, body: {} };
      res.writeHead(a.status, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, targets };
}

describe('PutRecords sent directly', () => {
  it('puts the records on the stream, with per-record results in request order', async () => {
    const put = kinesisPutRecords(kinesis, stream);
    const records = Array.from({ length: 20 }, (_, i) => ({ partitionKey: `ws-${i % 5}`, data: Buffer.from(JSON.stringify({ i })) }));
    const results = await put(records);
    expect(results).toHaveLength(20);
    expect(results.every((r) => r.ok && r.shardId?.startsWith('shardId-'))).toBe(true);
    const shards = (await kinesis.send(new ListShardsCommand({ StreamName: stream }))).Shards ?? [];
    const read: { key: string; i: number }[] = [];
    for (const s of shards) {
      const it = await kinesis.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: s.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }));
      const out = await kinesis.send(new GetRecordsCommand({ ShardIterator: it.ShardIterator! }));
      for (const r of out.Records ?? []) read.push({ key: r.PartitionKey!, i: (JSON.parse(Buffer.from(r.Data!).toString()) as { i: number }).i });
    }
    expect(read.map((r) => r.i).sort((a, b) => a - b)).toEqual(records.map((_, i) => i));
    // each key's records in the order they were put
    for (let k = 0; k < 5; k++) expect(read.filter((r) => r.key === `ws-${k}`).map((r) => r.i)).toEqual([k, k + 5, k + 10, k + 15]);
  });

  it('lets the SDK send a request refused as a whole, and throws on throttling and 5xx without a second request', async () => {
    const refused = { status: 400, body: { __type: 'InvalidSignatureException', message: 'clock' } };
    const ok = { status: 200, body: { FailedRecordCount: 1, Records: [{ ShardId: 'shardId-000000000000', SequenceNumber: '1' }, { ErrorCode: 'InternalFailure', ErrorMessage: 'x' }] } };
    const fake = await fakeKinesis([refused, ok, { status: 400, body: { __type: 'ProvisionedThroughputExceededException' } }, { status: 503, body: {} }]);
    const client = createKinesisClient({ region: 'us-east-1', kinesisEndpoint: fake.url });
    try {
      const put = kinesisPutRecords(client, 'any');
      const two = [
        { partitionKey: 'a', data: Buffer.from('1') },
        { partitionKey: 'b', data: Buffer.from('2') },
      ];
      expect(await put(two)).toEqual([{ ok: true, shardId: 'shardId-000000000000' }, { ok: false, errorCode: 'InternalFailure' }]);
      expect(fake.targets).toHaveLength(2); // the direct attempt, then the SDK's
      await expect(put(two)).rejects.toMatchObject({ name: 'ProvisionedThroughputExceededException' });
      await expect(put(two)).rejects.toThrow(/503/);
      expect(fake.targets).toEqual(Array(4).fill('Kinesis_20131202.PutRecords'));
    } finally {
      client.destroy();
      await new Promise((resolve) => fake.server.close(resolve));
    }
  });
});
