// Notifications under load through the whole path — Postgres → capture → Kinesis → `taskflow
// notifications` (its own process, as in production) → the DynamoDB inbox — with the service
// SIGKILLed mid-load and restarted: the inbox ends with exactly the notifications the rules give
// for the stream read in order (nothing lost, nothing doubled), and no record was dead-lettered.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { type RunningCapture } from '../../capture/main.js';
import { runWorkload } from '../../db/workload.js';
import { type Broker } from '../../infra/local/broker.js';
import { decodeEvent } from '@taskflow/stream/events';
import { DynamoDeadLetterStore } from '../../lib/dlq.js';
import { createLogger } from '../../lib/logger.js';
import { planBatch } from '../../notifications/rules.js';
import { validateEvent } from '../../schemas/validate.js';
import { StreamReader } from './capture-helpers.js';
import { startTestCapture, testCaptureEnv } from '../support/capture.js';
import { type ServiceProcess, startServiceProcess } from '../support/service-process.js';
import { sleep, waitFor } from '../support/wait.js';
import { createTestDatabase, createTestStream, createTestTables, dynamoClient, kinesisClient, startTestBroker, uniqueName } from '../support/stack.js';

const WORKLOAD = { workspaces: 3, projectsPerWorkspace: 2, seed: 'notifications-recovery' } as const;

let env: Record<string, string>;
let databaseUrl: string;
let capture: RunningCapture;
let broker: Broker;
let notifications: ServiceProcess | undefined;

const startNotifications = () => startServiceProcess('notifications', env, ['notifications started']);

/** `user/event/kind` of every notification the rules give for the whole stream, read in commit order. */
async function expectedNotifications(): Promise<string[]> {
  const reader = new StreamReader(kinesisClient(), env.CHANGE_STREAM_NAME!);
  await reader.poll();
  const events = reader.raw.map((raw) => {
    const decoded = decodeEvent(Buffer.from(raw), validateEvent);
    if (!decoded.ok) throw new Error(`${decoded.reason}: ${decoded.message}`);
    return decoded.event;
  });
  // Event ids sort in commit order (LSN, then index in the transaction); the rules need only each task's order.
  events.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return planBatch(events, new Map()).notifications.map((n) => `${n.userId}/${n.id}/${n.kind}`).sort();
}

async function storedNotifications(): Promise<string[]> {
  const dynamo = dynamoClient();
  const out: string[] = [];
  try {
    let start: Record<string, import('@aws-sdk/client-dynamodb').AttributeValue> | undefined;
    do {
      const page = await dynamo.send(new ScanCommand({ TableName: env.DYNAMODB_TABLE_NOTIFICATIONS, ConsistentRead: true, ExclusiveStartKey: start }));
      for (const item of page.Items ?? []) out.push(`${item.userId!.S}/${item.id!.S}/${item.kind!.S}`);
      start = page.LastEvaluatedKey;
    } while (start);
  } finally {
    dynamo.destroy();
  }
  return out.sort();
}

beforeAll(async () => {
  databaseUrl = await createTestDatabase('notifications_recovery');
  const [stream, tables] = await Promise.all([
    createTestStream('notifications-recovery', 2),
    createTestTables('notifications-recovery', ['leases', 'dlq', 'checkpoints', 'notifications', 'notification-watchers', 'notification-memberships']),
  ]);
  broker = await startTestBroker();
  env = {
    ...testCaptureEnv({ databaseUrl, stream, tables, slot: uniqueName('notifications_recovery') }),
    MQTT_URL: broker.tcpUrl,
    NOTIFICATIONS_PORT: '0',
    METRICS_PORT: '0',
    JWT_SECRET: `notifications-recovery-${randomUUID()}`,
    KINESIS_POLL_INTERVAL_MS: '50',
    KINESIS_MIN_CALL_SPACING_MS: '0',
    KINESIS_FAILOVER_MS: '2000',
  };
  capture = await startTestCapture(env, createLogger('notifications-recovery-capture', 'silent'));
  notifications = await startNotifications();
}, 120_000);

afterAll(async () => {
  await notifications?.stop();
  await capture?.close().catch(() => undefined);
  await broker?.stop();
});

describe('notifications service under load', () => {
  it('SIGKILLed and restarted under load, ends with exactly the notifications of the stream, none doubled', async () => {
    // At most 150 transactions/s: at least 8 s of load, around the kill and the restart.
    const load = runWorkload({ databaseUrl, ratePerSec: 150, transactions: 1200, concurrency: 3, ...WORKLOAD });
    // Killed mid-work: once the inbox holds KILL_AFTER notifications (about 3 s into the load on an
    // idle host; later on a loaded one, whose service is slower, but never before it has written).
    const KILL_AFTER = 200;
    const atKill = await waitFor(
      async () => {
        const n = (await storedNotifications()).length;
        return n >= KILL_AFTER && n;
      },
      () => `the inbox to hold ${KILL_AFTER} notifications before the kill`,
      120_000,
      200,
    );
    // Not a wait but the fault schedule: down for 1.5 s.
    const first = notifications!.child;
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    await sleep(1500);
    notifications = await startNotifications();
    const stats = await load;
    expect(stats.committedTransactions).toBe(1200);

    // A liveness bound, not a speed one: how long the inbox takes to fill is proportional to the
    // work (~1,500 notifications; a few seconds idle, minutes at load 20 on 2 cores), so the wait
    // fails when the inbox has not grown for STALL_MS (nothing more coming: lost, or stuck), or
    // after 240 s in all. The stream is re-read (the expensive part) only once the inbox has
    // caught up with the last reading, so that the polling does not slow a loaded host further.
    const STALL_MS = 30_000;
    let expected: string[] = await expectedNotifications();
    let stored: string[] = [];
    let grown = { count: -1, at: Date.now() };
    await waitFor(
      async () => {
        stored = await storedNotifications();
        if (stored.length > grown.count) grown = { count: stored.length, at: Date.now() };
        else if (Date.now() - grown.at > STALL_MS) throw new Error(`the inbox stopped growing at ${stored.length} of ${expected.length} notifications (none stored for ${STALL_MS} ms)`);
        if (stored.length < expected.length) return false;
        expected = await expectedNotifications();
        return expected.length > 0 && stored.length >= expected.length;
      },
      () => `the inbox to hold every notification (${stored.length} of ${expected.length})`,
      240_000,
      500,
    );
    // The kill came with notifications still to write (it was mid-work), and nothing was lost or doubled.
    expect(atKill).toBeLessThan(expected.length);
    expect(stored).toEqual(expected);
    expect(new Set(stored.map((s) => s.split('/').slice(0, 2).join('/'))).size).toBe(stored.length);
    const dynamo = dynamoClient();
    expect(await new DynamoDeadLetterStore(dynamo, env.DYNAMODB_TABLE_DLQ!).list({ source: 'notifications' })).toEqual([]);
    dynamo.destroy();
    console.log(`notifications under load: ${stats.committedTransactions} transactions, ${stats.rowChanges} row changes; ${stored.length} notifications stored, equal to the rules over the stream; killed at ${atKill} stored`);
  }, 420_000);
});
