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

  it('remembers a bounded number of idle users', () => {
    const limiter = new PerUserLimiter({ ratePerSec: 1, burst: 1, maxConcurrent: 1, maxUsers: 8 }, () => 0);
    for (let i = 0; i < 1000; i++) {
      const a = limiter.admit(`u${i}`);
      if (a.ok) a.release();
    }
    expect(limiter.trackedUsers).toBeLessThanOrEqual(8);
  });
});
