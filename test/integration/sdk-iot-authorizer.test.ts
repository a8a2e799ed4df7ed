// The SDK's `iot` option against the local stand-ins, the way it would reach IoT Core: MQTT over
// WebSocket with `?x-amz-customauthorizer-name=…&token=…` (clients/web-sdk/src/connection.ts),
// the broker calling the authorizer Lambda's own handler (router/iot-authorizer-lambda.ts, on
// the membership projection in DynamoDB) and enforcing the policy documents it answers with
// (infra/local/iot-custom-authorizer.ts). Subscriptions granted and refused follow the
// memberships; the router publishes through the username form of the same authorizer.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import mqtt, { type MqttClient } from 'mqtt';
import { DEFAULT_ROUTER_SERVICE_USER, projectTopicOf } from '../../lib/authz.js';
import { signDevToken } from '../../lib/jwt.js';
import { DynamoMembershipProjection } from '../../lib/dynamo-memberships.js';
import type { BrokerHooks } from '../../infra/local/broker.js';
import { startBroker, type Broker } from '../../infra/local/broker.js';
import { customAuthorizerHooks } from '../../infra/local/iot-custom-authorizer.js';
import { authorizerFromEnv } from '../../router/iot-authorizer-lambda.js';
import { decodeEvent, type RouterEvent } from '../../router/event.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { validateEvent } from '../../schemas/validate.js';
import { createClient, type Change, type RealtimeClient, type RealtimeError, type Status } from '@taskflow/realtime';
import { ProjectFeed } from '../../clients/web-sdk/test/project-feed.js';
import { boundClientId, createTestTables, dynamoClient, testStackEnv } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

const secret = new TextEncoder().encode('sdk-iot-authorizer-secret-32-bytes!');
const AUTHORIZER = 'taskflow-jwt';
const account = { region: 'us-east-1', accountId: '123456789012' };
const WS = '11111111-1111-4111-8111-111111111111';
const P1 = '22222222-2222-4222-8222-000000000001';
const P2 = '22222222-2222-4222-8222-000000000002';
const ALICE = '66666666-6666-4666-8666-00000000000a';
const BOB = '66666666-6666-4666-8666-00000000000b';

let dynamo: DynamoDBClient;
let broker: Broker;
let feed: ProjectFeed;
const subscribeDecisions: { clientId: string; topic: string; granted: boolean }[] = [];
const clients: RealtimeClient[] = [];
const raw: MqttClient[] = [];

function routerEvent(e: object): RouterEvent {
  const d = decodeEvent(Buffer.from(JSON.stringify(e)), validateEvent);
  if (!d.ok) throw new Error(`${d.reason}: ${d.message}`);
  return d.event;
}

beforeAll(async () => {
  dynamo = dynamoClient();
  const tables = await createTestTables('sdk-iot-authorizer', ['memberships']);
  const projection = new DynamoMembershipProjection(dynamo, tables.memberships!);
  await projection.apply([
    routerEvent(sampleEvent('membership.created', { workspaceId: WS, projectId: P1, userId: ALICE, entityId: '55555555-5555-4555-8555-000000000001', commitLsn: 0x100n })),
    routerEvent(sampleEvent('membership.created', { workspaceId: WS, projectId: P2, userId: BOB, entityId: '55555555-5555-4555-8555-000000000002', commitLsn: 0x200n })),
  ]);
  // The Lambda's handler, configured as the realtime stack configures it.
  const authorize = authorizerFromEnv({ ...testStackEnv(), DYNAMODB_TABLE_MEMBERSHIPS: tables.memberships!, JWT_SECRET: new TextDecoder().decode(secret), IOT_ACCOUNT_ID: account.accountId, AWS_REGION: account.region, IOT_PUBLISHER_USER_IDS: DEFAULT_ROUTER_SERVICE_USER });
  const hooks = customAuthorizerHooks({ authorizerName: AUTHORIZER, authorize, account });
  const observed: BrokerHooks = {
    ...hooks,
    authorizeSubscribe: (client, sub, done) =>
      hooks.authorizeSubscribe!(client, sub, (err, granted) => {
        subscribeDecisions.push({ clientId: client?.id ?? '', topic: sub.topic, granted: granted !== null });
        done(err, granted);
      }),
  };
  broker = await startBroker({ tcpPort: 0, wsPort: 0, hooks: observed });
  // The replay API stand-in refuses what the router's replay server would (non-members).
  feed = await new ProjectFeed({ publishUrl: broker.publishUrl }).start();
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const c of raw) await c.endAsync(true).catch(() => {});
  await feed?.close();
  await broker?.stop();
  dynamo?.destroy();
});

class Recorder {
  changes: Change[] = [];
  statuses: Status[] = [];
  errors: RealtimeError[] = [];
  handlers() {
    return { onChange: (c: Change) => this.changes.push(c), onResync: () => undefined, onStatus: (s: Status) => this.statuses.push(s), onError: (e: RealtimeError) => this.errors.push(e) };
  }
  get status(): Status | undefined {
    return this.statuses[this.statuses.length - 1];
  }
}

async function sdk(userId: string, token?: string): Promise<RealtimeClient> {
  const c = createClient({
    url: broker.wsUrl,
    token: token ?? (await signDevToken(secret, userId, { ttlSeconds: 600 })),
    replayUrl: feed.replayUrl,
    iot: { authorizerName: AUTHORIZER },
    backoff: { baseMs: 50, maxMs: 500 },
    subscription: { reorderWindowMs: 50 },
  });
  clients.push(c);
  return c;
}

describe("the SDK's iot option through the custom-authorizer stand-in", () => {
  it('connects with the token in the query string; subscriptions are granted and refused as the memberships say', async () => {
    const alice = await sdk(ALICE);
    const own = new Recorder();
    const foreign = new Recorder();
    feed.forbidden.add(P2);
    alice.subscribeProject(WS, P1, own.handlers());
    alice.subscribeProject(WS, P2, foreign.handlers());
    await waitFor(() => own.status === 'live', 'P1 live');
    await waitFor(() => foreign.errors.some((e) => e.code === 'forbidden'), 'P2 forbidden');
    const mine = subscribeDecisions.filter((d) => d.clientId.startsWith(`${ALICE}.`));
    expect(mine.filter((d) => d.topic === projectTopicOf(WS, P1)).map((d) => d.granted)).toEqual([true]);
    expect(new Set(mine.filter((d) => d.topic === projectTopicOf(WS, P2)).map((d) => d.granted))).toEqual(new Set([false]));

    // What is published to P1 reaches Alice (iot:Receive); Bob, a member of P2 only, gets P2.
    await feed.commit(WS, P1, 2);
    await waitFor(() => own.changes.length === 2, 'two changes on P1');
    const bob = await sdk(BOB);
    const bobs = new Recorder();
    bob.subscribeProject(WS, P2, bobs.handlers());
    await waitFor(() => bobs.status === 'live', 'Bob live on P2');
    expect(subscribeDecisions.filter((d) => d.clientId.startsWith(`${BOB}.`)).map((d) => d.granted)).toEqual([true]);
    expect(foreign.changes).toEqual([]);
  });

  it('refuses a forged token at connect', async () => {
    const forged = await signDevToken(new TextEncoder().encode('not-the-secret-not-the-secret-32!!'), ALICE, { ttlSeconds: 600 });
    const r = new Recorder();
    (await sdk(ALICE, forged)).subscribeProject(WS, P1, r.handlers());
    await waitFor(() => r.errors.some((e) => e.code === 'unauthorized'), 'unauthorized');
    expect(r.status).not.toBe('live');
  });

  it("the router publishes through the authorizer's username form; a member's own publish is refused", async () => {
    const connect = async (userId: string) => {
      const c = await mqtt.connectAsync(broker.tcpUrl, { username: `taskflow?x-amz-customauthorizer-name=${AUTHORIZER}`, password: await signDevToken(secret, userId, { ttlSeconds: 600 }), clientId: boundClientId(userId), reconnectPeriod: 0 });
      raw.push(c);
      return c;
    };
    const alice = await connect(ALICE);
    const heard: string[] = [];
    alice.on('message', (_t, payload) => heard.push(payload.toString()));
    await alice.subscribeAsync(projectTopicOf(WS, P1), { qos: 0 });
    const forger = await connect(ALICE);
    const closed = new Promise<void>((resolve) => forger.once('close', () => resolve()));
    forger.publish(projectTopicOf(WS, P1), 'forged', { qos: 1 });
    await closed;
    const router = await connect(DEFAULT_ROUTER_SERVICE_USER);
    await router.publishAsync(projectTopicOf(WS, P1), 'from-router', { qos: 1 });
    await waitFor(() => heard.includes('from-router'), "the router's message");
    expect(heard).toEqual(['from-router']);
  });
});
