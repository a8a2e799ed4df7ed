// The subscription store on the local DynamoDB (dynalite, which ignores TTL): entries written by
// a router that died are deleted by the sweep once their `expiresAt` passes; live ones stay.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ScanCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoSubscriptionStore } from '../../router/subscription-store.js';
import { createTestTables, dynamoClient } from '../support/stack.js';

const DAY_MS = 24 * 3600 * 1000;
let client: DynamoDBClient;
let table: string;

beforeAll(async () => {
  client = dynamoClient();
  table = (await createTestTables('subscription-store', ['subscriptions'])).subscriptions!;
});

afterAll(() => client?.destroy());

describe('DynamoSubscriptionStore', () => {
  it('sweeps the entries of clients last seen more than a day ago, and keeps the rest', async () => {
    let now = Date.UTC(2026, 0, 1);
    const store = new DynamoSubscriptionStore(client, table, () => now);
    // A router recorded these, then died: nobody ever records their disconnect.
    for (let i = 0; i < 30; i += 1) await store.record({ kind: 'subscribed', clientId: `u${i}.dead`, sessionId: `s${i}`, filters: ['taskflow/v1/ws/w/projects/a', 'taskflow/v1/ws/w/projects/b'] });
    now += DAY_MS - 60_000;
    const liveRecordedAt = now;
    await store.record({ kind: 'subscribed', clientId: 'u-live.x', sessionId: 's', filters: ['taskflow/v1/ws/w/projects/a'] });
    expect(await store.sweep()).toBe(0); // nothing has expired yet

    now += 120_000; // the dead router's entries are now past their day
    expect(await store.sweep()).toBe(60);
    const left = await client.send(new ScanCommand({ TableName: table, ConsistentRead: true }));
    expect((left.Items ?? []).map((i) => i.clientId?.S)).toEqual(['u-live.x#s']);
    expect(await store.load()).toEqual([{ kind: 'subscribed', clientId: 'u-live.x', sessionId: 's', filters: ['taskflow/v1/ws/w/projects/a'] }]);
    // Every entry carries the TTL attribute real DynamoDB expires by.
    expect(Number(left.Items?.[0]?.expiresAt?.N)).toBe(Math.floor(liveRecordedAt / 1000) + 24 * 3600);
  });
});
