// The re-check schedule's bound and its cost, against random interleavings of connects,
// disconnects, failed checks and ticks at most TICK_MS apart: every connection is returned within
// one interval plus a tick of its connect and of its previous return, and not again within an
// interval minus a tick unless its check failed (so a node reads at most about connections /
// interval per second).
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { RecheckSchedule } from './recheck-schedule.js';

const TICK_MS = 1000;

type Op = { kind: 'add'; key: number } | { kind: 'delete'; key: number } | { kind: 'tick'; ms: number; fail: number[] };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('add' as const), key: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.nat(7) }) },
  // Ticks are late sometimes (a pass still reading skips one): at most TICK_MS apart is what the bound assumes.
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: TICK_MS }), fail: fc.array(fc.nat(7), { maxLength: 2 }) }) },
);

describe('RecheckSchedule', () => {
  it('returns each connection within an interval plus a tick of its connect and of its last check, and not again within an interval minus a tick unless its check failed', () => {
    fc.assert(
      fc.property(fc.integer({ min: TICK_MS, max: 20 * TICK_MS }), fc.array(op, { minLength: 30, maxLength: 100, size: 'max' }), fc.infiniteStream(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })), (intervalMs, ops, randoms) => {
        const schedule = new RecheckSchedule<number>(intervalMs, () => randoms.next().value);
        let now = 0;
        /** When each present key was added or last returned, and whether that return was a retry's. */
        const last = new Map<number, { at: number; checked: boolean; retried: boolean }>();
        for (const o of ops) {
          if (o.kind === 'add') {
            if (!last.has(o.key)) last.set(o.key, { at: now, checked: false, retried: false });
            schedule.add(o.key, now);
          } else if (o.kind === 'delete') {
            last.delete(o.key);
            schedule.delete(o.key);
          } else {
            now += o.ms;
            const due = new Set(schedule.due(now));
            for (const [key, l] of last) {
              // A failed check is made again at the next tick.
              if (l.retried) expect(due.has(key)).toBe(true);
              if (due.has(key)) {
                expect(now - l.at).toBeLessThan(intervalMs + TICK_MS);
                if (l.checked && !l.retried) expect(now - l.at).toBeGreaterThanOrEqual(intervalMs - TICK_MS);
                const failed = o.fail.includes(key);
                if (failed) schedule.retry(key, now);
                last.set(key, { at: now, checked: true, retried: failed });
              } else expect(now - l.at).toBeLessThan(intervalMs);
            }
            expect([...due].every((k) => last.has(k))).toBe(true);
          }
        }
        expect(schedule.size).toBe(last.size);
      }),
      { numRuns: 100 },
    );
  });

  it('spreads the first checks of connections that arrive together over the interval', () => {
    const schedule = new RecheckSchedule<number>(10_000, (() => {
      let i = 0;
      return () => (i++ % 10) / 10;
    })());
    for (let k = 0; k < 100; k += 1) schedule.add(k, 0);
    const perSecond: number[] = [];
    for (let t = 1000; t <= 10_000; t += 1000) perSecond.push(schedule.due(t - 1).length);
    expect(perSecond).toEqual([10, 10, 10, 10, 10, 10, 10, 10, 10, 10]);
  });

  it('refuses an interval that is not positive', () => {
    expect(() => new RecheckSchedule(0)).toThrow('positive');
  });
});
