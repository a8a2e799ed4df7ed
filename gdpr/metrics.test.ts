import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { oldestOpenAgeSeconds } from './metrics.js';
import { newRequest, STEPS } from './processor.js';

const ids = { subject: 's', email: null, displayName: null, authored: [] };

describe('oldest open request age', () => {
  it('is the age of the earliest request not complete, 0 when none is open, whatever the order', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ at: fc.integer({ min: 0, max: 1e9 }), step: fc.constantFrom(...STEPS) })), (rs) => {
        const now = new Date(2e9);
        const requests = rs.map((r, i) => ({ ...newRequest({ requestId: `r${i}`, ids, ticket: 't', requestedBy: 'b', now: new Date(r.at), sinks: [] }), step: r.step }));
        const open = rs.filter((r) => r.step !== 'complete').map((r) => r.at);
        expect(oldestOpenAgeSeconds(requests, now)).toBe(open.length ? (now.getTime() - Math.min(...open)) / 1000 : 0);
      }),
    );
  });
});
