// The notifications feed under any schedule of live messages (lost, duplicated, redelivered
// late), disconnects, reconnects and inbox answers (fresh or taken before live messages that are
// held meanwhile, or failing): every notification of the inbox is delivered exactly once, in id
// order, and the unread count ends equal to the inbox's.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { type FeedEffect, type FeedState, feedTransition, initialFeed, type Notification } from './notification-feed.js';

const BACKOFF = { baseMs: 10, maxMs: 100 };
const id = (n: number) => `${n.toString(16).toUpperCase().padStart(16, '0')}-00000000`;
const note = (n: number): Notification => ({ id: id(n), userId: 'u', kind: 'assigned', workspaceId: 'w', projectId: 'p', taskId: `t${n}`, time: new Date(n * 1000).toISOString() });

type Action =
  | { a: 'produce'; live: 'sent' | 'lost' | 'twice' }
  | { a: 'redeliver'; back: number }
  | { a: 'disconnect' }
  | { a: 'subscribed' }
  | { a: 'answer'; stale: boolean }
  | { a: 'fail' };

const action: fc.Arbitrary<Action> = fc.oneof(
  { arbitrary: fc.record({ a: fc.constant('produce' as const), live: fc.constantFrom('sent' as const, 'lost' as const, 'twice' as const) }), weight: 5 },
  fc.record({ a: fc.constant('redeliver' as const), back: fc.nat(20) }),
  fc.record({ a: fc.constant('disconnect' as const) }),
  fc.record({ a: fc.constant('subscribed' as const) }),
  { arbitrary: fc.record({ a: fc.constant('answer' as const), stale: fc.boolean() }), weight: 2 },
  fc.record({ a: fc.constant('fail' as const) }),
);

describe('notification feed', () => {
  it('delivers every notification of the inbox once, in order, whatever was lost, doubled or raced', () => {
    fc.assert(
      fc.property(fc.array(action, { maxLength: 80 }), fc.nat(3), (actions, initiallyKnown) => {
        const inbox: Notification[] = [];
        for (let i = 1; i <= initiallyKnown; i++) inbox.push(note(i));
        // The application already has the first ones: it subscribes after the last of them.
        let state: FeedState = initialFeed(initiallyKnown > 0 ? id(initiallyKnown) : undefined);
        const delivered: string[] = [];
        let unread: number | undefined;
        let pending: { requestId: number; after: string | undefined; snapshot: Notification[] } | undefined;
        let clock = 0;
        const apply = (event: Parameters<typeof feedTransition>[1]) => {
          const out = feedTransition(state, event, BACKOFF);
          state = out.state;
          for (const e of out.effects as FeedEffect[]) {
            if (e.type === 'deliver') delivered.push(...e.notifications.map((n) => n.id));
            if (e.type === 'unread') unread = e.unread;
            if (e.type === 'sync') pending = { requestId: e.requestId, after: e.after, snapshot: [...inbox] };
          }
        };
        const answer = (stale: boolean) => {
          if (!pending) return;
          const source = stale ? pending.snapshot : inbox;
          const after = pending.after;
          const page = after === undefined ? source : source.filter((n) => n.id > after);
          apply({ type: 'syncOk', requestId: pending.requestId, notifications: [...page].reverse(), unread: source.length });
          pending = undefined;
        };
        for (const act of actions) {
          clock += 5;
          switch (act.a) {
            case 'produce': {
              const n = note(inbox.length + 1);
              inbox.push(n);
              if (act.live !== 'lost') apply({ type: 'live', notification: n });
              if (act.live === 'twice') apply({ type: 'live', notification: n });
              break;
            }
            case 'redeliver': {
              const old = inbox[inbox.length - 1 - act.back];
              if (old) apply({ type: 'live', notification: old });
              break;
            }
            case 'disconnect':
              apply({ type: 'disconnected' });
              pending = undefined;
              break;
            case 'subscribed':
              apply({ type: 'subscribed', now: clock });
              break;
            case 'answer':
              answer(act.stale);
              break;
            case 'fail':
              if (pending) apply({ type: 'syncFailed', requestId: pending.requestId, now: clock, random: 0.5 });
              pending = undefined;
              if (state.retryAt !== undefined) apply({ type: 'tick', now: state.retryAt });
              break;
          }
        }
        // Finally the connection settles: subscribed, and the inbox answers.
        apply({ type: 'disconnected' });
        apply({ type: 'subscribed', now: clock });
        answer(false);

        const expected = inbox.slice(initiallyKnown).map((n) => n.id);
        expect(delivered).toEqual(expected);
        expect(unread).toBe(inbox.length);
        expect(state.phase).toBe('live');
      }),
      { numRuns: 300 },
    );
  });

  it('ignores an answer to a request that a disconnect made stale', () => {
    let { state } = feedTransition(initialFeed(), { type: 'subscribed', now: 0 }, BACKOFF);
    const stale = state.requestId;
    state = feedTransition(state, { type: 'disconnected' }, BACKOFF).state;
    const out = feedTransition(state, { type: 'syncOk', requestId: stale, notifications: [note(1)], unread: 1 }, BACKOFF);
    expect(out.effects).toEqual([]);
    expect(out.state.phase).toBe('waiting');
  });
});
