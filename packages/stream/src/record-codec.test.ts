import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createRequire } from 'node:module';
import { gzipSync } from 'node:zlib';
import { AggregatedSize, MAX_DECOMPRESSED_BYTES, compressRecord, decodeRecord, detectForm, encodeAggregated, encodePlain, zstdContentSize } from './record-codec.js';

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');
const envelopeJson = fc
  .record({ id: fc.string(), n: fc.integer(), s: fc.string({ unit: 'grapheme', maxLength: 300 }) })
  .map((o) => Buffer.from(JSON.stringify(o)));
const compression = fc.constantFrom('none' as const, 'gzip' as const, 'zstd' as const);

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

  it('builds aggregated records byte for byte as aws-kinesis-agg does', () => {
    const kpl = createRequire(import.meta.url)('aws-kinesis-agg') as { RecordAggregator: new () => { addUserRecord(r: { partitionKey: string; data: Buffer }): void; build(): { data: Buffer } | undefined } };
    fc.assert(
      // The library keeps its key table in a plain object, so it mis-encodes a key such as "__proto__" (ours does not).
      fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 256 }).filter((k) => !(k in {})), fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 12 }), fc.nat({ max: 20_000 }), (pk, records, big) => {
        const all = [...records, Buffer.alloc(big, 0x7b)];
        const aggregator = new kpl.RecordAggregator();
        for (const data of all) aggregator.addUserRecord({ partitionKey: pk, data: Buffer.from(data) });
        expect(encodeAggregated(pk, all).equals(aggregator.build()!.data)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('detects forms by their first bytes', () => {
    const ev = Buffer.from('{"a":1}');
    expect(detectForm(encodePlain(ev))).toBe('plain');
    expect(detectForm(encodeAggregated('k', [ev]))).toBe('aggregated');
    expect(detectForm(encodePlain(ev, 'gzip'))).toBe('gzip');
    expect(detectForm(encodeAggregated('k', [ev], 'gzip'))).toBe('gzip');
    expect(detectForm(encodePlain(ev, 'zstd'))).toBe('zstd');
    expect(detectForm(encodeAggregated('k', [ev], 'zstd'))).toBe('zstd');
  });

  it('reads the content size from any zstd frame header layout', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70_000 }), (bytes) => {
        expect(zstdContentSize(compressRecord(Buffer.concat([Buffer.from('{'), bytes]), 'zstd'))).toBe(bytes.length + 1);
      }),
      { numRuns: 60 },
    );
    // hand-built headers for the layouts the compressor does not choose: window byte, dictionary id, 8-byte size
    const magic = [0x28, 0xb5, 0x2f, 0xfd];
    expect(zstdContentSize(Buffer.from([...magic, 0b0000_0000, 0x58]))).toBeUndefined();
    expect(zstdContentSize(Buffer.from([...magic, 0b0100_0001, 0x58, 0x07, 0x10, 0x00]))).toBe(0x10 + 256);
    expect(zstdContentSize(Buffer.from([...magic, 0b1100_0010, 0x58, 0x01, 0x02, 1, 0, 0, 0, 1, 0, 0, 0]))).toBe(2 ** 32 + 1);
  });

  it('keeps its zstd contexts usable: the same frame for the same record whatever came before, a good frame read after a corrupt one', () => {
    const a = Buffer.from(JSON.stringify({ a: 'x'.repeat(500), n: 1 }));
    const b = Buffer.from(JSON.stringify({ b: 'y'.repeat(5000), list: [1, 2, 3] }));
    const first = compressRecord(a, 'zstd');
    compressRecord(b, 'zstd');
    expect(compressRecord(a, 'zstd').equals(first)).toBe(true);
    expect(() => decodeRecord(first.subarray(0, first.length - 2))).toThrow(/zstd record does not decompress/);
    expect(Buffer.from(decodeRecord(first)[0]!).equals(a)).toBe(true);
  });

  it('rejects corrupt input with clear errors', () => {
    const ev = Buffer.from('{"a":1}');
    expect(() => decodeRecord(new Uint8Array())).toThrow(/unknown record form.*empty/);
    expect(() => decodeRecord(Buffer.from('hello'))).toThrow(/unknown record form \(first bytes 68656c6c\)/);
    const agg = encodeAggregated('k', [ev, ev]);
    const flipped = Buffer.from(agg);
    flipped[8] = (flipped[8] ?? 0) ^ 0xff;
    expect(() => decodeRecord(flipped)).toThrow(/aggregated record is corrupt/);
    expect(() => decodeRecord(agg.subarray(0, 10))).toThrow(/truncated/);
    const gz = encodePlain(ev, 'gzip');
    expect(() => decodeRecord(gz.subarray(0, gz.length - 6))).toThrow(/gzip record does not decompress/);
    expect(() => decodeRecord(gzipSync(gz))).toThrow(/gzip record contains another compressed frame \(gzip\)/);
    expect(() => decodeRecord(gzipSync(Buffer.from('nope')))).toThrow(/unknown record form/);
    const zs = encodePlain(ev, 'zstd');
    expect(() => decodeRecord(zs.subarray(0, 5))).toThrow(/zstd record is truncated/);
    expect(() => decodeRecord(zs.subarray(0, zs.length - 2))).toThrow(/zstd record does not decompress/);
    expect(() => decodeRecord(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0x58, 0, 0]))).toThrow(/no content size/);
    // a frame claiming more than the cap is refused before anything is allocated
    const huge = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0b1000_0000, 0x58, 0, 0, 0, 0]);
    huge.writeUInt32LE(MAX_DECOMPRESSED_BYTES + 1, 6);
    expect(() => decodeRecord(huge)).toThrow(/claims 16777217 bytes/);
    expect(() => decodeRecord(compressRecord(gz, 'zstd'))).toThrow(/zstd record contains another compressed frame \(gzip\)/);
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
