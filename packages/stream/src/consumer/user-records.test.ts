import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { encodeAggregated, encodePlain } from '../record-codec.js';
import { comparePositions, recordsAfter, toUserRecords } from './user-records.js';

const json = (o: unknown) => Buffer.from(JSON.stringify(o));
const text = (b: Uint8Array) => Buffer.from(b).toString();

describe('user records', () => {
  it('de-aggregates and gunzips, numbering records inside an aggregate', () => {
    const raw = [
      { sequenceNumber: '10', partitionKey: 'ws1', data: encodePlain(json({ n: 1 })) },
      { sequenceNumber: '11', partitionKey: 'ws1', data: encodeAggregated('ws1', [json({ n: 2 }), json({ n: 3 })], 'gzip') },
      { sequenceNumber: '12', partitionKey: 'ws2', data: encodePlain(json({ n: 4 }), 'gzip') },
    ];
    const records = toUserRecords('shard-0', raw);
    expect(records.map((r) => [r.sequenceNumber, r.subSequenceNumber, r.partitionKey, text(r.data)])).toEqual([
      ['10', 0, 'ws1', '{"n":1}'],
      ['11', 0, 'ws1', '{"n":2}'],
      ['11', 1, 'ws1', '{"n":3}'],
      ['12', 0, 'ws2', '{"n":4}'],
    ]);
  });

  it('hands over an undecodable record with its raw bytes and the reason', () => {
    const [bad] = toUserRecords('shard-0', [{ sequenceNumber: '7', partitionKey: 'ws', data: Buffer.from('not json') }]);
    expect(text(bad!.data)).toBe('not json');
    expect(bad!.decodeError?.code).toBe('RECORD_CORRUPT');
  });

  it('resumes strictly after a checkpoint, also inside an aggregate', () => {
    const raw = [{ sequenceNumber: '11', partitionKey: 'ws1', data: encodeAggregated('ws1', [json({ n: 1 }), json({ n: 2 }), json({ n: 3 })]) }];
    const records = toUserRecords('s', raw);
    expect(recordsAfter(records, { sequenceNumber: '11', subSequenceNumber: 1 }).map((r) => r.subSequenceNumber)).toEqual([2]);
    expect(recordsAfter(records, { sequenceNumber: '10', subSequenceNumber: 9 })).toHaveLength(3);
    expect(recordsAfter(records, undefined)).toHaveLength(3);
  });

  it('orders positions by 128-bit sequence number, then sub-sequence', () => {
    const seq = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n });
    fc.assert(
      fc.property(seq, seq, fc.nat(100), fc.nat(100), (a, b, i, j) => {
        const c = comparePositions({ sequenceNumber: a.toString(), subSequenceNumber: i }, { sequenceNumber: b.toString(), subSequenceNumber: j });
        expect(Math.sign(c)).toBe(a !== b ? (a < b ? -1 : 1) : Math.sign(i - j));
      }),
    );
  });
});
