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

  it('rejects malformed input with a clear error', () => {
    expect(() => parseLsn('nope')).toThrow(/not a Postgres LSN/);
    expect(() => parseEventId('0/1-2')).toThrow(/not a TaskFlow event id/);
    expect(() => eventId({ commitLsn: 1n, txIndex: -1 })).toThrow(/out of range/);
  });
});
