// The notifications service against the real engines (kinesalite, dynalite, an MQTT broker), in
// process: changes put on the stream become one inbox item per (user, event), published live on
// the recipient's topic; the inbox API lists, counts and marks read, only for the caller and only
// with a membership; the same records read again (a replay) change nothing, read state included.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import mqtt from 'mqtt';
import { userTopicOf } from '../../lib/authz.js';
import { signDevToken } from '../../lib/jwt.js';
import { createLogger } from '../../lib/logger.js';
import { loadConfig } from '../../notifications/config.js';
import { type RunningNotifications, startNotifications } from '../../notifications/service.js';
import type { Broker } from '../../infra/local/broker.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { waitFor } from '../support/wait.js';
import { createTestStream, createTestTables, kinesisClient, startTestBroker, tableEnv, testStackEnv } from '../support/stack.js';

const SECRET = `notifications-it-${randomUUID()}`;
const [WS, P, A, B, OUTSIDER, TASK, COMMENT] = Array.from({ length: 7 }, () => randomUUID()) as [string, string, string, string, string, string, string];

let broker: Broker;
let service: RunningNotifications;
let stream: string;
const received: { topic: string; body: { type: string; notification: { id: string; kind: string } } }[] = [];
let listener: mqtt.MqttClient;

/** The history: A's membership, a task B creates for A, B's comment on it mentioning A. */
function records() {
  const at = (i: number) => ({ workspaceId: WS, projectId: P, commitLsn: 0x5000n + BigInt(i) * 0x100n, txIndex: 0 });
  const withActor = <T extends { data: object }>(e: T, userId: string): T => ({ ...e, data: { ...e.data, source: { ...(e.data as { source: object }).source, actor: { userId, via: 'test' } } } });
  const events = [
    sampleEvent('membership.created', { ...at(1), projectId: null, entityId: randomUUID(), userId: A }),
    withActor(sampleEvent('task.created', { ...at(2), entityId: TASK, row: { title: 'Ship the bell', assignee_id: A, created_by: B } }), B),
    withActor(sampleEvent('comment.created', { ...at(3), entityId: COMMENT, row: { task_id: TASK, author_id: B, body: `Done, @${A} please check` } }), B),
  ];
  return events.map((e) => ({ PartitionKey: WS, Data: Buffer.from(JSON.stringify(e)) }));
}

async function put(): Promise<void> {
  const kinesis = kinesisClient();
  try {
    const r = await kinesis.send(new PutRecordsCommand({ StreamName: stream, Records: records() }));
    expect(r.FailedRecordCount ?? 0).toBe(0);
  } finally {
    kinesis.destroy();
  }
}

async function api(path: string, userId: string | null, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (userId) headers.authorization = `Bearer ${await signDevToken(new TextEncoder().encode(SECRET), userId)}`;
  const res = await fetch(`${service.apiUrl}/v1/workspaces/${WS}${path}`, { ...init, headers });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  stream = await createTestStream('notifications-it', 1);
  const tables = await createTestTables('notifications-it', ['leases', 'dlq', 'notifications', 'notification-watchers', 'notification-memberships']);
  broker = await startTestBroker();
  const env = {
    ...testStackEnv(),
    CHANGE_STREAM_NAME: stream,
    ...tableEnv(tables),
    MQTT_URL: broker.tcpUrl,
    JWT_SECRET: SECRET,
    KINESIS_POLL_INTERVAL_MS: '50',
    KINESIS_MIN_CALL_SPACING_MS: '0',
  };
  listener = await mqtt.connectAsync(broker.tcpUrl, { clientId: `${A}.it` });
  listener.on('message', (topic, payload) => received.push({ topic, body: JSON.parse(payload.toString()) as (typeof received)[number]['body'] }));
  await listener.subscribeAsync(userTopicOf(WS, A), { qos: 1 });
  service = await startNotifications(loadConfig(env), createLogger('notifications-it', 'silent'));
}, 120_000);

afterAll(async () => {
  await service?.stop();
  await listener?.endAsync();
  await broker?.stop();
});

describe('notifications service', () => {
  it('stores one notification per (user, event), publishes it on the user topic, and serves the inbox', async () => {
    await put();
    await waitFor(async () => received.length >= 2, () => `two live notifications (got ${received.length})`, 60_000);
    expect(received.map((r) => [r.topic, r.body.type, r.body.notification.kind])).toEqual([
      [userTopicOf(WS, A), 'taskflow.notification', 'assigned'],
      [userTopicOf(WS, A), 'taskflow.notification', 'mentioned'],
    ]);
    const list = await api('/notifications', A);
    expect(list.status).toBe(200);
    expect(list.body.unread).toBe(2);
    const ns = list.body.notifications as { id: string; kind: string; taskId: string; read: boolean }[];
    expect(ns.map((n) => [n.kind, n.taskId, n.read])).toEqual([
      ['mentioned', TASK, false],
      ['assigned', TASK, false],
    ]);

    const marked = await api('/notifications/read', A, { method: 'POST', body: JSON.stringify({ ids: [ns[1]!.id] }) });
    expect(marked.body).toEqual({ marked: [ns[1]!.id], unread: 1 });
    expect((await api('/notifications/unread-count', A)).body).toEqual({ unread: 1 });
    expect((await api('/notifications', null)).status).toBe(401);
    expect((await api('/notifications', OUTSIDER)).status).toBe(403);
    expect((await api('/notifications?limit=0', A)).status).toBe(400);

    // The same records again, as after a replay: nothing doubled, the read one stays read.
    await put();
    await waitFor(async () => received.length >= 4, () => `the replayed batch to be published again (got ${received.length})`, 60_000);
    const again = await api('/notifications', A);
    expect((again.body.notifications as { id: string; read: boolean }[]).map((n) => [n.id, n.read])).toEqual([
      [ns[0]!.id, false],
      [ns[1]!.id, true],
    ]);
    const metrics = await (await fetch(service.metricsUrl)).text();
    expect(metrics).toMatch(/^taskflow_notifications_delivered_total\{service="notifications"\} 4$/m);
  }, 120_000);
});
