// The dead-letter store against a real DynamoDB engine (dynalite, started here on an ephemeral port).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import { createDynamoClient } from '../../lib/aws.js';
import { DLQ_TABLE, DLQ_TABLE_SPEC, DynamoDeadLetterStore } from '../../lib/dlq.js';
import { ensureTable } from '../../infra/local/stack.js';

const dynalite = createRequire(import.meta.url)('dynalite') as (opts: object) => Server;

let server: Server;
let client: DynamoDBClient;

beforeAll(async () => {
  server = dynalite({ createTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  client = createDynamoClient({ region: 'us-east-1', dynamodbEndpoint: `http://127.0.0.1:${port}` });
  await ensureTable(client, { key: 'dlq', table: { ...DLQ_TABLE_SPEC, TableName: DLQ_TABLE } });
});

afterAll(async () => {
  client?.destroy();
  await new Promise((resolve) => server?.close(resolve));
});

describe('DynamoDeadLetterStore', () => {
  it('keeps entries whole (also larger than a DynamoDB item), lists them in order and marks redrives', async () => {
    let t = Date.parse('2026-11-26T12:00:00Z');
    const store = new DynamoDeadLetterStore(client, DLQ_TABLE_SPEC.TableName, () => new Date((t += 1000)));
    const big = Buffer.alloc(1_300_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
    const a = await store.put({ source: 'capture', reason: 'RECORD_TOO_LARGE', message: 'event of 1.3 MB', payload: big, origin: { eventId: 'X-1', lsn: '0/1' } });
    const b = await store.put({ source: 'router', reason: 'INVALID_ENVELOPE', message: 'bad', payload: Buffer.from('{}'), origin: {} });
    const c = await store.put({ source: 'capture', reason: 'MISSING_WORKSPACE_ID', message: 'row', payload: Buffer.from('{"id":1}'), origin: { table: 'tasks' } });

    const got = await store.get(a);
    expect(got).toMatchObject({ id: a, source: 'capture', reason: 'RECORD_TOO_LARGE', origin: { eventId: 'X-1', lsn: '0/1' } });
    expect(Buffer.from(got!.payload).equals(big)).toBe(true);

    expect((await store.list({ source: 'capture' })).map((e) => e.id)).toEqual([a, c]);
    expect((await store.list()).map((e) => e.id)).toEqual([a, b, c]);
    await store.markRedriven(a);
    expect((await store.list({ source: 'capture' })).map((e) => e.id)).toEqual([c]);
    expect((await store.list({ source: 'capture', includeRedriven: true }))[0]?.redrivenAt).toBeDefined();
    await expect(store.markRedriven('nope')).rejects.toMatchObject({ code: 'DLQ_NOT_FOUND' });
    expect(await store.get('nope')).toBeUndefined();
  });

  it('stores a keyed dead letter once, however often the same input is dead-lettered (reprocessing after a crash)', async () => {
    let t = Date.parse('2026-11-26T13:00:00Z');
    const store = new DynamoDeadLetterStore(client, DLQ_TABLE_SPEC.TableName, () => new Date((t += 1000)));
    const origin = { shardId: 'shardId-000000000001', sequenceNumber: '4963' };
    const entry = { source: 'router-dedupe', reason: 'schema_violation', message: 'bad', payload: Buffer.from('{"x":1}'), origin, dedupeKey: 'shardId-000000000001/4963/' };
    const first = await store.put(entry);
    expect(await store.put({ ...entry, message: 'reprocessed' })).toBe(first);
    expect((await store.list({ source: 'router-dedupe' })).map((e) => [e.id, e.message])).toEqual([[first, 'bad']]);
    // A redriven entry is not revived by a late duplicate; an unkeyed put is always new.
    await store.markRedriven(first);
    await store.put(entry);
    expect(await store.list({ source: 'router-dedupe' })).toEqual([]);
    const unkeyed = { source: 'router-dedupe', reason: 'schema_violation', message: 'unkeyed', payload: Buffer.from('{}'), origin: {} };
    const [u1, u2] = [await store.put(unkeyed), await store.put(unkeyed)];
    expect(u1).not.toBe(u2);
    expect((await store.list({ source: 'router-dedupe' })).map((e) => e.id)).toEqual([u1, u2]);
  });
});
