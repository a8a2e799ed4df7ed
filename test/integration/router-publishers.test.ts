// Both publisher adapters against a real broker: IoT data-plane Publish through the local
// POST /topics/{topic} route, and the MQTT pool (order per topic, publish rate per connection);
// the revoker against the broker's DELETE /connections/{clientId} route.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import mqtt, { type MqttClient } from 'mqtt';
import { createIotDataClient } from '../../lib/aws.js';
import type { Broker } from '../../infra/local/broker.js';
import { IotConnectionRevoker } from '../../router/connection-revoker.js';
import { IotDataPublisher, MqttPublisherPool } from '../../lib/publishers.js';
import { startTestBroker } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

let broker: Broker;
let sub: MqttClient;
const received: { topic: string; payload: string }[] = [];

beforeAll(async () => {
  broker = await startTestBroker();
  sub = await mqtt.connectAsync(broker.tcpUrl, { reconnectPeriod: 0 });
  sub.on('message', (topic, payload) => received.push({ topic, payload: payload.toString() }));
  await sub.subscribeAsync('taskflow/v1/ws/w/projects/+', { qos: 1 });
});

afterAll(async () => {
  await sub?.endAsync(true);
  await broker?.stop();
});

describe('publishers', () => {
  it('IoT data-plane Publish reaches MQTT subscribers through the local route', async () => {
    received.length = 0;
    const publisher = new IotDataPublisher(createIotDataClient({ region: 'us-east-1', iotDataEndpoint: broker.publishUrl }));
    await publisher.publish('taskflow/v1/ws/w/projects/p1', Buffer.from('{"v":1}'));
    await waitFor(() => received.length >= 1, 'the message at the subscriber', 10_000, 20);
    expect(received).toEqual([{ topic: 'taskflow/v1/ws/w/projects/p1', payload: '{"v":1}' }]);
    await publisher.close();
  });

  it('the MQTT pool keeps each topic in order and each connection under its publish rate', async () => {
    received.length = 0;
    const pool = await MqttPublisherPool.connect({ url: broker.tcpUrl, size: 2, clientIdPrefix: 'pool-test', publishesPerSecond: 50 });
    const started = Date.now();
    const sends = [];
    for (let i = 0; i < 200; i += 1) sends.push(pool.publish(`taskflow/v1/ws/w/projects/p${i % 4}`, Buffer.from(String(i))));
    await Promise.all(sends);
    const elapsed = Date.now() - started;
    await waitFor(() => received.length >= 200, () => `200 messages at the subscriber (${received.length} so far)`, 10_000, 20);
    // Burst 50 per connection, then 50/s: 200 messages on 2 connections need ≥ ~1 s.
    expect(elapsed).toBeGreaterThanOrEqual(900);
    for (let p = 0; p < 4; p += 1) {
      const got = received.filter((m) => m.topic.endsWith(`/p${p}`)).map((m) => Number(m.payload));
      expect(got).toEqual(Array.from({ length: 50 }, (_, k) => k * 4 + p));
    }
    await pool.close();
  });
  it('the MQTT pool closes within its grace when the broker never acknowledges a publish (refused: the broker closes the connection, the client resends), failing that publish', async () => {
    // As the pipeline's broker treats a service identity it does not admit (bench:consumers' notifications before it was admitted).
    let refusals = 0;
    const refusing = await startTestBroker({ authorizePublish: (_client, _packet, done) => done(new Error(`not authorized (${++refusals})`)) });
    try {
      const pool = await MqttPublisherPool.connect({ url: refusing.tcpUrl, size: 1, clientIdPrefix: 'refused-test', publishesPerSecond: 50 });
      const refused = pool.publish('taskflow/v1/ws/w/users/u', Buffer.from('{}'));
      const outcome = refused.then(() => 'acknowledged', (err: Error) => err.message);
      await waitFor(() => refusals >= 2, 'the broker to refuse the publish and the client to send it again after reconnecting', 10_000, 20);
      // A plain end() would wait for the acknowledgement forever.
      await pool.close(300);
      expect(await outcome).toBe('publisher closed before the broker acknowledged the publish');
      await expect(pool.publish('taskflow/v1/ws/w/users/u', Buffer.from('{}'))).rejects.toThrow('publisher closed');
    } finally {
      await refusing.stop();
    }
  });
});

describe('IotConnectionRevoker', () => {
  it("closes every connection of the revoked users through the local DeleteConnection route, and only theirs", async () => {
    const connect = (clientId: string) => mqtt.connectAsync(broker.tcpUrl, { clientId, reconnectPeriod: 0 });
    const [a1, a2, bob] = await Promise.all([connect('alice.1'), connect('alice.2'), connect('bob.1')]);
    const closed = (c: MqttClient) => new Promise<void>((resolve) => (c.disconnected || !c.connected ? resolve() : c.once('close', () => resolve())));
    const iot = createIotDataClient({ region: 'us-east-1', iotDataEndpoint: broker.publishUrl });
    // 'alice.gone' is known to the tracking but no longer connected: DeleteConnection answers 404, which counts as gone.
    const revoker = new IotConnectionRevoker(iot, (userId) => (userId === 'alice' ? ['alice.1', 'alice.2', 'alice.gone'] : ['bob.1']));
    try {
      await revoker.disconnect(['alice'], new AbortController().signal);
      await Promise.all([closed(a1), closed(a2)]); // confirmed: the broker answered after closing them
      expect(bob.connected).toBe(true);
    } finally {
      iot.destroy();
      await Promise.all([a1, a2, bob].map((c) => c.endAsync(true)));
    }
  });
});
