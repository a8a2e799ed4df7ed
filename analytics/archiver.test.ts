import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { limitViolation } from '../infra/local/firehose/delivery.js';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { deliverAll } from './archiver.js';
import type { CallOutcome } from './delivery-plan.js';
import type { DeliveryStreamPort } from './firehose.js';
import { noopArchiverMetrics } from './metrics.js';
import { packRecord } from './record-packing.js';

/** `n` bytes that compress little (hex of a hash chain), deterministic for `seed`. */
function hexBytes(seed: number, n: number): string {
  let out = '';
  for (let h = String(seed); out.length < n; ) out += h = createHash('sha256').update(h).digest('hex');
  return out.slice(0, n);
}

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
  it('halves a refused call or record until it fits, hands back only the lines refused alone, and loses or doubles nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 3000 }), fc.boolean()), { minLength: 1, maxLength: 120 }),
        fc.record({ recordsPerCall: fc.integer({ min: 1, max: 40 }), bytesPerCall: fc.integer({ min: 2000, max: 20_000 }), bytesPerRecord: fc.integer({ min: 500, max: 2000 }) }),
        fc.infiniteStream(fc.boolean()),
        async (sizes, limits, throttleStream) => {
          // Throttles stop after 200 calls: Firehose lets everything through eventually.
          const stream = throttleStream[Symbol.iterator]();
          let calls = 0;
          const throttles = { next: () => ({ done: false, value: ++calls < 200 && stream.next().value === true }) } as Iterator<boolean>;
          const { port, accepted } = strictFirehose(limits, throttles);
          // Lines that compress well and lines that hardly do.
          const lines = sizes.map(([n, dense], i) => Buffer.from(`${i}:${dense ? hexBytes(i, n) : 'a'.repeat(n)}\n`));
          const counted = { records: 0, bytes: 0 };
          const metrics = { ...noopArchiverMetrics, accepted: (n: number, b: number) => ((counted.records += n), (counted.bytes += b)) };
          const refused = await deliverAll(port, lines, { backoff: { baseMs: 0, maxMs: 0 }, metrics });
          // The metrics count what Firehose accepted (what it bills).
          expect(counted).toEqual({ records: accepted.length, bytes: accepted.reduce((n, r) => n + r.length, 0) });
          // Refused: exactly the lines whose own record (their gzip) is beyond the stricter limits.
          const tooLarge = lines.filter((l) => packRecord([l]).data.length > Math.min(limits.bytesPerRecord, limits.bytesPerCall));
          expect(refused.map((r) => r.line).sort(Buffer.compare)).toEqual(tooLarge.sort(Buffer.compare));
          for (const r of refused) expect(r.message).toMatch(/^(ValidationException|InvalidArgumentException): /);
          const archived = accepted.flatMap((r) => gunzipSync(r).toString().split('\n').slice(0, -1).map((l) => Buffer.from(`${l}\n`)));
          expect([...archived, ...refused.map((r) => r.line)].sort(Buffer.compare)).toEqual([...lines].sort(Buffer.compare));
        },
      ),
      { numRuns: 60 },
    );
  });
});
