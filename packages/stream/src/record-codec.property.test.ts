// Fuzzing the Kinesis record decoder: whatever bytes arrive (a corrupt producer, a hostile writer
// of the stream), decodeRecord returns user records or throws RECORD_CORRUPT — which the readers
// dead-letter — and never allocates beyond MAX_DECOMPRESSED_BYTES.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { gzipSync } from 'node:zlib';
import { TaskflowError } from '../../../lib/errors.js';
import { MAX_DECOMPRESSED_BYTES, decodeRecord, encodeAggregated, encodePlain, type Compression } from './record-codec.js';

const MAGICS = [[0x1f, 0x8b], [0xf3, 0x89, 0x9a, 0xc2], [0x28, 0xb5, 0x2f, 0xfd], [0x7b]];

/** Decodes, and says how: records, or the error code. Anything else escaping fails the property. */
function outcome(data: Uint8Array): string {
  try {
    const records = decodeRecord(data);
    expect(Array.isArray(records)).toBe(true);
    return 'records';
  } catch (err) {
    if (err instanceof TaskflowError && err.code === 'RECORD_CORRUPT') return 'corrupt';
    throw err;
  }
}

const event = fc.json({ maxDepth: 3 }).map((j) => Buffer.from(JSON.stringify({ v: j })));
const encoded = fc
  .tuple(fc.array(event, { minLength: 1, maxLength: 5 }), fc.constantFrom<Compression>('none', 'gzip', 'zstd'), fc.boolean())
  .map(([events, compression, aggregate]) => (aggregate ? encodeAggregated('ws', events, compression) : encodePlain(events[0]!, compression)));

describe('decodeRecord on untrusted bytes', () => {
  it('either decodes or says RECORD_CORRUPT, for any bytes and any bytes behind each form’s magic', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => void outcome(bytes)), { numRuns: 500 });
    fc.assert(
      fc.property(fc.constantFrom(...MAGICS), fc.uint8Array({ maxLength: 512 }), (magic, tail) => void outcome(Buffer.from([...magic, ...tail]))),
      { numRuns: 1000 },
    );
  });

  it('either decodes or says RECORD_CORRUPT for valid records with flipped, cut or appended bytes', () => {
    fc.assert(
      fc.property(encoded, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }), fc.nat(), fc.uint8Array({ maxLength: 16 }), (record, flips, cut, extra) => {
        const mutated = Buffer.from(record);
        for (const [at, mask] of flips) mutated[at % mutated.length] = (mutated[at % mutated.length] ?? 0) ^ mask;
        void outcome(mutated);
        void outcome(record.subarray(0, cut % (record.length + 1)));
        void outcome(Buffer.concat([record, extra]));
      }),
      { numRuns: 400 },
    );
  });

  it('refuses a gzip bomb without inflating it beyond the cap', () => {
    const bomb = gzipSync(Buffer.alloc(MAX_DECOMPRESSED_BYTES * 4, 0x20)); // 64 MiB of spaces in ~64 KB
    expect(bomb.length).toBeLessThan(100 * 1024);
    const before = process.memoryUsage().arrayBuffers;
    expect(() => decodeRecord(bomb)).toThrow(/gzip record does not decompress/);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(2 * MAX_DECOMPRESSED_BYTES);
  });

  it('refuses zstd frames whose declared size lies, in either direction', () => {
    fc.assert(
      fc.property(event, fc.integer({ min: -64, max: 64 }).filter((d) => d !== 0), (data, delta) => {
        const frame = Buffer.from(encodePlain(Buffer.concat([data, Buffer.alloc(300, 0x20)]), 'zstd'));
        // capture writes Frame_Content_Size as 2 bytes (+256) for these sizes: rewrite the claim
        const descriptor = frame[4]!;
        fc.pre(descriptor >> 6 === 1 && ((descriptor >> 5) & 1) === 1);
        const claimed = frame.readUInt16LE(5) + delta;
        fc.pre(claimed >= 0 && claimed <= 0xffff);
        frame.writeUInt16LE(claimed, 5);
        expect(outcome(frame)).toBe('corrupt');
      }),
      { numRuns: 200 },
    );
  });
});
