import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { LiveSubscriptions, parseLifecycleMessage, type SubscriptionEvent } from './subscriptions.js';

const T1 = 'taskflow/v1/ws/w/projects/p1';
const T2 = 'taskflow/v1/ws/w/projects/p2';

describe('parseLifecycleMessage', () => {
  it('reads aedes $SYS events, ignoring refused subscriptions', () => {
    expect(parseLifecycleMessage('$SYS/b1/new/subscribes', Buffer.from(JSON.stringify({ clientId: 'c', subs: [{ topic: T1, qos: 1 }, { topic: T2, qos: 128 }] })))).toEqual({ kind: 'subscribed', clientId: 'c', filters: [T1] });
    expect(parseLifecycleMessage('$SYS/b1/new/unsubscribes', Buffer.from(JSON.stringify({ clientId: 'c', subs: [T1] })))).toEqual({ kind: 'unsubscribed', clientId: 'c', filters: [T1] });
    expect(parseLifecycleMessage('$SYS/b1/disconnect/clients', Buffer.from('c'))).toEqual({ kind: 'disconnected', clientId: 'c' });
    expect(parseLifecycleMessage('$SYS/b1/heartbeat', Buffer.from('x'))).toBeUndefined();
  });

  it('reads IoT Core lifecycle events', () => {
    expect(parseLifecycleMessage('$aws/events/subscriptions/subscribed/c', Buffer.from(JSON.stringify({ clientId: 'c', eventType: 'subscribed', topics: [T1] })))).toEqual({ kind: 'subscribed', clientId: 'c', filters: [T1] });
    expect(parseLifecycleMessage('$aws/events/presence/disconnected/c', Buffer.from(JSON.stringify({ clientId: 'c', eventType: 'disconnected' })))).toEqual({ kind: 'disconnected', clientId: 'c' });
    expect(parseLifecycleMessage('$aws/events/presence/disconnected/c', Buffer.from('{bad'))).toBeUndefined();
    expect(parseLifecycleMessage('$aws/events/presence/disconnected/c', Buffer.from(JSON.stringify({ clientId: 'c', eventType: 'disconnected', sessionIdentifier: 's1' })))).toEqual({ kind: 'disconnected', clientId: 'c', sessionId: 's1' });
  });
});

describe('LiveSubscriptions', () => {
  it('counts a topic live while any client holds a filter covering it', () => {
    const live = new LiveSubscriptions();
    live.apply({ kind: 'subscribed', clientId: 'a', filters: [T1] });
    live.apply({ kind: 'subscribed', clientId: 'b', filters: ['taskflow/v1/ws/w/projects/+'] });
    expect(live.hasSubscriber(T2)).toBe(true);
    live.apply({ kind: 'disconnected', clientId: 'b' });
    expect(live.hasSubscriber(T2)).toBe(false);
    expect(live.hasSubscriber(T1)).toBe(true);
    live.apply({ kind: 'unsubscribed', clientId: 'a', filters: [T1] });
    expect(live.hasSubscriber(T1)).toBe(false);
    expect(live.sessionCount).toBe(0);
  });

  it('keeps a reconnected session live when the old session disconnect arrives late', () => {
    const live = new LiveSubscriptions();
    live.apply({ kind: 'subscribed', clientId: 'c', sessionId: 's1', filters: [T1] });
    live.apply({ kind: 'subscribed', clientId: 'c', sessionId: 's2', filters: [T1] }); // same client id, new connection
    live.apply({ kind: 'disconnected', clientId: 'c', sessionId: 's1' }); // the old one's, late
    expect(live.hasSubscriber(T1)).toBe(true);
    live.apply({ kind: 'disconnected', clientId: 'c', sessionId: 's2' });
    expect(live.hasSubscriber(T1)).toBe(false);
    live.apply({ kind: 'subscribed', clientId: 'c', sessionId: 's2', filters: [T1] }); // late subscribe of an ended session
    expect(live.hasSubscriber(T1)).toBe(false);
  });

  it('for any order of lifecycle events of sessions that all end, nothing stays live; a session that never ends stays live', () => {
    // Each session: subscribe then disconnect, as IoT Core emits them but delivered in any order.
    const sessions = ['s1', 's2', 's3'];
    const events: SubscriptionEvent[] = sessions.flatMap((s) => [
      { kind: 'subscribed' as const, clientId: 'c', sessionId: s, filters: [T1] },
      { kind: 'disconnected' as const, clientId: 'c', sessionId: s },
    ]);
    fc.assert(
      fc.property(fc.shuffledSubarray(events, { minLength: events.length }), fc.boolean(), (order, keepLast) => {
        const live = new LiveSubscriptions();
        const delivered = keepLast ? order.filter((e) => !(e.kind === 'disconnected' && e.sessionId === 's3')) : order;
        for (const e of delivered) live.apply(e);
        expect(live.hasSubscriber(T1)).toBe(keepLast);
      }),
    );
  });

  it("agrees with a model (set of (client, filter)) for any event sequence, also on each user's connections", () => {
    const CLIENTS = ['u1.a', 'u1.b', 'u2.a'];
    const event = fc.oneof(
      fc.record({ kind: fc.constant('subscribed' as const), clientId: fc.constantFrom(...CLIENTS), filters: fc.subarray([T1, T2]) }),
      fc.record({ kind: fc.constant('unsubscribed' as const), clientId: fc.constantFrom(...CLIENTS), filters: fc.subarray([T1, T2]) }),
      fc.record({ kind: fc.constant('disconnected' as const), clientId: fc.constantFrom(...CLIENTS) }),
    );
    fc.assert(
      fc.property(fc.array(event, { maxLength: 30 }), (events: SubscriptionEvent[]) => {
        const live = new LiveSubscriptions();
        const model = new Set<string>();
        for (const e of events) {
          live.apply(e);
          if (e.kind === 'disconnected') for (const k of [...model]) if (k.startsWith(`${e.clientId}|`)) model.delete(k);
          if (e.kind === 'subscribed') for (const f of e.filters) model.add(`${e.clientId}|${f}`);
          if (e.kind === 'unsubscribed') for (const f of e.filters) model.delete(`${e.clientId}|${f}`);
          for (const t of [T1, T2]) expect(live.hasSubscriber(t)).toBe([...model].some((k) => k.endsWith(`|${t}`)));
          for (const u of ['u1', 'u2']) {
            const expected = [...new Set([...model].map((k) => k.split('|')[0]!).filter((c) => c.startsWith(`${u}.`)))].sort();
            expect(live.connectionsOf(u).sort()).toEqual(expected);
          }
        }
      }),
    );
  });
});
