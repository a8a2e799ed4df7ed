// The router's broker-tier publisher against two broker nodes on ephemeral ports: each message
// reaches exactly the nodes with a subscriber of its topic, once per subscriber; a node restart
// forgets its sessions and its reconnected clients receive again; a new tier (a restarted router)
// loads the nodes' GET /subscriptions and delivers without any new subscribe.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import mqtt, { type MqttClient } from 'mqtt';
import type { Broker } from '../../infra/local/broker.js';
import { DEFAULT_ROUTER_SERVICE_USER } from '../../lib/authz.js';
import { TaskflowError } from '../../lib/errors.js';
import type { TokenVerifier } from '../../lib/jwt.js';
import { createLogger } from '../../lib/logger.js';
import { BrokerTier, brokerNode, TokenRefusedError } from '../../lib/broker-tier.js';
import { startBroker } from '../../infra/local/broker.js';
import { waitFor } from '../support/wait.js';

const P = (p: string) => `taskflow/v1/ws/w/projects/${p}`;
const logger = createLogger('broker-tier', 'silent');
let nodes: Broker[];
const got = new Map<string, string[]>();
const clients: MqttClient[] = [];

async function subscriber(broker: Broker, name: string, filters: string[]): Promise<MqttClient> {
  const c = await mqtt.connectAsync(broker.wsUrl, { clientId: `u.${name}`, reconnectPeriod: 200 });
  got.set(name, []);
  c.on('message', (topic, payload) => got.get(name)!.push(`${topic.split('/').pop()}:${payload.toString()}`));
  c.on('connect', () => void c.subscribeAsync(filters, { qos: 1 }));
  await c.subscribeAsync(filters, { qos: 1 });
  clients.push(c);
  return c;
}

/** Every (connected, configured) the tier reported: what the nodes-missing gauge is set from. */
const reported: [number, number][] = [];
const metrics = { nodePublished() {}, nodePublishFailed() {}, nodesConnected: (connected: number, configured: number) => void reported.push([connected, configured]) };
const tierOf = () => new BrokerTier({ nodes: nodes.map((n) => brokerNode(n.wsUrl.replace(/\/mqtt$/, ''))), pool: { size: 1, clientIdPrefix: 'service:router.t', publishesPerSecond: 1000 }, token: undefined, logger, metrics });

beforeAll(async () => {
  nodes = [await startBroker({ tcpPort: 0, wsPort: 0, id: 'b0' }), await startBroker({ tcpPort: 0, wsPort: 0, id: 'b1' })];
  await subscriber(nodes[0]!, 'a', [P('p1')]);
  await subscriber(nodes[1]!, 'b', [P('p2')]);
  await subscriber(nodes[0]!, 'sa', [P('shared')]);
  await subscriber(nodes[1]!, 'sb', [P('shared')]);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await Promise.all(nodes.map((n) => n.stop()));
});

describe('BrokerTier', () => {
  it('delivers each message once to each subscriber and nothing to nodes without one; a restarted node and a restarted router deliver again', async () => {
    let tier = tierOf();
    await tier.ready();
    // Both nodes missing before any connection, none once both are connected.
    expect([reported[0], reported.at(-1)]).toEqual([[0, 2], [2, 2]]);
    expect(tier.tracker.targets(P('p1'))).toEqual([brokerNode(nodes[0]!.wsUrl).id]);
    expect(tier.hasSubscriber(P('nobody'))).toBe(false);
    for (const [p, v] of [['p1', '1'], ['p2', '2'], ['shared', '3']] as const) await tier.publish(P(p), Buffer.from(v));
    await waitFor(() => [...got.values()].every((m) => m.length >= 1), 'every subscriber its message', 10_000, 20);
    expect(Object.fromEntries(got)).toEqual({ a: ['p1:1'], b: ['p2:2'], sa: ['shared:3'], sb: ['shared:3'] });

    // Node 0 restarts: its sessions are forgotten, its clients reconnect and subscribe again.
    const beforeRestart = reported.length;
    await nodes[0]!.restart();
    // The node is reported missing once the tier sees it gone, and back once it reconnects.
    await waitFor(() => reported.slice(beforeRestart).some(([connected]) => connected === 1), 'node 0 reported missing', 15_000, 20);
    await waitFor(() => tier.tracker.status(brokerNode(nodes[0]!.wsUrl).id) === 'live' && tier.tracker.targets(P('p1')).length === 1, 'node 0 loaded again with its reconnected subscriber', 15_000, 50);
    expect(reported.at(-1)).toEqual([2, 2]);
    await tier.publish(P('p1'), Buffer.from('4'));
    await waitFor(() => got.get('a')!.length >= 2, 'the reconnected client receives again', 10_000, 20);

    // A new router: loads the nodes, no new subscribe.
    await tier.close();
    tier = tierOf();
    await tier.ready();
    await tier.publish(P('shared'), Buffer.from('5'));
    await tier.publish(P('p2'), Buffer.from('6'));
    await waitFor(() => got.get('sa')!.length >= 2 && got.get('sb')!.length >= 2 && got.get('b')!.length >= 2, 'delivered after the router restart', 10_000, 20);
    expect(Object.fromEntries(got)).toEqual({ a: ['p1:1', 'p1:4'], b: ['p2:2', 'p2:6'], sa: ['shared:3', 'shared:5'], sb: ['shared:3', 'shared:5'] });
    await tier.close();
  });

  it("sends the router's token to a node that reserves its routes for it, and loads it; a refused token fails the start-up", async () => {
    // The real verifier (lib/jwt.ts) runs in the broker service's own process (broker-service.test.ts);
    // here one token stands for the router's, so the test is about what the tier sends.
    const verify: TokenVerifier = async (t) => {
      if (t !== 'router-token') throw new TaskflowError('UNAUTHENTICATED', 'invalid token');
      return { userId: DEFAULT_ROUTER_SERVICE_USER, expiresAt: Math.floor(Date.now() / 1000) + 600 };
    };
    const guarded = await startBroker({ tcpPort: 0, wsPort: 0, id: 'guarded', routeAuth: { verify, subject: DEFAULT_ROUTER_SERVICE_USER } });
    const node = brokerNode(guarded.wsUrl.replace(/\/mqtt$/, ''));
    const withToken = (token: string) => new BrokerTier({ nodes: [node], pool: { size: 1, clientIdPrefix: `service:router.${token}`, username: 'taskflow-router', publishesPerSecond: 1000 }, token, logger });
    try {
      const good = withToken('router-token');
      await good.ready();
      expect(good.tracker.status(node.id)).toBe('live');
      expect(good.tracker.targets(P('nobody'))).toEqual([]);
      await good.close();

      const refused = withToken('not-the-router');
      await expect(refused.ready()).rejects.toBeInstanceOf(TokenRefusedError);
      expect(refused.tracker.status(node.id)).not.toBe('live');
      await refused.close();
    } finally {
      await guarded.stop();
    }
  });
});
