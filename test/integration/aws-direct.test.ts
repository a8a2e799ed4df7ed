// lib/aws-direct.ts against the local engines: the directly sent requests answer as the SDK's
// do (records, blobs and arrival times of GetRecords; the conditional PutItem's refusal type),
// they are counted, and a client that is not an SDK client gets no direct path. The lease store's
// direct writes store what its document client writes and reads.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { PutCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoLeaseStore, type Lease } from '@taskflow/stream';
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

  it('lease writes sent directly store the attribute types the document client writes, and are fenced by the counter', async () => {
    const table = (await createTestTables('aws-direct', ['leases'])).leases!;
    const store = new DynamoLeaseStore(dynamo, table, 'direct');
    const lease: Lease = { leaseKey: 'shardId-000000000001', leaseOwner: 'w1', leaseCounter: 1, checkpoint: '4960', checkpointSubSequence: 2, checkpointState: '{"w":"x"}', parentShardIds: ['shardId-000000000000'], ownerSwitchesSinceCheckpoint: 0 };
    const before = count('dynamodb', 'PutItemCommand');
    expect(await store.create(lease)).toBe(true);
    expect(count('dynamodb', 'PutItemCommand')).toBe(before + 1);
    expect(await store.create(lease)).toBe(false);
    await DynamoDBDocumentClient.from(dynamo).send(new PutCommand({ TableName: table, Item: { consumerName: 'direct', ...lease, leaseKey: 'via-sdk' } }));
    const raw = async (leaseKey: string) => (await dynamo.send(new GetItemCommand({ TableName: table, Key: { consumerName: { S: 'direct' }, leaseKey: { S: leaseKey } }, ConsistentRead: true }))).Item;
    const { leaseKey: _direct, ...directAttributes } = (await raw(lease.leaseKey))!;
    const { leaseKey: _sdk, ...sdkAttributes } = (await raw('via-sdk'))!;
    expect(directAttributes).toEqual(sdkAttributes);

    const released: Lease = { ...lease, leaseOwner: null, leaseCounter: 2, checkpoint: '4961', parentShardIds: [] };
    delete released.checkpointState;
    expect(await store.replace(released, 5)).toBe(false);
    expect(await store.replace(released, 1)).toBe(true);
    expect((await store.list()).find((l) => l.leaseKey === lease.leaseKey)).toEqual(released);
    expect(await store.delete(lease.leaseKey, 1)).toBe(false);
    expect(await store.delete(lease.leaseKey, 2)).toBe(true);
    expect((await store.list()).map((l) => l.leaseKey)).toEqual(['via-sdk']);
  });

  it('gives a stand-in client no direct path', () => {
    expect(DirectAwsJson.of({ send: async () => ({}) }, KINESIS_JSON)).toBeUndefined();
  });
});
