// lib/aws-direct.ts against the local engines: the directly sent requests answer as the SDK's
// do (records, blobs and arrival times of GetRecords; the conditional PutItem's refusal type),
// they are counted, and a client that is not an SDK client gets no direct path.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { GetRecordsCommand, GetShardIteratorCommand, type KinesisClient, ListShardsCommand, PutRecordCommand } from '@aws-sdk/client-kinesis';
import { DirectAwsJson, DYNAMODB_JSON, KINESIS_JSON } from '../../lib/aws-direct.js';
import { awsRequestCounts } from '../../lib/aws.js';
import { createTestStream, createTestTables, dynamoClient, kinesisClient } from '../support/stack.js';

let dynamo: DynamoDBClient;
let kinesis: KinesisClient;

beforeAll(() => {
  dynamo = dynamoClient();
  kinesis = kinesisClient();
});

afterAll(() => {
  dynamo?.destroy();
  kinesis?.destroy();
});

const count = (api: string, command: string) => awsRequestCounts().find((c) => c.api === api && c.command === command)?.count ?? 0;

describe('direct AWS JSON requests', () => {
  it('GetRecords answers with the records the SDK reads', async () => {
    const stream = await createTestStream('aws-direct');
    const data = [Buffer.from('{"a":1}'), Buffer.from([0, 255, 1, 254])];
    for (const d of data) await kinesis.send(new PutRecordCommand({ StreamName: stream, PartitionKey: 'k', Data: d }));
    const shardId = (await kinesis.send(new ListShardsCommand({ StreamName: stream }))).Shards![0]!.ShardId!;
    const iterator = async () => (await kinesis.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: shardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!;
    const viaSdk = await kinesis.send(new GetRecordsCommand({ ShardIterator: await iterator() }));
    const direct = DirectAwsJson.of(kinesis, KINESIS_JSON)!;
    const before = count('kinesis', 'GetRecordsCommand');
    const out = await direct.send('GetRecords', { ShardIterator: await iterator() });
    expect(count('kinesis', 'GetRecordsCommand')).toBe(before + 1);
    if (!out.ok) throw new Error(out.message);
    const records = out.output.Records as { SequenceNumber: string; Data: string; ApproximateArrivalTimestamp: number }[];
    expect(records.map((r) => Buffer.from(r.Data, 'base64'))).toEqual(data);
    expect(records.map((r) => [r.SequenceNumber, new Date(r.ApproximateArrivalTimestamp * 1000).getTime()])).toEqual(viaSdk.Records!.map((r) => [r.SequenceNumber, r.ApproximateArrivalTimestamp!.getTime()]));
    expect(typeof out.output.NextShardIterator).toBe('string');

    const expired = await direct.send('GetRecords', { ShardIterator: 'not-an-iterator' });
    expect(expired).toMatchObject({ ok: false });
    expect(expired.ok || expired.errorType).not.toBeNull();
  });

  it('a conditional PutItem writes once and is then refused with the condition failure', async () => {
    const table = (await createTestTables('aws-direct', ['changelog'])).changelog!;
    const direct = DirectAwsJson.of(dynamo, DYNAMODB_JSON)!;
    const put = () => direct.send('PutItem', { TableName: table, Item: { projectKey: { S: 'w/p' }, seq: { N: '1' }, toSeq: { N: '3' }, body: { B: Buffer.from([1, 2, 3]).toString('base64') } }, ConditionExpression: 'attribute_not_exists(toSeq)' });
    expect(await put()).toEqual({ ok: true, output: {} });
    expect(await put()).toMatchObject({ ok: false, errorType: 'ConditionalCheckFailedException' });
    const item = (await dynamo.send(new GetItemCommand({ TableName: table, Key: { projectKey: { S: 'w/p' }, seq: { N: '1' } } }))).Item;
    expect([item?.toSeq?.N, Buffer.from(item!.body!.B!)]).toEqual(['3', Buffer.from([1, 2, 3])]);
  });

  it('gives a stand-in client no direct path', () => {
    expect(DirectAwsJson.of({ send: async () => ({}) }, KINESIS_JSON)).toBeUndefined();
  });
});
