import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { gzipSync } from 'node:zlib';
import { AggregatedSize, decodeRecord, detectForm, encodeAggregated, encodePlain } from './record-codec.js';

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');
const envelopeJson = fc
  .record({ id: fc.string(), n: fc.integer(), s: fc.string({ unit: 'grapheme', maxLength: 300 }) })
  .map((o) => Buffer.from(JSON.stringify(o)));
const compression = fc.constantFrom('none' as const, 'gzip' as const);

describe('record codec', () => {
  it('round-trips any events in any grouping, keeping order', () => {
    fc.assert(
      fc.property(fc.array(fc.array(envelopeJson, { minLength: 1, maxLength: 20 }), { maxLength: 10 }), fc.boolean(), compression, (groups, aggregate, comp) => {
        const records = groups.flatMap((g) => (aggregate ? [encodeAggregated('ws-1', g, comp)] : g.map((e) => encodePlain(e, comp))));
        const decoded = records.flatMap((r) => decodeRecord(r)).map(text);
        expect(decoded).toEqual(groups.flat().map(text));
      }),
      { numRuns: 150 },
    );
  });

  it('computes the aggregated size exactly as aws-kinesis-agg lays it out', () => {
    fc.assert(
      fc.property(fc.uuid(), fc.array(fc.integer({ min: 1, max: 40_000 }), { minLength: 1, maxLength: 12 }), (pk, sizes) => {
        const records = sizes.map((n) => Buffer.alloc(n, 0x7b));
        const size = new AggregatedSize(pk);
        for (const n of sizes) size.add(n);
        expect(encodeAggregated(pk, records).length).toBe(size.total);
      }),
      { numRuns: 60 },
    );
  });

  it('detects forms by their first bytes', () => {
    const ev = Buffer.from('{"a":1}');
    expect(detectForm(encodePlain(ev))).toBe('plain');
    expect(detectForm(encodeAggregated('k', [ev]))).toBe('aggregated');
    expect(detectForm(encodePlain(ev, 'gzip'))).toBe('gzip');
    expect(detectForm(encodeAggregated('k', [ev], 'gzip'))).toBe('gzip');
  });

  it('rejects corrupt input with clear errors', () => {
    const ev = Buffer.from('{"a":1}');
    expect(() => decodeRecord(new Uint8Array())).toThrow(/unknown record form.*empty/);
    expect(() => decodeRecord(Buffer.from('hello'))).toThrow(/unknown record form \(first bytes 68656c6c\)/);
    expect(() => decodeRecord(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0]))).toThrow(/zstd/);
    const agg = encodeAggregated('k', [ev, ev]);
    const flipped = Buffer.from(agg);
    flipped[8] = (flipped[8] ?? 0) ^ 0xff;
    expect(() => decodeRecord(flipped)).toThrow(/aggregated record is corrupt/);
    expect(() => decodeRecord(agg.subarray(0, 10))).toThrow(/truncated/);
    const gz = encodePlain(ev, 'gzip');
    expect(() => decodeRecord(gz.subarray(0, gz.length - 6))).toThrow(/gzip record does not decompress/);
    expect(() => decodeRecord(gzipSync(gz))).toThrow(/another gzip frame/);
    expect(() => decodeRecord(gzipSync(Buffer.from('nope')))).toThrow(/unknown record form/);
    expect(() => encodePlain(Buffer.from('[1]'))).toThrow(/JSON object/);
    let caught: unknown;
    try {
      decodeRecord(Buffer.from('x'));
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'RECORD_CORRUPT', retriable: false });
  });
});
