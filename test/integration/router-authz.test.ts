// Membership-based topic authorization on a real broker: a plain MQTT client (not the SDK)
// cannot connect with a client id bound to another user; one whose token lacks a membership cannot subscribe; revoking a membership through the projection
// disconnects the subscriber within seconds; only the router's identity may publish.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import mqtt, { type MqttClient } from 'mqtt';
import { Registry } from 'prom-client';
import { projectTopicOf, userTopicOf } from '../../lib/authz.js';
import { createVerifier, signDevToken } from '../../lib/jwt.js';
import { createBrokerAuth, type BrokerAuth } from '../../infra/local/broker-auth.js';
import type { Broker } from '../../infra/local/broker.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { validateEvent } from '../../schemas/validate.js';
import { decodeEvent, type RouterEvent } from '../../router/event.js';
import { affectsMemberships } from '../../lib/membership-events.js';
import { DynamoMembershipProjection } from '../../lib/dynamo-memberships.js';
import { boundClientId, createTestTables, dynamoClient, startTestBroker, testStackEnv } from '../support/stack.js';

const secret = new TextEncoder().encode('router-authz-integration-secret-32b');
const WS = '11111111-1111-4111-8111-111111111111';
const P1 = '22222222-2222-4222-8222-000000000001';
const P2 = '22222222-2222-4222-8222-000000000002';
const ALICE = '66666666-6666-4666-8666-00000000000a';
const BOB = '66666666-6666-4666-8666-00000000000b';
const MEMBERSHIP = '55555555-5555-4555-8555-000000000001';

let client: DynamoDBClient;
let projection: DynamoMembershipProjection;
let membershipsTable: string;
let auth: BrokerAuth;
let broker: Broker;
const open: MqttClient[] = [];

function routerEvent(e: object): RouterEvent {
  const d = decodeEvent(Buffer.from(JSON.stringify(e)), validateEvent);
  if (!d.ok) throw new Error(`${d.reason}: ${d.message}`);
  return d.event;
}

async function connect(userId: string | undefined, clientId = userId ? boundClientId(userId) : undefined): Promise<MqttClient> {
  const password = userId ? await signDevToken(secret, userId, { ttlSeconds: 600 }) : undefined;
  const c = await mqtt.connectAsync(broker.tcpUrl, { username: 'any', ...(password ? { password } : {}), ...(clientId ? { clientId } : {}), reconnectPeriod: 0, connectTimeout: 5000 });
  open.push(c);
  return c;
}

/** The SUBACK's granted QoS (128 = refused; mqtt.js rejects the promise then). */
async function grantedQos(c: MqttClient, topic: string): Promise<number | undefined> {
  try {
    const granted = await c.subscribeAsync(topic, { qos: 1 });
    return granted[0]?.qos;
  } catch (err) {
    const suback = (err as { packet?: { granted?: number[] } }).packet;
    if (suback?.granted) return suback.granted[0];
    throw err;
  }
}

beforeAll(async () => {
  client = dynamoClient();
  const tables = await createTestTables('router-authz', ['memberships']);
  membershipsTable = tables.memberships!;
  projection = new DynamoMembershipProjection(client, membershipsTable);
  auth = createBrokerAuth({
    verify: createVerifier({ kind: 'hs256', secret, issuer: 'taskflow', audience: 'taskflow-realtime' }),
    memberships: (u) => projection.memberships(u),
    serviceUserIds: ['service:router'],
    recheckMs: 250,
  });
  broker = await startTestBroker(auth.hooks);
  await projection.apply([
    routerEvent(sampleEvent('membership.created', { workspaceId: WS, projectId: P1, userId: ALICE, entityId: MEMBERSHIP, commitLsn: 0x100n })),
  ]);
});

afterAll(async () => {
  for (const c of open) await c.endAsync(true).catch(() => {});
  auth?.stop();
  await broker?.stop();
  client?.destroy();
});

describe('broker authorization from the membership projection', () => {
  it('refuses a connection without a valid token', async () => {
    await expect(connect(undefined)).rejects.toThrow();
    await expect(mqtt.connectAsync(broker.tcpUrl, { username: 'x', password: 'not-a-jwt', reconnectPeriod: 0 })).rejects.toThrow();
  });

  it("refuses another user's client id, and the connection holding it stays up", async () => {
    const aliceId = boundClientId(ALICE);
    const alice = await connect(ALICE, aliceId);
    expect(await grantedQos(alice, projectTopicOf(WS, P1))).toBe(1);
    let aliceClosed = false;
    alice.once('close', () => {
      aliceClosed = true;
    });
    // Bob, authenticated with his own valid token, tries Alice's id: CONNACK 2 (identifier rejected).
    await expect(connect(BOB, aliceId)).rejects.toMatchObject({ code: 2 });
    await expect(connect(BOB, `${BOB}-not-bound`)).rejects.toMatchObject({ code: 2 });
    await expect(connect(BOB, 'mqttjs_any')).rejects.toMatchObject({ code: 2 });
    // Alice still receives what the router publishes on her subscription.
    const got = new Promise<string>((resolve) => alice.once('message', (_t, payload) => resolve(payload.toString())));
    const router = await connect('service:router');
    await router.publishAsync(projectTopicOf(WS, P1), 'still-here', { qos: 1 });
    expect(await got).toBe('still-here');
    expect(aliceClosed).toBe(false);
    expect(alice.connected).toBe(true);
  });

  it('lets a member subscribe to its project and its own user topic, and nothing else', async () => {
    const alice = await connect(ALICE);
    expect(await grantedQos(alice, projectTopicOf(WS, P1))).toBe(1);
    expect(await grantedQos(alice, userTopicOf(WS, ALICE))).toBe(1);
    expect(await grantedQos(alice, projectTopicOf(WS, P2))).toBe(128);
    expect(await grantedQos(alice, projectTopicOf(WS, '+'))).toBe(128);
    expect(await grantedQos(alice, 'taskflow/#')).toBe(128);
    const bob = await connect(BOB);
    expect(await grantedQos(bob, projectTopicOf(WS, P1))).toBe(128);
  });

  it('only the router identity may publish; members receive what it publishes', async () => {
    const alice = await connect(ALICE);
    await grantedQos(alice, projectTopicOf(WS, P1));
    const got = new Promise<string>((resolve) => alice.once('message', (_t, payload) => resolve(payload.toString())));
    const router = await connect('service:router');
    await router.publishAsync(projectTopicOf(WS, P1), 'hello', { qos: 1 });
    expect(await got).toBe('hello');

    const mallory = await connect(ALICE);
    const closed = new Promise<void>((resolve) => mallory.once('close', () => resolve()));
    mallory.publish(projectTopicOf(WS, P1), 'forged', { qos: 1 });
    await closed;
  });

  it('revoking the membership disconnects the subscriber within seconds, and it cannot subscribe again', async () => {
    const alice = await connect(ALICE);
    expect(await grantedQos(alice, projectTopicOf(WS, P1))).toBe(1);
    const closed = new Promise<number>((resolve) => alice.once('close', () => resolve(Date.now())));
    const revokedAt = Date.now();
    await projection.apply([routerEvent(sampleEvent('membership.deleted', { workspaceId: WS, projectId: P1, userId: ALICE, entityId: MEMBERSHIP, commitLsn: 0x200n }))]);
    expect((await closed) - revokedAt).toBeLessThan(3000);
    const again = await connect(ALICE);
    expect(await grantedQos(again, projectTopicOf(WS, P1))).toBe(128);
    // Reprocessing the older create (after a crash) does not bring the membership back.
    await projection.apply([routerEvent(sampleEvent('membership.created', { workspaceId: WS, projectId: P1, userId: ALICE, entityId: MEMBERSHIP, commitLsn: 0x100n }))]);
    expect(await projection.memberships(ALICE)).toEqual([]);
  });
});

describe('IoT Core custom authorizer (Lambda entry) against the same projection', () => {
  it('grants the policy for the memberships the projection holds', async () => {
    const { authorizerFromEnv } = await import('../../router/iot-authorizer-lambda.js');
    const BOB_MEMBERSHIP = '55555555-5555-4555-8555-0000000000b0';
    await projection.apply([routerEvent(sampleEvent('membership.created', { workspaceId: WS, projectId: P2, userId: BOB, entityId: BOB_MEMBERSHIP, commitLsn: 0x300n }))]);
    const authorize = authorizerFromEnv({ ...testStackEnv(), DYNAMODB_TABLE_MEMBERSHIPS: membershipsTable, JWT_SECRET: new TextDecoder().decode(secret), IOT_ACCOUNT_ID: '123456789012' });
    const token = await signDevToken(secret, BOB, { ttlSeconds: 3600 });
    const res = await authorize({ protocolData: { mqtt: { username: 'x', password: Buffer.from(token).toString('base64') } } });
    expect(res.isAuthenticated).toBe(true);
    const policy = res.policyDocuments.join('\n');
    expect(policy).toContain(`topicfilter/${projectTopicOf(WS, P2)}`);
    expect(policy).not.toContain(`topicfilter/${projectTopicOf(WS, P1)}`);
  });
});

describe('TRUNCATE memberships', () => {
  it('revokes every membership written before it (subscribers are disconnected), whatever shard order the events are processed in', async () => {
    const CAROL = '66666666-6666-4666-8666-00000000000c';
    const DAVE = '66666666-6666-4666-8666-00000000000d';
    await projection.apply([routerEvent(sampleEvent('membership.created', { workspaceId: WS, projectId: P1, userId: CAROL, entityId: '55555555-5555-4555-8555-0000000000c0', commitLsn: 0x400n }))]);
    const carol = await connect(CAROL);
    expect(await grantedQos(carol, projectTopicOf(WS, P1))).toBe(1);
    const closed = new Promise<number>((resolve) => carol.once('close', () => resolve(Date.now())));
    const truncatedAt = Date.now();
    // A truncate of two tables, memberships second: the event's `table` names only the first.
    const truncate = routerEvent(sampleEvent('table.truncated', { tables: ['tasks', 'memberships'], commitLsn: 0x500n }));
    expect(affectsMemberships(truncate)).toBe(true);
    await projection.apply([truncate]);
    expect((await closed) - truncatedAt).toBeLessThan(3000);
    expect(await projection.memberships(CAROL)).toEqual([]);
    // Older than the truncate but processed after it (another shard was behind): stays hidden.
    await projection.apply([routerEvent(sampleEvent('membership.created', { workspaceId: WS, projectId: P2, userId: DAVE, entityId: '55555555-5555-4555-8555-0000000000d0', commitLsn: 0x450n }))]);
    expect(await projection.memberships(DAVE)).toEqual([]);
    // Created after the truncate: counts.
    await projection.apply([routerEvent(sampleEvent('membership.created', { workspaceId: WS, projectId: P2, userId: DAVE, entityId: '55555555-5555-4555-8555-0000000000d1', commitLsn: 0x600n }))]);
    expect(await projection.memberships(DAVE)).toEqual([{ workspaceId: WS, projectId: P2, role: 'member' }]);
    // Reprocessing the truncate does not hide the later membership.
    await projection.apply([truncate]);
    expect(await projection.memberships(DAVE)).toHaveLength(1);
  });
});

describe('connect rate per user', () => {
  it("refuses one user's connects beyond its rate with CONNACK 3 and counts them, while other users and the router connect", async () => {
    const registry = new Registry();
    const limited = createBrokerAuth({
      verify: createVerifier({ kind: 'hs256', secret, issuer: 'taskflow', audience: 'taskflow-realtime' }),
      memberships: (u) => projection.memberships(u),
      serviceUserIds: ['service:router'],
      connectLimits: { ratePerSec: 0.01, burst: 3 },
      registry,
    });
    const limitedBroker = await startTestBroker(limited.hooks);
    const clients: MqttClient[] = [];
    const connectTo = async (userId: string) => {
      const password = await signDevToken(secret, userId, { ttlSeconds: 600 });
      const c = await mqtt.connectAsync(limitedBroker.tcpUrl, { username: 'any', password, clientId: boundClientId(userId), reconnectPeriod: 0, connectTimeout: 5000 });
      clients.push(c);
      return c;
    };
    try {
      for (let i = 0; i < 3; i++) await connectTo(BOB);
      await expect(connectTo(BOB)).rejects.toMatchObject({ code: 3 });
      await expect(connectTo(BOB)).rejects.toMatchObject({ code: 3 });
      expect((await connectTo(ALICE)).connected).toBe(true);
      for (let i = 0; i < 5; i++) expect((await connectTo('service:router')).connected).toBe(true);
      const refused = (await registry.getSingleMetric('taskflow_broker_connects_refused_total')?.get())?.values ?? [];
      expect(refused.find((v) => v.labels.reason === 'rate')?.value).toBe(2);
    } finally {
      for (const c of clients) await c.endAsync(true).catch(() => {});
      limited.stop();
      await limitedBroker.stop();
    }
  });
});
