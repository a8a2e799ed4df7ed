// `taskflow consumers list` and `reset` against kinesalite and dynalite, with a real consumer
// (packages/stream) reading a 2-shard stream: list shows its shards, owners, checkpoints and lag;
// reset --to TIME makes the next run read exactly the records that arrived from TIME on
// (AT_TIMESTAMP); reset while the consumer runs is refused, and with --force the running workers
// lose their leases and read again from the new position.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { type Consumer, createConsumer, type ShardProcessor } from '@taskflow/stream';
import { createTestStream, createTestTables, dynamoClient, kinesisClient, testStackEnv } from '../support/stack.js';
import { sleep, waitFor } from '../support/wait.js';

let env: Record<string, string>;
const kinesis = kinesisClient();
const dynamo = dynamoClient();
const received: string[] = [];

beforeAll(async () => {
  const [stream, tables] = await Promise.all([createTestStream('consumers-cli', 2), createTestTables('consumers-cli', ['leases'])]);
  env = { ...testStackEnv(), CHANGE_STREAM_NAME: stream, DYNAMODB_TABLE_LEASES: tables.leases!, KINESIS_FAILOVER_MS: '1500' };
}, 60_000);

let running: Consumer | undefined;

afterAll(async () => {
  await running?.stop('abandon');
  kinesis.destroy();
  dynamo.destroy();
});

function consumer(): Consumer {
  return (running = createConsumer({
    name: 'c',
    streamName: env.CHANGE_STREAM_NAME!,
    kinesis,
    dynamo,
    leaseTable: env.DYNAMODB_TABLE_LEASES!,
    workerId: 'c-0',
    failoverTimeMs: 1500,
    pollIntervalMs: 20,
    minCallSpacingMs: 0,
    processor: (): ShardProcessor => ({
      initialize: () => Promise.resolve(),
      async processRecords(batch, checkpointer) {
        for (const r of batch.records) received.push(Buffer.from(r.data).toString());
        await checkpointer.checkpoint();
      },
      shutdown: () => Promise.resolve(),
    }),
  }));
}

async function put(names: string[]): Promise<void> {
  const out = await kinesis.send(new PutRecordsCommand({ StreamName: env.CHANGE_STREAM_NAME, Records: names.map((n, i) => ({ PartitionKey: `key-${i}`, Data: Buffer.from(n) })) }));
  expect(out.FailedRecordCount ?? 0).toBe(0);
}

/** The CLI in its own process, without blocking this one (the consumer here must keep renewing its leases). */
function taskflow(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['bin/taskflow.js', 'consumers', ...args], { env: { ...process.env, ...env, NODE_OPTIONS: '' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => child.once('close', (status) => resolve({ status, stdout, stderr })));
}

const sorted = (xs: readonly string[]) => [...xs].sort();

describe('taskflow consumers', () => {
  it('lists, resets to a time, and refuses (or with --force, forces) a reset of a running consumer', async () => {
    const first = ['a1', 'a2', 'a3', 'a4', 'a5', 'a6'];
    const second = ['b1', 'b2', 'b3', 'b4', 'b5', 'b6'];
    let c = consumer();
    await c.start();
    await put(first);
    await waitFor(() => received.length === first.length, () => `the first records (got ${received.length})`);
    // Not a wait for something: the second records must arrive after `between` (arrival times are in ms).
    await sleep(50);
    const between = new Date();
    await sleep(50);
    await put(second);
    await waitFor(() => received.length === first.length + second.length, () => `the second records (got ${received.length})`);
    await c.stop('graceful');

    const listed = await taskflow('list', '--json');
    expect(listed.stderr).toBe('');
    const rows = JSON.parse(listed.stdout) as { consumer: string; shards: { shard: string; owner: string | null; checkpoint: string; lagMs: number | string }[] }[];
    const mine = rows.find((r) => r.consumer === 'c')!;
    expect(mine.shards).toHaveLength(2);
    expect(mine.shards.every((s) => s.owner === null && s.lagMs === 0 && /^\d+$/.test(s.checkpoint))).toBe(true);
    expect((await taskflow('list')).stdout).toMatch(/^c: 2 shard\(s\), max lag 0\.0 s, workers none$/m);

    const reset = await taskflow('reset', 'c', '--to', between.toISOString());
    expect({ status: reset.status, stderr: reset.stderr }).toEqual({ status: 0, stderr: '' });
    expect(reset.stdout).toContain(`2 shard(s) reset to the first record at or after ${between.toISOString()}`);
    expect((await taskflow('list')).stdout).toContain(`checkpoint AT_TIMESTAMP ${between.toISOString()}`);
    received.length = 0;
    c = consumer();
    await c.start();
    await waitFor(() => received.length === second.length, () => `the records from the reset time on (got ${received.join(',')})`);
    expect(sorted(received)).toEqual(sorted(second));

    // Running: refused after watching the leases renew; forced, the consumer reads everything again.
    const refused = await taskflow('reset', 'c', '--to', 'trim-horizon');
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^refused: consumer c holds live leases \(2 shard\(s\), workers c-0\); stop it first, or --force/);
    received.length = 0;
    const forced = await taskflow('reset', 'c', '--to', 'trim-horizon', '--force');
    expect({ status: forced.status, stderr: forced.stderr }).toEqual({ status: 0, stderr: '' });
    await waitFor(() => first.concat(second).every((r) => received.includes(r)), () => `everything again after the forced reset (got ${received.join(',')})`);
    await c.stop('graceful');
    expect((await taskflow('reset', 'c', '--to', 'yesterday')).stderr).toMatch(/--to must be trim-horizon, latest or an ISO 8601 time/);
  }, 90_000);
});
