// The read budget's pacing rule (pollDelay): a consumer never reads a shard faster than its
// share of Kinesis' 5 calls/s and 2 MB/s, and never waits longer than that share requires.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { type PaceInput, pollDelay } from './shard-reader.js';

const base: PaceInput = { lastCallAt: 1000, now: 1000, gotRecords: true, lastBytes: 0, idlePollMs: 200, minCallSpacingMs: 500, bytesPerSecond: 1024 * 1024 };

describe('poll pacing', () => {
  it('reads again after the call spacing when records keep coming', () => {
    expect(pollDelay({ ...base, now: 1050 })).toEqual({ waitMs: 450, budgetMs: 450 });
    expect(pollDelay({ ...base, now: 1600 })).toEqual({ waitMs: 0, budgetMs: 0 });
    expect(pollDelay({ ...base, now: 1010, minCallSpacingMs: 0 })).toEqual({ waitMs: 0, budgetMs: 0 });
  });

  it('after an empty read waits the idle interval; only the spacing beyond it counts as budget', () => {
    expect(pollDelay({ ...base, now: 1010, gotRecords: false, idlePollMs: 50, minCallSpacingMs: 5 })).toEqual({ waitMs: 40, budgetMs: 0 });
    expect(pollDelay({ ...base, now: 1010, gotRecords: false, idlePollMs: 200, minCallSpacingMs: 500 })).toEqual({ waitMs: 490, budgetMs: 300 });
  });

  it('a large read waits until its bytes fit the bytes budget', () => {
    // 2 MB at 1 MB/s: the next call 2 s after this one, as Kinesis would refuse it sooner.
    expect(pollDelay({ ...base, now: 1100, lastBytes: 2 * 1024 * 1024 })).toEqual({ waitMs: 1900, budgetMs: 1900 });
  });

  // A simulated reader: each call returns some bytes (or none), the processor takes some time,
  // then the reader waits what pollDelay says.
  const calls = fc.array(fc.record({ bytes: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 4 * 1024 * 1024 })), processingMs: fc.integer({ min: 0, max: 3000 }) }), { minLength: 1, maxLength: 60 });
  const budgets = fc.record({
    callsPerSecond: fc.double({ min: 0.05, max: 5, noNaN: true }),
    bytesPerSecond: fc.integer({ min: 10 * 1024, max: 2 * 1024 * 1024 }),
    idlePollMs: fc.integer({ min: 0, max: 2000 }),
  });

  function simulate(b: { callsPerSecond: number; bytesPerSecond: number; idlePollMs: number }, reads: { bytes: number; processingMs: number }[]) {
    const at: number[] = [];
    const budgetWaits: number[] = [];
    let now = 0;
    let last = Number.NEGATIVE_INFINITY;
    let lastBytes = 0;
    let gotRecords = true;
    for (const r of reads) {
      const { waitMs, budgetMs } = pollDelay({ lastCallAt: last, now, gotRecords, lastBytes, idlePollMs: b.idlePollMs, minCallSpacingMs: 1000 / b.callsPerSecond, bytesPerSecond: b.bytesPerSecond });
      budgetWaits.push(budgetMs);
      now += waitMs;
      at.push(now);
      last = now;
      lastBytes = r.bytes;
      gotRecords = r.bytes > 0;
      now += r.processingMs;
    }
    return { at, budgetWaits };
  }

  it('never exceeds the calls or bytes budget over any window, whatever the processing times', () => {
    fc.assert(
      fc.property(budgets, calls, (b, reads) => {
        const { at } = simulate(b, reads);
        const eps = 1e-6;
        for (let i = 0; i < at.length; i++) {
          for (let j = i + 1; j < at.length; j++) {
            const span = at[j]! - at[i]!;
            // Calls i..j-1 were made in [at[i], at[j]): no more than the call rate allows.
            expect(j - i).toBeLessThanOrEqual(Math.floor((span * b.callsPerSecond) / 1000 + eps) + (span === 0 ? 0 : 1));
            expect(span).toBeGreaterThanOrEqual(((j - i) * 1000) / b.callsPerSecond - eps);
            // Their bytes, read before call j, fit the bytes rate over the same span.
            const bytes = reads.slice(i, j).reduce((s, r) => s + r.bytes, 0);
            expect(bytes).toBeLessThanOrEqual((span * b.bytesPerSecond) / 1000 + eps * b.bytesPerSecond);
          }
        }
      }),
    );
  });

  it('never waits longer than the budget or the idle poll requires, and counts only the budget part', () => {
    fc.assert(
      fc.property(budgets, calls, (b, reads) => {
        const { at, budgetWaits } = simulate(b, reads);
        for (let i = 1; i < at.length; i++) {
          const prev = reads[i - 1]!;
          const required = Math.max(1000 / b.callsPerSecond, (prev.bytes * 1000) / b.bytesPerSecond, prev.bytes > 0 ? 0 : b.idlePollMs);
          const gap = at[i]! - at[i - 1]!;
          // Either exactly the required gap, or processing alone took longer (no wait at all).
          expect(Math.abs(gap - Math.max(required, prev.processingMs))).toBeLessThan(1e-6);
          expect(budgetWaits[i]!).toBeGreaterThanOrEqual(0);
          expect(budgetWaits[i]!).toBeLessThanOrEqual(Math.max(0, required - prev.processingMs) + 1e-6);
        }
      }),
    );
  });
});
