import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { createGunzip, gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { PUT_RECORD_BATCH_LIMITS } from './delivery-plan.js';
import { gzipBound, packBudget, packLines } from './record-packing.js';

const NEWLINE = 0x0a;
/** A line of `body` bytes with newlines taken out, newline-terminated. */
const line = (body: Uint8Array) => Buffer.concat([Buffer.from(body.map((b) => (b === NEWLINE ? 0x20 : b))), Buffer.of(NEWLINE)]);
const linesOf = (text: Buffer): Buffer[] => text.toString('latin1').split('\n').slice(0, -1).map((l) => Buffer.from(`${l}\n`, 'latin1'));

describe('packLines', () => {
  it('packs every line once, in order, into gzip members of whole lines within the record limit (property)', () => {
    // Incompressible bytes and repetitive JSON-like text, against small limits so records fill up.
    const body = fc.oneof(fc.uint8Array({ maxLength: 3000 }), fc.string({ unit: fc.constantFrom('{"a":1,', '"id":"x-', '7', '}', ' '), maxLength: 400 }).map((s) => Buffer.from(s)));
    fc.assert(
      fc.property(fc.array(body, { maxLength: 60 }), fc.integer({ min: 64, max: 8000 }), (bodies, limit) => {
        const lines = bodies.map(line);
        const records = packLines(lines, limit);
        expect(records.flatMap((r) => r.lines)).toEqual(lines); // each line exactly once, in order
        const budget = packBudget(limit);
        for (const [i, r] of records.entries()) {
          expect(r.lines.length).toBeGreaterThan(0);
          const text = gunzipSync(r.data);
          expect(text.equals(Buffer.concat(r.lines))).toBe(true);
          expect(linesOf(text)).toEqual(r.lines.map((l) => Buffer.from(l))); // whole lines, none cut
          // Within the limit, unless it is one line larger than any record may pack.
          if (r.lines.length > 1 || r.lines[0]!.length <= budget) expect(r.data.length).toBeLessThanOrEqual(limit);
          // Greedy: the next record's first line did not fit in this one.
          const next = records[i + 1];
          if (next) expect(Buffer.concat(r.lines).length + next.lines[0]!.length).toBeGreaterThan(budget);
        }
        // Firehose's object: the records concatenated, one multi-member gzip file (never empty).
        if (records.length > 0) expect(gunzipSync(Buffer.concat(records.map((r) => r.data))).equals(Buffer.concat(lines))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('keeps a full record of incompressible bytes within 1,000 KiB', () => {
    const limit = PUT_RECORD_BATCH_LIMITS.bytesPerRecord;
    const budget = packBudget(limit);
    expect(gzipBound(budget)).toBeLessThanOrEqual(limit);
    expect(gzipBound(budget + 1)).toBeGreaterThan(limit);
    const lines = Array.from({ length: 10 }, () => line(randomBytes(Math.floor(budget / 10) - 1)));
    const [record, ...rest] = packLines(lines, limit);
    expect(rest).toHaveLength(0);
    expect(record!.data.length).toBeLessThanOrEqual(limit);
    expect(record!.data.length).toBeGreaterThan(Buffer.concat(lines).length); // stored, not compressed: the bound is what matters
  });
});

describe('multi-member gzip', () => {
  it("is read whole by zlib's streaming gunzip as by gunzipSync", async () => {
    const lines = Array.from({ length: 3000 }, (_, i) => Buffer.from(`{"id":"e-${i}","payload":"${'x'.repeat(i % 500)}"}\n`));
    const object = Buffer.concat(packLines(lines, 64 * 1024).map((r) => r.data));
    const streamed = await buffer(Readable.from([object.subarray(0, 1000), object.subarray(1000)]).pipe(createGunzip()));
    expect(streamed.equals(Buffer.concat(lines))).toBe(true);
  });
});
