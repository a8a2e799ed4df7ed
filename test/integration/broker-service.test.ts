// `taskflow broker` as production runs it (its own process, broker/README.md): a browser's
// connection authorized from the membership projection, GET /subscriptions answering the node's
// live sessions with the brokerId and session ids its lifecycle events carry, the HTTP routes
// reserved for the router's token (GET /subscriptions also for the publisher service users), the node's metrics, a token expiring while connected cut at
// once (not left to the membership re-check), and SIGTERM draining the clients.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import mqtt, { type MqttClient } from 'mqtt';
import { createConnection } from 'node:net';
import { DEFAULT_ROUTER_SERVICE_USER, projectTopicOf } from '../../lib/authz.js';
import { DynamoMembershipProjection } from '../../lib/dynamo-memberships.js';
import { signDevToken } from '../../lib/jwt.js';
import { decodeEvent, type RouterEvent } from '../../router/event.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { validateEvent } from '../../schemas/validate.js';
import type { SessionView } from '../../infra/local/broker.js';
import { startServiceProcess, type ServiceProcess } from '../support/service-process.js';
import { boundClientId, createTestTables, dynamoClient, testStackEnv } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

const SECRET = 'broker-service-test-secret-of-32-bytes+';
const BROKER_ID = 'broker-test-0';
const WS = '11111111-1111-4111-8111-111111111111';
const P1 = '22222222-2222-4222-8222-000000000001';
const P2 = '22222222-2222-4222-8222-000000000002';
const ALICE = '66666666-6666-4666-8666-00000000000a';

let dynamo: DynamoDBClient;
let broker: ServiceProcess;
let tcpUrl: string;
let httpUrl: string;
let metricsUrl: string;
const mqttClients: MqttClient[] = [];
const token = (userId: string) => signDevToken(new TextEncoder().encode(SECRET), userId, { ttlSeconds: 600 });

function routerEvent(e: object): RouterEvent {
  const d = decodeEvent(Buffer.from(JSON.stringify(e)), validateEvent);
  if (!d.ok) throw new Error(`${d.reason}: ${d.message}`);
  return d.event;
}

async function connect(userId: string): Promise<MqttClient> {
  const c = await mqtt.connectAsync(tcpUrl, { clientId: boundClientId(userId), username: 'x', password: await token(userId), reconnectPeriod: 0 });
  c.on('error', () => undefined); // refused subscriptions and the drain's close are asserted on below
  mqttClients.push(c);
  return c;
}

const subscriptions = async (authorization?: string) => {
  const res = await fetch(`${httpUrl}/subscriptions`, authorization ? { headers: { authorization } } : {});
  return { status: res.status, body: (await res.json()) as { brokerId?: string; sessions?: SessionView[]; error?: string } };
};

beforeAll(async () => {
  dynamo = dynamoClient();
  const tables = await createTestTables('broker-service', ['memberships']);
  await new DynamoMembershipProjection(dynamo, tables.memberships!).apply([
    routerEvent(sampleEvent('membership.created', { workspaceId: WS, projectId: P1, userId: ALICE, entityId: '55555555-5555-4555-8555-000000000001', commitLsn: 0x100n })),
  ]);
  broker = await startServiceProcess(
    'broker',
    { ...testStackEnv(), DYNAMODB_TABLE_MEMBERSHIPS: tables.memberships!, JWT_SECRET: SECRET, BROKER_ID, BROKER_HOST: '127.0.0.1', BROKER_TCP_PORT: '0', BROKER_WS_PORT: '0', METRICS_PORT: '0', BROKER_DRAIN_MS: '300' },
    ['broker started'],
  );
  ({ tcpUrl, httpUrl, metricsUrl } = broker.entries['broker started'] as { tcpUrl: string; httpUrl: string; metricsUrl: string });
}, 90_000);

afterAll(async () => {
  for (const c of mqttClients) await c.endAsync(true).catch(() => undefined);
  await broker?.stop();
  dynamo?.destroy();
});

describe('taskflow broker', () => {
  it("lists a browser's live session with the brokerId and session id of its lifecycle event, its granted filters only", async () => {
    const router = await connect(DEFAULT_ROUTER_SERVICE_USER);
    const lifecycle: Record<string, unknown>[] = [];
    router.on('message', (topic, payload) => {
      if (topic.startsWith('$aws/events/subscriptions/subscribed/')) lifecycle.push(JSON.parse(payload.toString()) as Record<string, unknown>);
    });
    await router.subscribeAsync('$aws/events/#');

    const alice = await connect(ALICE);
    await alice.subscribeAsync(projectTopicOf(WS, P1), { qos: 1 });
    // Not a member of P2: SUBACK failure, and the filter is not one of the session's.
    await expect(alice.subscribeAsync(projectTopicOf(WS, P2), { qos: 1 })).rejects.toBeDefined();
    const event = await waitFor(() => lifecycle.find((e) => e.clientId === alice.options.clientId), 'the subscribed event of alice', 10_000);
    expect(event).toMatchObject({ brokerId: BROKER_ID, topics: [projectTopicOf(WS, P1)] });

    const { status, body } = await subscriptions(`Bearer ${await token(DEFAULT_ROUTER_SERVICE_USER)}`);
    expect(status).toBe(200);
    expect(body.brokerId).toBe(BROKER_ID);
    expect(body.sessions).toContainEqual({ clientId: alice.options.clientId, sessionId: event.sessionIdentifier, filters: [projectTopicOf(WS, P1)] });
    expect(body.sessions).toContainEqual(expect.objectContaining({ clientId: router.options.clientId, filters: ['$aws/events/#'] }));

    const metrics = await (await fetch(metricsUrl)).text();
    expect(metrics).toMatch(/^taskflow_broker_clients\{[^}]*\} 2$/m);
    expect(metrics).toMatch(/^taskflow_broker_subscriptions\{[^}]*\} 2$/m);
    expect(metrics).toMatch(/^taskflow_authorizer_decisions_total\{(?=[^}]*step="subscribe")(?=[^}]*outcome="deny")[^}]*\} 1$/m);
  });

  it('refuses the HTTP routes without a token, with a bad one and to any subject but the router', async () => {
    expect(await subscriptions()).toEqual({ status: 401, body: expect.objectContaining({ error: 'unauthenticated' }) });
    expect(await subscriptions('Bearer not-a-jwt')).toEqual({ status: 401, body: expect.objectContaining({ error: 'unauthenticated' }) });
    const foreign = await signDevToken(new TextEncoder().encode('another-secret-of-at-least-32-bytes!!'), DEFAULT_ROUTER_SERVICE_USER);
    expect(await subscriptions(`Bearer ${foreign}`)).toEqual({ status: 401, body: expect.objectContaining({ error: 'unauthenticated' }) });
    expect(await subscriptions(`Bearer ${await token(ALICE)}`)).toEqual({ status: 403, body: expect.objectContaining({ error: 'forbidden' }) });
    const publish = await fetch(`${httpUrl}/topics/${encodeURIComponent(projectTopicOf(WS, P1))}?qos=1`, { method: 'POST', body: 'x', headers: { authorization: `Bearer ${await token(ALICE)}` } });
    expect(publish.status).toBe(403);
    const disconnect = await fetch(`${httpUrl}/connections/anyone`, { method: 'DELETE' });
    expect(disconnect.status).toBe(401);
  });

  it('answers GET /subscriptions to a publisher service user (BROKER_PUBLISHER_USER_IDS) too, but keeps DELETE /connections for the router; a plain user gets neither', async () => {
    const notifications = `Bearer ${await token('service:notifications')}`;
    const { status, body } = await subscriptions(notifications);
    expect(status).toBe(200);
    expect(body.brokerId).toBe(BROKER_ID);
    expect(Array.isArray(body.sessions)).toBe(true);
    const del = (authorization: string) => fetch(`${httpUrl}/connections/anyone`, { method: 'DELETE', headers: { authorization } }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error?: string } }));
    expect(await del(notifications)).toEqual({ status: 403, body: expect.objectContaining({ error: 'forbidden' }) });
    const publish = await fetch(`${httpUrl}/topics/${encodeURIComponent(projectTopicOf(WS, P1))}?qos=1`, { method: 'POST', body: 'x', headers: { authorization: notifications } });
    expect(publish.status).toBe(403);

    const alice = `Bearer ${await token(ALICE)}`;
    expect(await subscriptions(alice)).toEqual({ status: 403, body: expect.objectContaining({ error: 'forbidden' }) });
    expect(await del(alice)).toEqual({ status: 403, body: expect.objectContaining({ error: 'forbidden' }) });
    // The router keeps both (404: no client has that id).
    expect((await del(`Bearer ${await token(DEFAULT_ROUTER_SERVICE_USER)}`)).status).toBe(404);
  });

  it('cuts a connection whose token expires while it is connected within about a second of its exp, not at the membership re-check (300 s)', async () => {
    const short = await signDevToken(new TextEncoder().encode(SECRET), ALICE, { ttlSeconds: 3 });
    const { exp } = JSON.parse(Buffer.from(short.split('.')[1]!, 'base64url').toString()) as { exp: number };
    const alice = await mqtt.connectAsync(tcpUrl, { clientId: boundClientId(ALICE), username: 'x', password: short, reconnectPeriod: 0 });
    alice.on('error', () => undefined);
    mqttClients.push(alice);
    const closedAt = new Promise<number>((resolve) => alice.once('close', () => resolve(Date.now())));
    await alice.subscribeAsync(projectTopicOf(WS, P1), { qos: 1 });
    const at = await closedAt;
    // The node ticks every second: cut in the tick after exp (the margin is the host's scheduling).
    expect(at).toBeGreaterThanOrEqual(exp * 1000);
    expect(at - exp * 1000).toBeLessThan(3000);
    // The same token cannot come back.
    await expect(mqtt.connectAsync(tcpUrl, { clientId: boundClientId(ALICE), username: 'x', password: short, reconnectPeriod: 0 })).rejects.toThrow();
  });

  it('on SIGTERM refuses new connections, closes its clients and exits 0', async () => {
    const alice = await connect(ALICE);
    const closed = new Promise<void>((resolve) => alice.once('close', () => resolve()));
    const exited = new Promise<number | null>((resolve) => broker.child.once('exit', (code) => resolve(code)));
    broker.child.kill('SIGTERM');
    await closed;
    expect(await exited).toBe(0);
    const port = Number(new URL(tcpUrl).port);
    await expect(
      new Promise((resolve, reject) => {
        const socket = createConnection(port, '127.0.0.1', () => resolve(socket.destroy()));
        socket.once('error', reject);
      }),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
