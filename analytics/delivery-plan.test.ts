import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { afterRound, type CallOutcome, planCalls, PUT_RECORD_BATCH_LIMITS, THROTTLED } from './delivery-plan.js';

const KIB = 1024;

describe('planCalls', () => {
  it('splits at 500 records and at 4 MiB, and refuses a record above 1,000 KiB', () => {
    expect(planCalls(Array(1001).fill(10))).toEqual([
      [0, 500],
      [500, 1000],
      [1000, 1001],
    ]);
    expect(planCalls(Array(5).fill(1000 * KIB))).toEqual([
      [0, 4],
      [4, 5],
    ]);
    expect(planCalls([])).toEqual([]);
    expect(() => planCalls([1000 * KIB + 1])).toThrow(RangeError);
  });

  it('for any sizes, covers every record once in order with calls within every limit, each as full as the next record allows', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: 1, max: 2 * KIB }), fc.integer({ min: 1, max: 1000 * KIB })), { maxLength: 1200 }), (sizes) => {
        const calls = planCalls(sizes);
        let next = 0;
        for (const [start, end] of calls) {
          expect(start).toBe(next);
          expect(end).toBeGreaterThan(start);
          const bytes = sizes.slice(start, end).reduce((a, b) => a + b, 0);
          expect(end - start).toBeLessThanOrEqual(PUT_RECORD_BATCH_LIMITS.recordsPerCall);
          expect(bytes).toBeLessThanOrEqual(PUT_RECORD_BATCH_LIMITS.bytesPerCall);
          // Greedy: the next record would not have fitted.
          if (end < sizes.length) expect(end - start === PUT_RECORD_BATCH_LIMITS.recordsPerCall || bytes + sizes[end]! > PUT_RECORD_BATCH_LIMITS.bytesPerCall).toBe(true);
          next = end;
        }
        expect(next).toBe(sizes.length);
      }),
    );
  });
});

describe('afterRound', () => {
  it('keeps only the failed records, in order, and notices throttling', () => {
    const calls: Array<[number, number]> = [
      [0, 3],
      [3, 5],
    ];
    const outcomes: CallOutcome[] = [
      { kind: 'answered', errors: [undefined, 'InternalFailure', undefined] },
      { kind: 'answered', errors: [THROTTLED, undefined] },
    ];
    expect(afterRound(['a', 'b', 'c', 'd', 'e'], calls, outcomes)).toEqual({ retry: ['b', 'd'], throttled: true, refused: [] });
    expect(afterRound(['a', 'b', 'c', 'd', 'e'], calls, [{ kind: 'answered', errors: [undefined, 'InternalFailure', undefined] }])).toEqual({ retry: ['b', 'd', 'e'], throttled: false, refused: [] });
    expect(afterRound(['a', 'b', 'c', 'd', 'e'], calls, [{ kind: 'throttled' }])).toEqual({ retry: ['a', 'b', 'c', 'd', 'e'], throttled: true, refused: [] });
  });

  it('for any failures and throttles over rounds, every record is accepted exactly once and retries keep their order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 300 * KIB }), { minLength: 1, maxLength: 800 }),
        fc.infiniteStream(fc.oneof(fc.constant<string | undefined>(undefined), fc.constant<string | undefined>(undefined), fc.constantFrom(THROTTLED, 'InternalFailure'))),
        fc.infiniteStream(fc.boolean()),
        (sizes, errorStream, throttleStream) => {
          const errors = errorStream[Symbol.iterator]();
          const throttles = throttleStream[Symbol.iterator]();
          const records = sizes.map((size, id) => ({ id, size }));
          const accepted: number[] = [];
          let pending = records;
          for (let round = 0; pending.length > 0; round++) {
            // Firehose eventually lets everything through: from round 20 on, nothing fails.
            const calm = round >= 20;
            const calls = planCalls(pending.map((r) => r.size));
            const outcomes: CallOutcome[] = [];
            for (const [start, end] of calls) {
              if (!calm && throttles.next().value) {
                outcomes.push({ kind: 'throttled' });
                break;
              }
              const errs = pending.slice(start, end).map(() => (calm ? undefined : errors.next().value));
              errs.forEach((e, i) => e === undefined && accepted.push(pending[start + i]!.id));
              outcomes.push({ kind: 'answered', errors: errs });
            }
            const { retry } = afterRound(pending, calls, outcomes);
            // Order among retried records is their original order.
            expect(retry.map((r) => r.id)).toEqual([...retry.map((r) => r.id)].sort((a, b) => a - b));
            pending = retry;
          }
          expect([...accepted].sort((a, b) => a - b)).toEqual(records.map((r) => r.id));
        },
      ),
      { numRuns: 50 },
    );
  });
});
