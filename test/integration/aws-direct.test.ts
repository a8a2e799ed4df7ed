// lib/aws-direct.ts against the local engines: the directly sent requests answer as the SDK's
// do (records, blobs and arrival times of GetRecords; the conditional PutItem's refusal type),
// they are counted, and a client that is not an SDK client gets no direct path. The lease store's
// direct writes store what its document client writes and reads; its state slots keep the lease
// item small, so a renewal rewrites a few hundred bytes whatever the state.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type AttributeValue, type DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { PutCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoLeaseStore, type Lease, stateOf, stateSlotKey } from '@taskflow/stream';
import { LeaseCoordinator } from '../../packages/stream/src/consumer/coordinator.js';
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
    const lease: Lease = { leaseKey: 'shardId-000000000001', leaseOwner: 'w1', leaseCounter: 1, checkpoint: '4960', checkpointSubSequence: 2, stateRef: { slot: 'a', writerCounter: 0 }, parentShardIds: ['shardId-000000000000'], ownerSwitchesSinceCheckpoint: 0 };
    const before = count('dynamodb', 'PutItemCommand');
    expect(await store.create(lease)).toBe(true);
    expect(count('dynamodb', 'PutItemCommand')).toBe(before + 1);
    expect(await store.create(lease)).toBe(false);
    const doc = DynamoDBDocumentClient.from(dynamo);
    // The lease item as the document client writes it: the state's reference flat, the state itself in its slot item.
    const { stateRef: _ref, ...rest } = lease;
    await doc.send(new PutCommand({ TableName: table, Item: { consumerName: 'direct', ...rest, leaseKey: 'via-sdk', stateSlot: 'a', stateWriterCounter: 0 } }));
    const raw = async (leaseKey: string) => (await dynamo.send(new GetItemCommand({ TableName: table, Key: { consumerName: { S: 'direct' }, leaseKey: { S: leaseKey } }, ConsistentRead: true }))).Item;
    const { leaseKey: _direct, ...directAttributes } = (await raw(lease.leaseKey))!;
    const { leaseKey: _sdk, ...sdkAttributes } = (await raw('via-sdk'))!;
    expect(directAttributes).toEqual(sdkAttributes);

    // A state slot: one PutItem, the document client's types, fenced by the writer's counter, read back only for the write referenced.
    const beforeSlot = count('dynamodb', 'PutItemCommand');
    expect(await store.writeState(lease.leaseKey, { slot: 'a', writerCounter: 0 }, '{"w":"x"}')).toBe(true);
    expect(count('dynamodb', 'PutItemCommand')).toBe(beforeSlot + 1);
    await doc.send(new PutCommand({ TableName: table, Item: { consumerName: 'direct', leaseKey: stateSlotKey('via-sdk', 'a'), writerCounter: 0, state: '{"w":"x"}' } }));
    const { leaseKey: _slot, ...directSlot } = (await raw(stateSlotKey(lease.leaseKey, 'a')))!;
    const { leaseKey: _sdkSlot, ...sdkSlot } = (await raw(stateSlotKey('via-sdk', 'a')))!;
    expect(directSlot).toEqual(sdkSlot);
    expect(await store.writeState(lease.leaseKey, { slot: 'a', writerCounter: 0 }, 'stale')).toBe(false);
    expect(await store.readState(lease.leaseKey, { slot: 'a', writerCounter: 0 })).toBe('{"w":"x"}');
    expect(await store.readState(lease.leaseKey, { slot: 'a', writerCounter: 3 })).toBeUndefined();
    expect(await store.readState(lease.leaseKey, { slot: 'b', writerCounter: 0 })).toBeUndefined();

    // The list reads the lease items alone, never the slots.
    expect((await store.list()).map((l) => l.leaseKey).sort()).toEqual(['shardId-000000000001', 'via-sdk']);
    await expect(store.create({ ...lease, leaseKey: stateSlotKey('x', 'a') })).rejects.toThrow(/reserved for state slots/);

    const released: Lease = { ...lease, leaseOwner: null, leaseCounter: 2, checkpoint: '4961', parentShardIds: [] };
    delete released.stateRef;
    expect(await store.replace(released, 5)).toBe(false);
    expect(await store.replace(released, 1)).toBe(true);
    expect((await store.list()).find((l) => l.leaseKey === lease.leaseKey)).toEqual(released);
    expect(await store.delete(lease.leaseKey, 1)).toBe(false);
    expect(await store.delete(lease.leaseKey, 2)).toBe(true);
    expect((await store.list()).map((l) => l.leaseKey)).toEqual(['via-sdk']);
    expect(await raw(stateSlotKey(lease.leaseKey, 'a'))).toBeUndefined(); // its slots went with it
  });

  it('an item of the previous version, its state inline, is read as it was; the next checkpoint moves the state into a slot', async () => {
    const table = (await createTestTables('aws-direct', ['leases'])).leases!;
    const store = new DynamoLeaseStore(dynamo, table, 'legacy');
    const state = JSON.stringify({ v: 1, marks: 'x'.repeat(100) });
    await DynamoDBDocumentClient.from(dynamo).send(new PutCommand({ TableName: table, Item: { consumerName: 'legacy', leaseKey: 'shardId-000000000000', leaseCounter: 3, checkpoint: '4960', checkpointSubSequence: 0, checkpointState: state, parentShardIds: [], ownerSwitchesSinceCheckpoint: 0 } }));
    const [listed] = await store.list();
    expect(await stateOf(store, listed!)).toEqual({ found: true, state });
    const coordinator = new LeaseCoordinator({ workerId: 'w', store, failoverMs: 60_000, initialPosition: 'TRIM_HORIZON' });
    await coordinator.takeLeases();
    expect(await coordinator.checkpointState('shardId-000000000000')).toBe(state);
    await coordinator.checkpoint('shardId-000000000000', { sequenceNumber: '4961', subSequenceNumber: 0 }, state);
    const [moved] = await store.list();
    expect(moved).toMatchObject({ checkpoint: '4961', stateRef: { slot: 'a', writerCounter: 4 } });
    expect(moved!.checkpointState).toBeUndefined();
    expect(await stateOf(store, moved!)).toEqual({ found: true, state });
  });

  it('a renewal of a lease whose state is large writes the small lease item alone; a checkpoint writes the state only when it changed', async () => {
    const table = (await createTestTables('aws-direct', ['leases'])).leases!;
    const store = new DynamoLeaseStore(dynamo, table, 'large');
    const shardId = 'shardId-000000000007';
    await store.create({ leaseKey: shardId, leaseOwner: null, leaseCounter: 0, checkpoint: 'TRIM_HORIZON', checkpointSubSequence: 0, parentShardIds: [], ownerSwitchesSinceCheckpoint: 0 });
    const coordinator = new LeaseCoordinator({ workerId: 'router-0', store, failoverMs: 60_000, initialPosition: 'TRIM_HORIZON' });
    await coordinator.takeLeases();
    // 4,000 marks at 38 bytes: the router's state at its cap, ~150 KB.
    const state = 'm'.repeat(4000 * 38);
    const puts = () => count('dynamodb', 'PutItemCommand');
    let before = puts();
    await coordinator.checkpoint(shardId, { sequenceNumber: '100', subSequenceNumber: 0 }, state);
    expect(puts() - before).toBe(2); // the slot, then the lease item
    before = puts();
    await coordinator.checkpoint(shardId, { sequenceNumber: '101', subSequenceNumber: 0 }, state);
    expect(puts() - before).toBe(1); // unchanged: the lease item alone
    before = puts();
    expect(await coordinator.renewLeases()).toEqual([]);
    expect(puts() - before).toBe(1);
    // DynamoDB's item size (attribute names and values in UTF-8, numbers ~1 byte per 2 digits): what each write is billed by, 1 WRU per KB.
    const size = (item: Record<string, AttributeValue>) => Object.entries(item).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v.S ?? v.N ?? '') + (v.L ?? []).reduce((m, e) => m + 3 + Buffer.byteLength(e.S ?? ''), 3 * (v.L ? 1 : 0)), 0);
    const raw = async (leaseKey: string) => (await dynamo.send(new GetItemCommand({ TableName: table, Key: { consumerName: { S: 'large' }, leaseKey: { S: leaseKey } }, ConsistentRead: true }))).Item!;
    const leaseItem = await raw(shardId);
    expect(leaseItem.leaseCounter?.N).toBe('4'); // taken, two checkpoints, renewed
    expect(size(leaseItem)).toBeLessThan(1024);
    expect(size(await raw(stateSlotKey(shardId, 'a')))).toBeGreaterThan(state.length);
    // A taker reads it back whole.
    const taker = new LeaseCoordinator({ workerId: 'router-1', store, failoverMs: 60_000, initialPosition: 'TRIM_HORIZON' });
    await coordinator.release(shardId);
    await taker.takeLeases();
    expect(await taker.checkpointState(shardId)).toBe(state);
  });

  it('gives a stand-in client no direct path', () => {
    expect(DirectAwsJson.of({ send: async () => ({}) }, KINESIS_JSON)).toBeUndefined();
  });
});
