import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { fullJitterDelay } from './backoff.js';
import { connectionTransition, initialConnectionState, type ConnectionEvent, type ConnectionState } from './connection-machine.js';

const backoff = { baseMs: 100, maxMs: 5000 };

function run(events: ConnectionEvent[], state: ConnectionState = initialConnectionState) {
  const effects = [];
  for (const e of events) {
    const t = connectionTransition(state, e, backoff);
    state = t.state;
    effects.push(...t.effects);
  }
  return { state, effects };
}

describe('full-jitter backoff', () => {
  it('stays within [0, min(max, base * 2^attempt))', () => {
    fc.assert(
      fc.property(fc.nat(100), fc.double({ min: 0, max: 1, noNaN: true }), (attempt, random) => {
        const delay = fullJitterDelay(attempt, random, backoff);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThan(Math.min(backoff.maxMs, backoff.baseMs * 2 ** attempt));
      }),
    );
  });
});

describe('connection machine', () => {
  it('opens at once, backs off after losses, and resets the backoff on success', () => {
    let { state, effects } = run([{ type: 'start', now: 0 }]);
    expect(effects[0]).toEqual({ type: 'open', attempt: 1, refreshToken: false });
    ({ state } = run([{ type: 'lost', attempt: 1, reason: 'network', now: 10, random: 0.99 }], state));
    expect(state.retryAt).toBe(10 + 99);
    ({ state, effects } = run([{ type: 'tick', now: 50 }], state));
    expect(effects).toEqual([]);
    ({ state, effects } = run([{ type: 'tick', now: 109 }], state));
    expect(effects[0]).toEqual({ type: 'open', attempt: 2, refreshToken: false });
    ({ state } = run([{ type: 'lost', attempt: 2, reason: 'network', now: 200, random: 0.99 }], state));
    expect(state.retryAt).toBe(200 + 198); // second failure: ceiling doubled
    ({ state } = run([{ type: 'tick', now: 400 }, { type: 'opened', attempt: 3, now: 410 }], state));
    expect(state.phase).toBe('connected');
    ({ state } = run([{ type: 'lost', attempt: 3, reason: 'network', now: 86_400_000, random: 0.99 }], state));
    expect(state.retryAt).toBe(86_400_000 + 99); // a 24 h close reconnects within one base period
  });

  it('keeps backing off when the broker accepts and drops the connection at once', () => {
    let { state } = run([{ type: 'start', now: 0 }]);
    const delays: number[] = [];
    let now = 0;
    for (let i = 0; i < 5; i += 1) {
      ({ state } = run([{ type: 'opened', attempt: state.attempt, now }], state));
      now += 50;
      ({ state } = run([{ type: 'lost', attempt: state.attempt, reason: 'network', now, random: 0.99 }], state));
      delays.push(state.retryAt! - now);
      now = state.retryAt!;
      ({ state } = run([{ type: 'tick', now }], state));
    }
    expect(delays).toEqual([99, 198, 396, 792, 1584]);
  });

  it('refreshes the token after the broker rejects it, and ignores stale attempts', () => {
    let { state, effects } = run([
      { type: 'start', now: 0 },
      { type: 'lost', attempt: 1, reason: 'auth', now: 1, random: 0 },
      { type: 'tick', now: 1 },
    ]);
    expect(effects).toContainEqual({ type: 'open', attempt: 2, refreshToken: true });
    ({ state, effects } = run([{ type: 'lost', attempt: 1, reason: 'network', now: 2, random: 0 }], state));
    expect(effects).toEqual([]);
    expect(state.phase).toBe('connecting');
  });

  it('skips the backoff when the network comes back, and stays stopped', () => {
    let { state, effects } = run([
      { type: 'start', now: 0 },
      { type: 'lost', attempt: 1, reason: 'network', now: 1, random: 0.9 },
      { type: 'online', now: 2 },
    ]);
    expect(effects).toContainEqual({ type: 'open', attempt: 2, refreshToken: false });
    ({ state, effects } = run([{ type: 'stop' }, { type: 'online', now: 3 }, { type: 'tick', now: 1e9 }], state));
    expect(effects).toEqual([{ type: 'close' }, { type: 'phase', phase: 'stopped' }]);
    expect(state.phase).toBe('stopped');
  });

  it('never has two attempts open and always comes back after any schedule of losses', () => {
    const eventArb = fc.oneof(
      fc.record({ type: fc.constant('opened' as const) }),
      fc.record({ type: fc.constant('lost' as const), reason: fc.constantFrom('auth' as const, 'network' as const), random: fc.double({ min: 0, max: 1, noNaN: true }) }),
      fc.record({ type: fc.constant('tick' as const), dt: fc.nat(10_000) }),
      fc.record({ type: fc.constant('online' as const) }),
    );
    fc.assert(
      fc.property(fc.array(eventArb, { maxLength: 60 }), (events) => {
        let state = connectionTransition(initialConnectionState, { type: 'start', now: 0 }, backoff).state;
        let now = 0;
        for (const e of events) {
          if (e.type === 'tick') now += e.dt;
          const event: ConnectionEvent =
            e.type === 'tick' || e.type === 'online' ? { type: e.type, now } : e.type === 'opened' ? { type: 'opened', attempt: state.attempt, now } : { type: 'lost', attempt: state.attempt, reason: e.reason, random: e.random, now };
          const t = connectionTransition(state, event, backoff);
          const opens = t.effects.filter((x) => x.type === 'open');
          expect(opens.length).toBeLessThanOrEqual(1);
          if (opens.length === 1) expect(state.phase).toBe('waiting');
          state = t.state;
          if (state.phase === 'waiting') expect(state.retryAt! - now).toBeLessThanOrEqual(backoff.maxMs);
        }
        // liveness: from any state, time alone leads to a new attempt
        if (state.phase === 'waiting') state = connectionTransition(state, { type: 'tick', now: now + backoff.maxMs }, backoff).state;
        expect(['connecting', 'connected']).toContain(state.phase);
      }),
    );
  });
});
