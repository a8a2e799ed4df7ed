// The notifications service publishing to a self-hosted broker tier (NOTIFICATIONS_BROKERS), as
// production runs it by default: two unclustered nodes guarded as `taskflow broker` guards them
// (broker/service.ts: the membership authorizer with the router and service:notifications as
// service identities, the HTTP routes the router's, GET /subscriptions the publishers' too), the
// service with its own dev-signed token, and user A's MQTT client connected to node B only. A
// change that notifies A reaches A live through node B, and node A, where A is not, receives no
// publish at all (its messages-in counter, the one node B's shows the notifications on, stays 0).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import mqtt from 'mqtt';
import { Registry } from 'prom-client';
import { createBrokerAuth, type BrokerAuth } from '../../infra/local/broker-auth.js';
import { BROKER_NODE_METRICS, type Broker, startBroker } from '../../infra/local/broker.js';
import { DEFAULT_ROUTER_SERVICE_USER, type Membership, userTopicOf } from '../../lib/authz.js';
import { createVerifier, loadJwtConfig, signDevToken } from '../../lib/jwt.js';
import { createLogger } from '../../lib/logger.js';
import { loadConfig } from '../../notifications/config.js';
import { type RunningNotifications, startNotifications } from '../../notifications/service.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { boundClientId, createTestStream, createTestTables, kinesisClient, tableEnv, testStackEnv } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

const SECRET = `notifications-tier-it-${randomUUID()}`;
const NOTIFICATIONS = 'service:notifications';
const [WS, P, A, B, TASK] = Array.from({ length: 5 }, () => randomUUID()) as [string, string, string, string, string];

const jwt = loadJwtConfig({ JWT_SECRET: SECRET });
const verify = createVerifier(jwt);
const token = (userId: string) => signDevToken(new TextEncoder().encode(SECRET), userId, { issuer: jwt.issuer, audience: jwt.audience });

interface Node {
  broker: Broker;
  auth: BrokerAuth;
  registry: Registry;
}
let nodeA: Node;
let nodeB: Node;
let service: RunningNotifications;
let stream: string;
let listener: mqtt.MqttClient;
const received: { topic: string; kind: string }[] = [];

/** A node as broker/service.ts starts it: A is a member of WS (the authorizer grants A's user topic from that). */
async function startNode(id: string): Promise<Node> {
  const memberships = async (userId: string): Promise<Membership[]> => (userId === A ? [{ workspaceId: WS, projectId: null, role: 'member' }] : []);
  const auth = createBrokerAuth({ verify, memberships, serviceUserIds: [DEFAULT_ROUTER_SERVICE_USER, NOTIFICATIONS] });
  const registry = new Registry();
  const broker = await startBroker({ tcpPort: 0, wsPort: 0, id, hooks: auth.hooks, routeAuth: { verify, subject: DEFAULT_ROUTER_SERVICE_USER, readers: [NOTIFICATIONS] }, registry });
  return { broker, auth, registry };
}

/** Messages clients published to the node over MQTT (the tier's pool publishes there; lifecycle events are not counted). */
async function publishedTo(node: Node): Promise<number> {
  const metric = (await node.registry.getMetricsAsJSON()).find((m) => m.name === BROKER_NODE_METRICS.messagesIn);
  return (metric?.values ?? []).filter((v) => v.labels.via === 'mqtt').reduce((n, v) => n + v.value, 0);
}

const wsBase = (b: Broker) => b.wsUrl.replace(/\/mqtt$/, '');

/** A's membership, then two tasks B creates and assigns to A: two notifications for A. */
function records() {
  const at = (i: number) => ({ workspaceId: WS, projectId: P, commitLsn: 0x7000n + BigInt(i) * 0x100n, txIndex: 0 });
  const events = [
    sampleEvent('membership.created', { ...at(1), projectId: null, entityId: randomUUID(), userId: A }),
    sampleEvent('task.created', { ...at(2), entityId: TASK, row: { title: 'Ring the bell', assignee_id: A, created_by: B } }),
    sampleEvent('task.created', { ...at(3), entityId: randomUUID(), row: { title: 'Ring it again', assignee_id: A, created_by: B } }),
  ];
  return events.map((e) => ({ PartitionKey: WS, Data: Buffer.from(JSON.stringify(e)) }));
}

beforeAll(async () => {
  stream = await createTestStream('notifications-tier-it', 1);
  const tables = await createTestTables('notifications-tier-it', ['leases', 'dlq', 'notifications', 'notification-watchers', 'notification-memberships']);
  [nodeA, nodeB] = [await startNode('node-a'), await startNode('node-b')];

  // A's browser, on node B only, with A's token (the authorizer grants A's user topic).
  listener = await mqtt.connectAsync(nodeB.broker.wsUrl, { clientId: boundClientId(A), username: 'x', password: await token(A), reconnectPeriod: 0 });
  listener.on('message', (topic, payload) => received.push({ topic, kind: (JSON.parse(payload.toString()) as { notification: { kind: string } }).notification.kind }));
  const granted = await listener.subscribeAsync(userTopicOf(WS, A), { qos: 1 });
  expect(granted.map((g) => g.qos)).toEqual([1]);

  service = await startNotifications(
    loadConfig({
      ...testStackEnv(),
      CHANGE_STREAM_NAME: stream,
      ...tableEnv(tables),
      // No MQTT_URL broker: only the tier's nodes. The service's token is signed with JWT_SECRET.
      MQTT_URL: 'mqtt://127.0.0.1:9',
      NOTIFICATIONS_BROKERS: `${wsBase(nodeA.broker)},${wsBase(nodeB.broker)}`,
      JWT_SECRET: SECRET,
      KINESIS_POLL_INTERVAL_MS: '50',
      KINESIS_MIN_CALL_SPACING_MS: '0',
    }),
    createLogger('notifications-tier-it', 'silent'),
  );
}, 120_000);

afterAll(async () => {
  await service?.stop();
  await listener?.endAsync(true);
  for (const n of [nodeA, nodeB]) {
    n?.auth.stop();
    await n?.broker.stop();
  }
});

describe('notifications on the self-hosted broker tier', () => {
  it("delivers A's notifications through node B, where A is connected, and publishes nothing to node A", async () => {
    // Started means loaded: the service knows A's subscription on node B before consuming.
    expect(await publishedTo(nodeA)).toBe(0);
    expect(await publishedTo(nodeB)).toBe(0);
    const kinesis = kinesisClient();
    try {
      const r = await kinesis.send(new PutRecordsCommand({ StreamName: stream, Records: records() }));
      expect(r.FailedRecordCount ?? 0).toBe(0);
    } finally {
      kinesis.destroy();
    }
    await waitFor(() => received.length >= 2, () => `two live notifications through node B (got ${received.length})`, 60_000);
    expect(received).toEqual([
      { topic: userTopicOf(WS, A), kind: 'assigned' },
      { topic: userTopicOf(WS, A), kind: 'assigned' },
    ]);
    // Node B's counter registers the tier's publishes; node A's, where nobody listens, none.
    expect(await publishedTo(nodeB)).toBe(2);
    expect(await publishedTo(nodeA)).toBe(0);
    const metrics = await (await fetch(service.metricsUrl)).text();
    expect(metrics).toMatch(/^taskflow_notifications_delivered_total\{service="notifications"\} 2$/m);
    // The tier's own figures, which TaskflowNotificationsBrokerNodesMissing reads: both nodes connected.
    expect(metrics).toMatch(/^taskflow_notifications_broker_nodes_connected\{service="notifications"\} 2$/m);
    expect(metrics).toMatch(/^taskflow_notifications_broker_nodes_missing\{service="notifications"\} 0$/m);
    expect(metrics).toMatch(/^taskflow_notifications_node_publishes_total\{node="[^"]+",outcome="published",service="notifications"\} 2$/m);
    // The inbox has them too.
    const res = await fetch(`${service.apiUrl}/v1/workspaces/${WS}/notifications`, { headers: { authorization: `Bearer ${await token(A)}` } });
    expect(((await res.json()) as { notifications: unknown[] }).notifications).toHaveLength(2);
  }, 120_000);
});
