// The SDK's notifications subscription against the real notifications service, a real broker and
// the real inbox API: live notifications arrive once and in order; those published while the
// browser was cut off are fetched from the inbox on reconnect; the same records read again (a
// replay, which publishes again) deliver nothing twice; the unread count follows, markRead too.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { createClient, type Notification, type RealtimeClient, type Status } from '@taskflow/realtime';
import { TcpProxy } from '../../clients/web-sdk/test/tcp-proxy.js';
import type { Broker } from '../../infra/local/broker.js';
import { signDevToken } from '../../lib/jwt.js';
import { createLogger } from '../../lib/logger.js';
import { loadConfig } from '../../notifications/config.js';
import { type RunningNotifications, startNotifications } from '../../notifications/service.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { createTestStream, createTestTables, kinesisClient, startTestBroker, tableEnv, testStackEnv } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

const SECRET = `sdk-notifications-it-${randomUUID()}`;
const [WS, P, A, B] = Array.from({ length: 4 }, () => randomUUID()) as [string, string, string, string];

let broker: Broker;
let proxy: TcpProxy;
let service: RunningNotifications;
let stream: string;
let client: RealtimeClient;
let lsn = 0x9000n;

/** Records of tasks B creates and assigns to A (the first one also makes A a member). */
function tasksFor(n: number, withMembership: boolean) {
  const at = () => ({ workspaceId: WS, projectId: P, commitLsn: (lsn += 0x100n), txIndex: 0 });
  const events = [
    ...(withMembership ? [sampleEvent('membership.created', { ...at(), projectId: null, entityId: randomUUID(), userId: A })] : []),
    ...Array.from({ length: n }, () => sampleEvent('task.created', { ...at(), entityId: randomUUID(), row: { title: 'Ring the bell', assignee_id: A, created_by: B } })),
  ];
  return events.map((e) => ({ PartitionKey: WS, Data: Buffer.from(JSON.stringify(e)) }));
}

async function put(records: { PartitionKey: string; Data: Buffer }[]): Promise<void> {
  const kinesis = kinesisClient();
  try {
    const r = await kinesis.send(new PutRecordsCommand({ StreamName: stream, Records: records }));
    expect(r.FailedRecordCount ?? 0).toBe(0);
  } finally {
    kinesis.destroy();
  }
}

async function inboxIds(): Promise<string[]> {
  const res = await fetch(`${service.apiUrl}/v1/workspaces/${WS}/notifications`, { headers: { authorization: `Bearer ${await signDevToken(new TextEncoder().encode(SECRET), A)}` } });
  return ((await res.json()) as { notifications: { id: string }[] }).notifications.map((n) => n.id).reverse();
}

beforeAll(async () => {
  stream = await createTestStream('sdk-notifications-it', 1);
  const tables = await createTestTables('sdk-notifications-it', ['leases', 'dlq', 'notifications', 'notification-watchers', 'notification-memberships']);
  broker = await startTestBroker();
  proxy = await new TcpProxy({ host: '127.0.0.1', port: Number(new URL(broker.wsUrl).port) }).start();
  service = await startNotifications(
    loadConfig({
      ...testStackEnv(),
      CHANGE_STREAM_NAME: stream,
      ...tableEnv(tables),
      MQTT_URL: broker.tcpUrl,
      JWT_SECRET: SECRET,
      KINESIS_POLL_INTERVAL_MS: '50',
      KINESIS_MIN_CALL_SPACING_MS: '0',
    }),
    createLogger('sdk-notifications-it', 'silent'),
  );
}, 120_000);

afterAll(async () => {
  client?.close();
  await service?.stop();
  await proxy?.close();
  await broker?.stop();
});

describe('SDK notifications subscription', () => {
  it('delivers each notification once and in order across a cut connection and a replay; unread count and markRead', async () => {
    // A's membership first: the inbox API answers 403 without one (the SDK retries meanwhile).
    await put(tasksFor(0, true));
    const got: Notification[] = [];
    const statuses: Status[] = [];
    const errors: string[] = [];
    let unread: number | undefined;
    client = createClient({
      url: `ws://127.0.0.1:${proxy.port}/mqtt`,
      getToken: () => signDevToken(new TextEncoder().encode(SECRET), A),
      replayUrl: 'http://127.0.0.1:9', // no project subscriptions here
      notificationsUrl: service.apiUrl,
      backoff: { baseMs: 100, maxMs: 500 },
      subscription: { retry: { baseMs: 100, maxMs: 500 } },
    });
    const sub = client.subscribeNotifications(WS, {
      onNotification: (n) => got.push(n),
      onUnreadCount: (n) => (unread = n),
      onStatus: (s) => statuses.push(s),
      onError: (e) => errors.push(`${e.code}: ${e.message}`),
    });
    await waitFor(() => statuses.at(-1) === 'live', () => `the subscription to be live (${statuses.join(' → ')}; errors: ${errors.join('; ')})`);

    // Live.
    const firstBatch = tasksFor(2, false);
    await put(firstBatch);
    await waitFor(() => got.length === 2 && unread === 2, () => `two live notifications (got ${got.length}, unread ${unread})`, 30_000);

    // Cut off: what is published meanwhile is lost on the way, and fetched from the inbox on reconnect.
    proxy.refusing = true;
    proxy.cut();
    await waitFor(() => statuses.at(-1) === 'offline', () => `offline (${statuses.join(' → ')})`);
    await put(tasksFor(3, false));
    await waitFor(async () => (await inboxIds()).length === 5, () => 'the inbox to hold five', 30_000);
    expect(got.length).toBe(2);
    proxy.refusing = false;
    await waitFor(() => got.length === 5 && unread === 5, () => `the missed three after the reconnect (got ${got.length}, unread ${unread})`, 30_000);

    // Read again (a replay publishes again): nothing twice.
    await put(firstBatch);
    await put(tasksFor(1, false));
    await waitFor(() => got.length === 6, () => `the sixth (got ${got.length})`, 30_000);
    expect(got.map((n) => n.id)).toEqual(await inboxIds());
    expect(new Set(got.map((n) => n.id)).size).toBe(6);
    expect(got.map((n) => n.id)).toEqual([...got.map((n) => n.id)].sort());
    expect(got.every((n) => n.kind === 'assigned' && n.userId === A)).toBe(true);

    expect(await sub.markRead([got[0]!.id, got[1]!.id])).toBe(4);
    expect(unread).toBe(4);
    expect(sub.unread).toBe(4);
    sub.unsubscribe();
  }, 120_000);
});
