// The local broker's IoT Core-style lifecycle events, read the way the router reads them. When a
// client reconnects under the same client id, the old connection's disconnect may reach the
// router after the new connection subscribed (IoT Core does not order these events; aedes can
// report a taken-over connection late). Keyed by client id, that late disconnect silenced a live
// subscriber; keyed by session, it removes only the old connection's subscriptions.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import mqtt, { type MqttClient } from 'mqtt';
import type { Broker } from '../../infra/local/broker.js';
import { LIFECYCLE_FILTERS, LiveSubscriptions, parseLifecycleMessage, type SubscriptionEvent } from '../../lib/subscriptions.js';
import { waitFor } from '../support/wait.js';
import { startTestBroker } from '../support/stack.js';

const TOPIC = 'taskflow/v1/ws/w/projects/p';

let broker: Broker;
let watcher: MqttClient;
const events: SubscriptionEvent[] = [];

beforeAll(async () => {
  broker = await startTestBroker();
  watcher = await mqtt.connectAsync(broker.tcpUrl, { clientId: 'lifecycle-watcher', reconnectPeriod: 0 });
  watcher.on('message', (topic, payload) => {
    const e = parseLifecycleMessage(topic, payload);
    if (e && e.clientId === 'browser') events.push(e);
  });
  await watcher.subscribeAsync([...LIFECYCLE_FILTERS.iot], { qos: 0 });
});

afterAll(async () => {
  await watcher?.endAsync(true);
  await broker?.stop();
});

describe('local broker lifecycle events', () => {
  it('name each connection of a reused client id as its own session, so a late disconnect of the old one leaves the new one live', async () => {
    const first = await mqtt.connectAsync(broker.tcpUrl, { clientId: 'browser', reconnectPeriod: 0 });
    await first.subscribeAsync(TOPIC, { qos: 1 });
    first.on('error', () => {}); // taken over below
    const second = await mqtt.connectAsync(broker.tcpUrl, { clientId: 'browser', reconnectPeriod: 0 });
    await second.subscribeAsync(TOPIC, { qos: 1 });
    const count = (kind: SubscriptionEvent['kind']) => events.filter((e) => e.kind === kind).length;
    await waitFor(() => count('subscribed') === 2 && count('disconnected') === 1, () => `two subscribes and a disconnect, got ${JSON.stringify(events)}`, 5000);

    const subscribes = events.filter((e) => e.kind === 'subscribed');
    const disconnects = events.filter((e) => e.kind === 'disconnected');
    expect(events).toHaveLength(3); // nothing else, e.g. no unsubscribe for the taken-over connection
    const [old, current] = subscribes.map((e) => e.sessionId);
    expect(old).toBeDefined();
    expect(current).toBeDefined();
    expect(current).not.toBe(old);
    expect(disconnects[0]!.sessionId).toBe(old);

    // Whatever order the router hears these real events in (each session's subscribe before its
    // own disconnect), the second connection stays live; keyed by client id it would not.
    fc.assert(
      fc.property(fc.shuffledSubarray(events, { minLength: events.length, maxLength: events.length }), (order) => {
        fc.pre(order.indexOf(disconnects[0]!) > order.indexOf(subscribes[0]!));
        const live = new LiveSubscriptions();
        for (const e of order) live.apply(e);
        expect(live.hasSubscriber(TOPIC)).toBe(true);
        const byClientId = new LiveSubscriptions();
        for (const { sessionId: _ignored, ...e } of order) byClientId.apply(e);
        return byClientId.hasSubscriber(TOPIC) === (order.at(-1)?.kind !== 'disconnected');
      }),
    );

    await second.endAsync();
    await waitFor(() => count('disconnected') === 2, () => 'the second disconnect', 5000);
    const live = new LiveSubscriptions();
    for (const e of events) live.apply(e);
    expect(live.hasSubscriber(TOPIC)).toBe(false);
  });
});
