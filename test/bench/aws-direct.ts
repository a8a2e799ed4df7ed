// bench:aws-direct — the router's client CPU per AWS request, SDK send vs lib/aws-direct.ts, for
// its two hot requests: the changelog's conditional PutItem (one per project batch) and
// GetRecords (one per shard read, 100 records of 1.5 KB). The answers come from a stub HTTP
// server in a child process (aws-direct-stub.ts), so only the caller's CPU (serialise, sign,
// HTTP, parse) is measured, not an engine's; the two paths alternate round by round on one
// keep-alive pool.
import { loadavg } from 'node:os';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { GetRecordsCommand, KinesisClient } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent } from 'node:http';
import { gzipSync } from 'node:zlib';
import { DirectAwsJson, DYNAMODB_JSON, KINESIS_JSON } from '../../lib/aws-direct.js';
import { forkTsxProcess } from './fork.js';
import { benchParam, median, writeBenchResult } from './report.js';

const PARAMS = { requests: benchParam('BENCH_AWS_DIRECT_REQUESTS', 2000), rounds: benchParam('BENCH_AWS_DIRECT_ROUNDS', 5), concurrency: 8, records: 100, recordBytes: 1500 };

const records = Array.from({ length: PARAMS.records }, (_, i) => ({
  SequenceNumber: `4963${String(i).padStart(52, '0')}`,
  ApproximateArrivalTimestamp: Date.now() / 1000,
  Data: Buffer.from(JSON.stringify({ id: i, pad: 'x'.repeat(PARAMS.recordBytes - 30) })).toString('base64'),
  PartitionKey: '11111111-1111-4111-8111-111111111111',
}));
const getRecordsAnswer = JSON.stringify({ Records: records, NextShardIterator: 'AAAA'.repeat(60), MillisBehindLatest: 0 });

async function main(): Promise<void> {
  const server = forkTsxProcess(new URL('./aws-direct-stub.ts', import.meta.url), { serialization: 'json' });
  const port = await new Promise<number>((resolve) => {
    server.once('message', (m) => resolve(m as number));
    server.send(getRecordsAnswer);
  });
  const local = { region: 'us-east-1', endpoint: `http://127.0.0.1:${port}`, credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true, maxSockets: 64 }) }) };
  const dynamo = new DynamoDBClient(local);
  const kinesis = new KinesisClient({ ...local, maxAttempts: 1 });
  const directDynamo = DirectAwsJson.of(dynamo, DYNAMODB_JSON)!;
  const directKinesis = DirectAwsJson.of(kinesis, KINESIS_JSON)!;
  const body = gzipSync(JSON.stringify(records.slice(0, 10)));
  const item = (i: number) => ({ projectKey: { S: 'w/p' }, seq: { N: String(i) }, toSeq: { N: String(i + 9) }, hwm: { S: 'h' }, ids: { S: 'a,b,c' }, expiresAt: { N: '1' } });
  const condition = 'attribute_not_exists(toSeq)';
  const paths: Record<string, (i: number) => Promise<unknown>> = {
    putItemSdk: (i) => dynamo.send(new PutItemCommand({ TableName: 't', Item: { ...item(i), body: { B: body } }, ConditionExpression: condition })),
    putItemDirect: async (i) => {
      const out = await directDynamo.send('PutItem', { TableName: 't', Item: { ...item(i), body: { B: body.toString('base64') } }, ConditionExpression: condition });
      if (!out.ok) throw new Error(out.message);
    },
    getRecordsSdk: () => kinesis.send(new GetRecordsCommand({ ShardIterator: 'it', Limit: 1000 })),
    getRecordsDirect: async () => {
      const out = await directKinesis.send('GetRecords', { ShardIterator: 'it', Limit: 1000 });
      if (!out.ok) throw new Error(out.message);
      for (const r of out.output.Records as { Data: string }[]) Buffer.from(r.Data, 'base64');
    },
  };
  const perRound: Record<string, number[]> = Object.fromEntries(Object.keys(paths).map((k) => [k, []]));
  const cpuUsPerRequest = async (send: (i: number) => Promise<unknown>, n: number) => {
    const before = process.cpuUsage();
    let next = 0;
    await Promise.all(Array.from({ length: PARAMS.concurrency }, async () => {
      while (next < n) await send(next++);
    }));
    const used = process.cpuUsage(before);
    return (used.user + used.system) / n;
  };
  for (const send of Object.values(paths)) await cpuUsPerRequest(send, 300); // warm-up
  for (let round = 0; round < PARAMS.rounds; round++) {
    for (const [name, send] of Object.entries(paths)) perRound[name]!.push(Math.round(await cpuUsPerRequest(send, PARAMS.requests)));
  }
  server.kill();
  dynamo.destroy();
  kinesis.destroy();
  const med = (k: string) => median(perRound[k]!);
  const metrics = {
    put_item_sdk_cpu_us: med('putItemSdk'),
    put_item_direct_cpu_us: med('putItemDirect'),
    get_records_sdk_cpu_us: med('getRecordsSdk'),
    get_records_direct_cpu_us: med('getRecordsDirect'),
    put_item_direct_to_sdk: Math.round((med('putItemDirect') / med('putItemSdk')) * 100) / 100,
    get_records_direct_to_sdk: Math.round((med('getRecordsDirect') / med('getRecordsSdk')) * 100) / 100,
  };
  const path = writeBenchResult('aws-direct', { ...PARAMS, loadavg1mAtEnd: loadavg()[0], perRound }, metrics);
  console.log(`wrote ${path}\n${JSON.stringify(metrics)}`);
}

await main();
