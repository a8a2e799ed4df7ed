import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { comparePositions, eventId, formatLsn, parseEventId, parseLsn } from './event-id.js';

const position = fc.record({ commitLsn: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), txIndex: fc.integer({ min: 0, max: 99_999_999 }) });

describe('event ids', () => {
  it('round-trips LSNs', () => {
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (lsn) => parseLsn(formatLsn(lsn)) === lsn));
    expect(parseLsn('16/B374D848')).toBe(0x16b374d848n);
  });

  it('round-trips ids and sorts them like positions', () => {
    fc.assert(
      fc.property(position, position, (a, b) => {
        expect(parseEventId(eventId(a))).toEqual(a);
        const byString = eventId(a) < eventId(b) ? -1 : eventId(a) > eventId(b) ? 1 : 0;
        expect(byString).toBe(Math.sign(comparePositions(a, b)));
      }),
    );
  });

  it('parses exactly the strings of the id pattern, whatever the LSN (above 2^53 too)', () => {
    const idLike = fc.tuple(fc.stringMatching(/^[0-9A-Fa-f/ x-]{14,18}$/), fc.constantFrom('-', '_'), fc.stringMatching(/^[0-9 a]{7,9}$/)).map(([l, d, t]) => `${l}${d}${t}`);
    fc.assert(
      fc.property(fc.oneof(position.map(eventId), idLike), (id) => {
        const m = /^([0-9A-F]{16})-(\d{8})$/.exec(id);
        if (!m) expect(() => parseEventId(id)).toThrow(/not a TaskFlow event id/);
        else expect(parseEventId(id)).toEqual({ commitLsn: BigInt(`0x${m[1]}`), txIndex: Number(m[2]) });
      }),
    );
    expect(parseEventId('FFFFFFFFFFFFFFFF-99999999')).toEqual({ commitLsn: (1n << 64n) - 1n, txIndex: 99_999_999 });
    expect(parseEventId('0020000000000000-00000001')).toEqual({ commitLsn: 1n << 53n, txIndex: 1 });
    expect(parseEventId('001FFFFFFFFFFFFF-00000001')).toEqual({ commitLsn: (1n << 53n) - 1n, txIndex: 1 });
  });

  it('gives the same strings whatever was formatted before (the last answer is remembered)', () => {
    const hex = (lsn: bigint) => lsn.toString(16).toUpperCase();
    fc.assert(
      fc.property(fc.array(position, { maxLength: 20 }), (positions) => {
        for (const p of [...positions, ...positions.slice().reverse()]) {
          expect(formatLsn(p.commitLsn)).toBe(`${hex(p.commitLsn >> 32n)}/${hex(p.commitLsn & 0xffffffffn)}`);
          expect(eventId(p)).toBe(`${hex(p.commitLsn).padStart(16, '0')}-${String(p.txIndex).padStart(8, '0')}`);
        }
      }),
    );
  });

  it('rejects malformed input with a clear error', () => {
    for (const bad of ['nope', '1/', '/1', '123456789/0', '0/1g', ' 0/1', '0x1/2']) expect(() => parseLsn(bad)).toThrow(/not a Postgres LSN/);
    expect(() => parseEventId('0/1-2')).toThrow(/not a TaskFlow event id/);
    for (const bad of ['000000000001004G-00000000', '000000000001004a-00000000', '0000000000010040_00000000', '0000000000010040-0000000x', '0000000000010040-000000001', '0000000000010040-0000000', ' 000000000010040-00000000', '0000000000010040-0000000\u0660']) {
      expect(() => parseEventId(bad)).toThrow(/not a TaskFlow event id/);
    }
    expect(() => eventId({ commitLsn: 1n, txIndex: -1 })).toThrow(/out of range/);
  });
});
