// The dead-letters erasure sink (lib/erasure-sink.ts) on dynalite through the real
// DynamoDeadLetterStore: dead letters holding the subject (their email in a payload, their comment
// id in a gzipped payload, an oversized payload in several parts with their id in the last, one
// already redriven) and one that does not; a part a crashed purge left without its head. Purge then
// scan finds 0, every part is gone, a repeat changes nothing, the unrelated dead letter stays.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type DynamoDBClient, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { DynamoDeadLetterStore } from '../../lib/dlq.js';
import type { ErasureSink, SubjectIdentifiers } from '../../lib/erasure.js';
import { openErasureSinks } from '../../lib/erasure-sink.js';
import { createTestTables, dynamoClient, testStackEnv } from '../support/stack.js';

let client: DynamoDBClient;
let table: string;
let sink: ErasureSink;
let close: () => Promise<void>;

beforeAll(async () => {
  client = dynamoClient();
  table = (await createTestTables('gdpr-sink-dlq', ['dlq'])).dlq!;
  const opened = await openErasureSinks({ ...testStackEnv(), DYNAMODB_TABLE_DLQ: table });
  [sink] = opened.sinks as [ErasureSink];
  close = opened.close;
});

afterAll(async () => {
  await close?.();
  client?.destroy();
});

describe('dead-letters erasure sink', () => {
  it('deletes every dead letter holding the subject, with all its parts; scan then finds 0; a repeat changes nothing', async () => {
    const [subject, comment] = [randomUUID(), randomUUID()];
    const ids: SubjectIdentifiers = { subject, email: 'ada@example.com', displayName: 'Ada Lovelace', authored: [{ table: 'comments', id: comment, text: 'my remark' }] };
    const store = new DynamoDeadLetterStore(client, table);
    const origin = { shardId: 's', sequenceNumber: '1' };
    const letter = (payload: Uint8Array, source = 'search') => store.put({ source, reason: 'schema_invalid', message: 'bad', payload, origin });
    await letter(Buffer.from(JSON.stringify({ after: { email: 'ada@example.com' } })));
    await letter(gzipSync(JSON.stringify({ key: { id: comment }, after: { body: { enc: 1, ct: 'xx' } } })), 'notifications');
    const big = await letter(Buffer.concat([Buffer.alloc(700 * 1024, 'x'), Buffer.from(`"created_by":"${subject}"`)]), 'capture');
    await store.markRedriven(await letter(Buffer.from(`{"assignee_id":"${subject}"}`), 'router'));
    const unrelated = await letter(Buffer.from('{"after":{"title":"nothing personal"}}'));
    // A part a crashed purge left behind without its head.
    await client.send(new PutItemCommand({ TableName: table, Item: { id: { S: 'gone-head#1' }, chunk: { B: Buffer.from(`..${subject}..`) } } }));

    expect(await sink.scan(ids)).toEqual({ scanned: 6, found: 5 });
    expect(await sink.purge(ids)).toEqual({ changed: 5 });
    expect(await sink.scan(ids)).toEqual({ scanned: 1, found: 0 });
    expect(await sink.purge(ids)).toEqual({ changed: 0 });
    const left = ((await client.send(new ScanCommand({ TableName: table }))).Items ?? []).map((i) => i.id!.S!);
    expect(left).toEqual([unrelated]);
    expect(left.some((id) => id.startsWith(big))).toBe(false);
  });
});
