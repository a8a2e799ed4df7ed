// `taskflow dlq` as an operator runs it, against the local stack's DynamoDB and Kinesis: `show`
// never writes a raw control character to the terminal, and `redrive` re-validates first —
// refusing, with the reason, what the router would dead-letter again — unless --force.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetRecordsCommand, GetShardIteratorCommand, type KinesisClient, ListShardsCommand } from '@aws-sdk/client-kinesis';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { DynamoDeadLetterStore } from '../../lib/dlq.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { createTestStream, createTestTables, dynamoClient, kinesisClient, testStackEnv } from '../support/stack.js';

const ROOT = join(import.meta.dirname, '..', '..');
const WS = '11111111-1111-4111-8111-0000000000d1';

let dynamo: DynamoDBClient;
let kinesis: KinesisClient;
let store: DynamoDeadLetterStore;
let env: Record<string, string>;
let stream: string;

function taskflow(...args: string[]) {
  return spawnSync(process.execPath, [join(ROOT, 'bin', 'taskflow.js'), 'dlq', ...args], { encoding: 'utf8', env: { ...process.env, ...env, NODE_OPTIONS: '' } });
}

async function streamRecords(): Promise<{ partitionKey: string; data: string }[]> {
  const { Shards } = await kinesis.send(new ListShardsCommand({ StreamName: stream }));
  const out: { partitionKey: string; data: string }[] = [];
  for (const shard of Shards ?? []) {
    const { ShardIterator } = await kinesis.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }));
    const { Records } = await kinesis.send(new GetRecordsCommand({ ShardIterator }));
    for (const r of Records ?? []) out.push({ partitionKey: r.PartitionKey ?? '', data: Buffer.from(r.Data ?? []).toString('utf8') });
  }
  return out;
}

beforeAll(async () => {
  dynamo = dynamoClient();
  kinesis = kinesisClient();
  const tables = await createTestTables('dlq-cli', ['dlq']);
  stream = await createTestStream('dlq-cli');
  store = new DynamoDeadLetterStore(dynamo, tables.dlq);
  env = { ...testStackEnv(), DYNAMODB_TABLE_DLQ: tables.dlq!, CHANGE_STREAM_NAME: stream };
});

afterAll(() => {
  dynamo?.destroy();
  kinesis?.destroy();
});

describe('taskflow dlq', () => {
  it('show escapes control characters of the payload and the message instead of printing them', async () => {
    const hostile = '{"title":"\x1b[2J\x1b]0;pwned\x07 \u009b31m \r\u202eevil"\n}';
    const id = await store.put({ source: 'router', reason: 'malformed_json', message: `Unexpected token '\x1b' in "${hostile.slice(0, 12)}"`, payload: Buffer.from(hostile), origin: { shardId: 'shardId-0' } });
    const r = taskflow('show', id);
    expect(r.status).toBe(0);
    // eslint-disable-next-line no-control-regex -- asserting none reach the terminal
    expect(r.stdout).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/);
    expect(r.stdout).toContain('{"title":"\\x1b[2J\\x1b]0;pwned\\x07 \\x9b31m \\x0d\\u202eevil"\n}');
    expect(r.stdout).toContain(`Unexpected token '\\x1b'`);
  }, 30_000);

  it('redrive refuses, with the reason, an entry that would be dead-lettered again; --force sends it anyway', async () => {
    const broken = JSON.stringify({ ...sampleEvent('task.updated', { workspaceId: WS }), workspaceid: undefined });
    const good = JSON.stringify(sampleEvent('task.updated', { workspaceId: WS, commitLsn: 0x77n }));
    const brokenId = await store.put({ source: 'router', reason: 'missing_keys', message: 'no workspaceid', payload: Buffer.from(broken), origin: {} });
    const goodId = await store.put({ source: 'router', reason: 'schema_violation', message: 'rejected by an older schema', payload: Buffer.from(good), origin: {} });

    const refused = taskflow('redrive', '--id', brokenId);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(new RegExp(`^refused ${brokenId}: it would be dead-lettered again for the same reason: `));
    expect(refused.stdout).toContain('0 dead letter(s) redriven, 1 refused (fix the cause first, or --force to redrive them anyway)');
    expect((await store.get(brokenId))?.redrivenAt).toBeUndefined();

    const fixed = taskflow('redrive', '--id', goodId);
    expect({ status: fixed.status, stdout: fixed.stdout }).toEqual({ status: 0, stdout: `redriven ${goodId} (schema_violation)\n1 dead letter(s) redriven\n` });

    const forced = taskflow('redrive', '--id', brokenId, '--force');
    expect(forced.status).toBe(0);
    expect((await store.get(brokenId))?.redrivenAt).toBeDefined();
    const records = await streamRecords();
    expect(records.map((r) => r.partitionKey).sort()).toEqual([`redrive:${WS}`, 'redrive:unknown']);
    expect(records.find((r) => r.partitionKey === `redrive:${WS}`)?.data).toBe(good);
  }, 60_000);
});
