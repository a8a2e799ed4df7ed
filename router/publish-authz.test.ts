// Only the router may publish, on both paths a browser could try: the local broker's hooks
// (infra/local/broker-auth.ts, a real aedes broker) and the IoT Core custom authorizer's policy
// documents (router/iot-authorizer.ts, judged by the stand-in of IoT's policy engine). A browser
// identity with a valid token and a membership is refused on its project's topic, its own user
// topic and IoT's reserved `$aws/events/…`; the router's publishes go through.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { clientIdPrefix, DEFAULT_ROUTER_SERVICE_USER, type Membership, projectTopicOf, userTopicOf } from '../lib/authz.js';
import { createVerifier, signDevToken } from '../lib/jwt.js';
import { createBrokerAuth, type BrokerAuth } from '../infra/local/broker-auth.js';
import { startBroker, type Broker } from '../infra/local/broker.js';
import { iotArn, policyAllows } from '../infra/local/iot-policy.js';
import { waitFor } from '../test/support/wait.js';
import { createIotAuthorizer } from './iot-authorizer.js';

const secret = new TextEncoder().encode('publish-authz-test-secret-32-bytes!');
const verify = createVerifier({ kind: 'hs256', secret, issuer: 'taskflow', audience: 'taskflow-realtime' });
const WS = '11111111-1111-4111-8111-111111111111';
const P1 = '22222222-2222-4222-8222-000000000001';
const ALICE = '66666666-6666-4666-8666-00000000000a';
const ROUTER = DEFAULT_ROUTER_SERVICE_USER;
const memberships = async (userId: string): Promise<Membership[]> => (userId === ALICE ? [{ workspaceId: WS, projectId: P1, role: 'member' }] : []);

const forbidden = [projectTopicOf(WS, P1), userTopicOf(WS, ALICE), `$aws/events/presence/connected/${clientIdPrefix(ALICE)}tab`];

let auth: BrokerAuth;
let broker: Broker;
const open: MqttClient[] = [];

async function connect(userId: string): Promise<MqttClient> {
  const password = await signDevToken(secret, userId, { ttlSeconds: 600 });
  const c = await mqtt.connectAsync(broker.tcpUrl, { username: 'any', password, clientId: `${clientIdPrefix(userId)}${randomBytes(4).toString('hex')}`, reconnectPeriod: 0 });
  open.push(c);
  return c;
}

beforeAll(async () => {
  auth = createBrokerAuth({ verify, memberships, serviceUserIds: [ROUTER], recheckMs: 3_600_000 });
  broker = await startBroker({ tcpPort: 0, wsPort: 0, hooks: auth.hooks });
});

afterAll(async () => {
  for (const c of open) await c.endAsync(true).catch(() => {});
  auth.stop();
  await broker.stop();
});

describe('only the router may publish', () => {
  it('the local broker refuses a browser identity on its project topic, its user topic and $aws/events, and carries the router', async () => {
    const router = await connect(ROUTER);
    const alice = await connect(ALICE);
    const heard: { topic: string; payload: string }[] = [];
    const record = (topic: string, payload: Buffer) => heard.push({ topic, payload: payload.toString() });
    alice.on('message', record);
    router.on('message', record);
    await alice.subscribeAsync([projectTopicOf(WS, P1), userTopicOf(WS, ALICE)], { qos: 1 });
    await router.subscribeAsync('$aws/events/#', { qos: 1 });

    for (const topic of forbidden) {
      const browser = await connect(ALICE);
      const closed = new Promise<void>((resolve) => browser.once('close', () => resolve()));
      browser.publish(topic, 'forged', { qos: 1 });
      await closed; // aedes drops a client whose publish is not authorized
    }
    await router.publishAsync(projectTopicOf(WS, P1), 'from-router', { qos: 1 });
    await router.publishAsync(userTopicOf(WS, ALICE), 'from-router', { qos: 1 });
    await waitFor(() => heard.filter((m) => m.payload === 'from-router').length === 2, 'both router publishes');
    expect(heard.filter((m) => m.payload === 'forged')).toEqual([]);
  });

  it("the IoT authorizer's documents allow iot:Publish to the router identity only, and never on $aws", async () => {
    const account = { region: 'us-east-1', accountId: '123456789012' };
    const authorize = createIotAuthorizer({ verify, memberships, account, publisherUserIds: [ROUTER] });
    const documentsOf = async (userId: string) => {
      const res = await authorize({ token: await signDevToken(secret, userId, { ttlSeconds: 3600 }) });
      expect(res.isAuthenticated).toBe(true);
      return res.policyDocuments;
    };
    const alice = await documentsOf(ALICE);
    const router = await documentsOf(ROUTER);
    // Alice's documents are not empty: she may subscribe to and receive her project.
    expect(policyAllows(alice, 'iot:Subscribe', iotArn(account, 'topicfilter', projectTopicOf(WS, P1)))).toBe(true);
    expect(forbidden.map((t) => policyAllows(alice, 'iot:Publish', iotArn(account, 'topic', t)))).toEqual([false, false, false]);
    expect(forbidden.map((t) => policyAllows(router, 'iot:Publish', iotArn(account, 'topic', t)))).toEqual([true, true, false]);
    // The router reads the lifecycle events it tracks subscriptions from.
    expect(policyAllows(router, 'iot:Subscribe', iotArn(account, 'topicfilter', '$aws/events/subscriptions/subscribed/+'))).toBe(true);
  });
});
