import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { parseSignal, survivingRows } from './snapshot.js';

describe('snapshot chunk window', () => {
  it('drops exactly the rows whose key changed inside the window, keeping order', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 500 })), fc.array(fc.integer({ min: 0, max: 500 })), (ids, changed) => {
        const rows = ids.map((id) => ({ id: String(id), v: id }));
        const kept = survivingRows(rows, new Set(changed.map(String)));
        expect(kept).toEqual(rows.filter((r) => !changed.includes(r.v)));
      }),
    );
  });

  it('accepts only well-formed signals for captured tables', () => {
    const enc = (o: unknown) => Buffer.from(JSON.stringify(o));
    expect(parseSignal(enc({ action: 'snapshot', request: { tables: ['tasks'], workspace: 'w' } }))).toMatchObject({ action: 'snapshot' });
    expect(parseSignal(enc({ action: 'stop-snapshot' }))).toEqual({ action: 'stop-snapshot' });
    expect(parseSignal(enc({ action: 'snapshot', request: { tables: ['users'] } }))).toBeUndefined();
    expect(parseSignal(Buffer.from('not json'))).toBeUndefined();
  });
});
