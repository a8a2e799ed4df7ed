import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { PerUserLimiter } from './user-limits.js';

describe('PerUserLimiter', () => {
  it('lets a burst through, then the rate; another user is not affected', () => {
    let t = 0;
    const limiter = new PerUserLimiter({ ratePerSec: 2, burst: 3, maxConcurrent: 10, maxUsers: 10 }, () => t);
    const admit = (u: string) => {
      const a = limiter.admit(u);
      if (a.ok) a.release();
      return a.ok ? 'ok' : a.reason;
    };
    expect([admit('a'), admit('a'), admit('a'), admit('a')]).toEqual(['ok', 'ok', 'ok', 'rate']);
    expect(admit('b')).toBe('ok');
    t += 500;
    expect([admit('a'), admit('a')]).toEqual(['ok', 'rate']);
  });

  it('caps requests in flight per user and frees a slot on release', () => {
    const limiter = new PerUserLimiter({ ratePerSec: 1000, burst: 1000, maxConcurrent: 2, maxUsers: 10 }, () => 0);
    const first = limiter.admit('a');
    const second = limiter.admit('a');
    expect(limiter.admit('a')).toMatchObject({ ok: false, reason: 'concurrency' });
    expect(limiter.admit('b').ok).toBe(true);
    if (first.ok) {
      first.release();
      first.release(); // twice frees one slot only
    }
    expect(limiter.admit('a').ok).toBe(true);
    expect(limiter.admit('a')).toMatchObject({ ok: false, reason: 'concurrency' });
    expect(second.ok).toBe(true);
  });

  it('never admits more than burst + rate × elapsed time per user', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 300 })), { maxLength: 300 }), (requests) => {
        let t = 0;
        const limiter = new PerUserLimiter({ ratePerSec: 5, burst: 4, maxConcurrent: 100, maxUsers: 1000 }, () => t);
        const admitted = new Map<number, number>();
        for (const [user, dt] of requests) {
          t += dt;
          const a = limiter.admit(`u${user}`);
          if (!a.ok) continue;
          a.release();
          admitted.set(user, (admitted.get(user) ?? 0) + 1);
        }
        for (const n of admitted.values()) expect(n).toBeLessThanOrEqual(4 + (5 * t) / 1000);
      }),
    );
  });

  it('charges what an answer served: a user in debt is refused until it is paid back, and Retry-After says when', () => {
    let t = 0;
    const limiter = new PerUserLimiter({ ratePerSec: 1000, burst: 1000, maxConcurrent: 10, maxUsers: 10, served: { perSec: 100, burst: 500 } }, () => t);
    const first = limiter.admit('a');
    const second = limiter.admit('a'); // admitted before the first answer is charged
    if (!first.ok || !second.ok) throw new Error('both admitted');
    first.release(400);
    second.release(400); // 500 − 800: 300 in debt
    first.release(400); // a second release charges nothing
    const refused = limiter.admit('a');
    expect(refused).toEqual({ ok: false, reason: 'served', retryAfterMs: 3000 });
    expect(limiter.admit('b').ok).toBe(true);
    t += 2999;
    expect(limiter.admit('a')).toMatchObject({ ok: false, reason: 'served' });
    t += 1;
    expect(limiter.admit('a').ok).toBe(true);
  });

  const SERVED = { perSec: 50, burst: 200 };
  const MAX_PER_ANSWER = 100;
  /** Steps: a user's request admitted (and held), or the oldest held one answered with `served`, after `dt` ms. */
  const steps = fc.array(
    fc.record({ user: fc.integer({ min: 0, max: 3 }), dt: fc.integer({ min: 0, max: 200 }), answer: fc.boolean(), served: fc.integer({ min: 0, max: MAX_PER_ANSWER }) }),
    { maxLength: 400 },
  );
  type Step = { user: number; dt: number; answer: boolean; served: number };
  /** Runs the steps; per user, what its admissions said and what it was served. */
  function run(limiter: PerUserLimiter, clock: { t: number }, list: readonly Step[]) {
    const held = new Map<number, ((served: number) => void)[]>();
    const said = new Map<number, string[]>();
    const served = new Map<number, number>();
    for (const step of list) {
      clock.t += step.dt;
      const mine = held.get(step.user) ?? [];
      held.set(step.user, mine);
      if (step.answer && mine.length > 0) {
        mine.shift()!(step.served);
        served.set(step.user, (served.get(step.user) ?? 0) + step.served);
        continue;
      }
      const a = limiter.admit(`u${step.user}`);
      said.set(step.user, [...(said.get(step.user) ?? []), a.ok ? 'ok' : a.reason]);
      if (a.ok) mine.push((n) => a.release(n));
    }
    return { said, served };
  }

  it('over any request sequence, a user is served at most burst + rate × time + what its requests in flight may read', () => {
    fc.assert(
      fc.property(steps, (list) => {
        const clock = { t: 0 };
        const limits = { ratePerSec: 1000, burst: 1000, maxConcurrent: 3, maxUsers: 1000, served: SERVED };
        const { served } = run(new PerUserLimiter(limits, () => clock.t), clock, list);
        for (const n of served.values()) expect(n).toBeLessThanOrEqual(SERVED.burst + (SERVED.perSec * clock.t) / 1000 + limits.maxConcurrent * MAX_PER_ANSWER);
      }),
    );
  });

  it("over any request sequence, another user's admissions are what they would be alone", () => {
    fc.assert(
      fc.property(steps, (list) => {
        const limits = { ratePerSec: 5, burst: 4, maxConcurrent: 3, maxUsers: 1000, served: SERVED };
        const clock = { t: 0 };
        const together = run(new PerUserLimiter(limits, () => clock.t), clock, list).said.get(0) ?? [];
        // User 0 alone, at the same times (the others' steps become pauses).
        const alone = { t: 0 };
        const own = list.map((s) => (s.user === 0 ? s : { ...s, user: 9, answer: true }));
        const solo = run(new PerUserLimiter(limits, () => alone.t), alone, own).said.get(0) ?? [];
        expect(together).toEqual(solo);
      }),
    );
  });

  it('remembers a bounded number of idle users', () => {
    const limiter = new PerUserLimiter({ ratePerSec: 1, burst: 1, maxConcurrent: 1, maxUsers: 8 }, () => 0);
    for (let i = 0; i < 1000; i++) {
      const a = limiter.admit(`u${i}`);
      if (a.ok) a.release();
    }
    expect(limiter.trackedUsers).toBeLessThanOrEqual(8);
  });
});
