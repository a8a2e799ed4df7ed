import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { limitViolation } from '../infra/local/firehose/delivery.js';
import { deliverAll } from './archiver.js';
import type { CallOutcome } from './delivery-plan.js';
import type { DeliveryStreamPort } from './firehose.js';

/** A Firehose whose limits are stricter than the archiver plans with (the stand-in's own check), which also throttles now and then. */
function strictFirehose(limits: { recordsPerCall: number; bytesPerCall: number; bytesPerRecord: number }, throttles: Iterator<boolean>) {
  const accepted: Uint8Array[] = [];
  const port: DeliveryStreamPort = {
    putRecordBatch(records): Promise<CallOutcome> {
      const refusal = limitViolation(records.map((r) => r.length), 'records', limits);
      if (refusal) return Promise.resolve({ kind: 'refused', message: `${refusal.type}: ${refusal.message}` });
      if (throttles.next().value) return Promise.resolve({ kind: 'throttled' });
      accepted.push(...records);
      return Promise.resolve({ kind: 'answered', errors: records.map(() => undefined) });
    },
  };
  return { port, accepted };
}

describe('deliverAll against a Firehose that refuses calls', () => {
  it('halves a refused call until it fits, hands back only the records refused alone, and loses or doubles nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 120 }),
        fc.record({ recordsPerCall: fc.integer({ min: 1, max: 40 }), bytesPerCall: fc.integer({ min: 2000, max: 20_000 }), bytesPerRecord: fc.integer({ min: 500, max: 2000 }) }),
        fc.infiniteStream(fc.boolean()),
        async (sizes, limits, throttleStream) => {
          // Throttles stop after 200 calls: Firehose lets everything through eventually.
          const stream = throttleStream[Symbol.iterator]();
          let calls = 0;
          const throttles = { next: () => ({ done: false, value: ++calls < 200 && stream.next().value === true }) } as Iterator<boolean>;
          const { port, accepted } = strictFirehose(limits, throttles);
          const lines = sizes.map((n, i) => Buffer.concat([Buffer.from(`${i}:`), Buffer.alloc(n, 0x61)]));
          const refused = await deliverAll(port, lines, { backoff: { baseMs: 0, maxMs: 0 } });
          const tooLarge = lines.filter((l) => l.length > limits.bytesPerRecord || l.length > limits.bytesPerCall);
          expect(refused.map((r) => r.line).sort(Buffer.compare)).toEqual(tooLarge.sort(Buffer.compare));
          for (const r of refused) expect(r.message).toMatch(/^(ValidationException|InvalidArgumentException): /);
          expect([...accepted, ...refused.map((r) => r.line)].sort(Buffer.compare)).toEqual([...lines].sort(Buffer.compare));
        },
      ),
      { numRuns: 60 },
    );
  });
});
