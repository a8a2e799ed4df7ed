// GET /subscriptions against a model: whatever sequence of connects, subscribes (granted or
// refused), unsubscribes, disconnects and takeovers (a second connection under a live client id)
// real MQTT clients perform, the broker's answer settles to the model's live sessions — one per
// client id, the granted filters only, and a session id of its own for each new connection.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import mqtt, { type MqttClient } from 'mqtt';
import type { Broker, SessionView } from '../../infra/local/broker.js';
import { startTestBroker } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

const CLIENT_IDS = ['a', 'b', 'c'];
const FILTERS = ['t/1', 't/+', 'forbidden/x'];

type Step = { op: 'connect'; clientId: string } | { op: 'disconnect'; clientId: string } | { op: 'subscribe'; clientId: string; filter: string } | { op: 'unsubscribe'; clientId: string; filter: string };

let broker: Broker;
beforeAll(async () => {
  // Refuses every filter under forbidden/ (SUBACK 0x80), as broker-auth refuses a non-member's.
  broker = await startTestBroker({ authorizeSubscribe: (_client, sub, done) => done(null, sub.topic.startsWith('forbidden/') ? null : sub) });
});
afterAll(() => broker?.stop());

const listed = async (): Promise<SessionView[]> => ((await (await fetch(`${broker.publishUrl}/subscriptions`)).json()) as { sessions: SessionView[] }).sessions;
const normalized = (sessions: { clientId: string; filters: string[] }[]) => sessions.map((s) => ({ clientId: s.clientId, filters: [...s.filters].sort() })).sort((x, y) => x.clientId.localeCompare(y.clientId));

const clientId = fc.constantFrom(...CLIENT_IDS);
const filter = fc.constantFrom(...FILTERS);
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ op: fc.constant('connect' as const), clientId }),
  fc.record({ op: fc.constant('disconnect' as const), clientId }),
  fc.record({ op: fc.constant('subscribe' as const), clientId, filter }),
  fc.record({ op: fc.constant('unsubscribe' as const), clientId, filter }),
);

describe('GET /subscriptions', () => {
  it('equals the model after any sequence of subscribe, unsubscribe, disconnect and takeover', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), async (steps) => {
        const live = new Map<string, { client: MqttClient; filters: Set<string> }>();
        const all: MqttClient[] = [];
        const seenSessions = new Set<string>();
        try {
          for (const s of steps) {
            const current = live.get(s.clientId);
            if (s.op === 'connect') {
              // A takeover when the id is live: the broker closes the old connection.
              const client = await mqtt.connectAsync(broker.tcpUrl, { clientId: s.clientId, reconnectPeriod: 0 });
              client.on('error', () => undefined);
              all.push(client);
              live.set(s.clientId, { client, filters: new Set() });
            } else if (!current) {
              continue;
            } else if (s.op === 'disconnect') {
              await current.client.endAsync();
              live.delete(s.clientId);
            } else if (s.op === 'subscribe') {
              const granted = await current.client.subscribeAsync(s.filter).then(() => true, () => false);
              expect(granted).toBe(!s.filter.startsWith('forbidden/'));
              if (granted) current.filters.add(s.filter);
            } else {
              await current.client.unsubscribeAsync(s.filter);
              current.filters.delete(s.filter);
            }
            let got: SessionView[] = [];
            const model = normalized([...live].map(([clientId, { filters }]) => ({ clientId, filters: [...filters] })));
            // A disconnect or a takeover reaches the broker shortly after the client's side returns.
            const sessions = await waitFor(async () => {
              got = await listed();
              return JSON.stringify(normalized(got)) === JSON.stringify(model) && got;
            }, () => `sessions ${JSON.stringify(model)} after ${JSON.stringify(s)}, got ${JSON.stringify(got)}`, 5000, 10);
            for (const v of sessions) {
              // A session id names one connection: a takeover's successor gets a new one.
              if (s.op === 'connect' && v.clientId === s.clientId) {
                expect(seenSessions.has(v.sessionId)).toBe(false);
                seenSessions.add(v.sessionId);
              }
            }
          }
        } finally {
          await Promise.all(all.map((c) => c.endAsync(true).catch(() => undefined)));
          await waitFor(async () => (await listed()).length === 0, 'no session left', 5000, 10);
        }
      }),
      { numRuns: 25 },
    );
  });
});
