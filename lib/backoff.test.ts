import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { backoffDelay } from './backoff.js';

describe('full-jitter backoff', () => {
  it('stays within [0, min(max, base * 2^attempt)] and grows with the attempt', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 100_000 }), (attempt, r, baseMs, maxMs) => {
        const d = backoffDelay(attempt, r, { baseMs, maxMs });
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 52)));
        expect(backoffDelay(attempt + 1, r, { baseMs, maxMs })).toBeGreaterThanOrEqual(d);
      }),
    );
  });

  it('uses the whole range: random near 1 reaches the cap', () => {
    expect(backoffDelay(0, 0.999, { baseMs: 100, maxMs: 1000 })).toBe(99);
    expect(backoffDelay(3, 0.5, { baseMs: 100, maxMs: 1000 })).toBe(400);
    expect(backoffDelay(30, 0.999999, { baseMs: 100, maxMs: 1000 })).toBe(999);
    expect(backoffDelay(5, 0, { baseMs: 100, maxMs: 1000 })).toBe(0);
  });
});
