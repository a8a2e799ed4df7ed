// Coalescing a batch's membership writes (newestWrites) must leave the projection exactly as
// writing every one in turn would, whatever the projection held before and in whatever order
// duplicates, redriven (older) events and interleaved memberships arrive.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { newestWrites, type MembershipWrite } from './membership-events.js';

type Stored = Map<string, { eventId: string; membership: MembershipWrite['membership'] }>;

/** The projection's rule (lib/dynamo-memberships.ts): a write lands only if newer than the item. */
function apply(store: Stored, writes: readonly MembershipWrite[]): Stored {
  const out: Stored = new Map(store);
  for (const w of writes) {
    const key = `${w.userId}/${w.membershipId}`;
    const item = out.get(key);
    if (!item || item.eventId < w.eventId) out.set(key, { eventId: w.eventId, membership: w.membership });
  }
  return out;
}

const user = fc.constantFrom('u1', 'u2', 'u3');
const membershipId = fc.constantFrom('m1', 'm2');
const eventId = fc.integer({ min: 0, max: 30 }).map((n) => String(n).padStart(4, '0'));
const membership = fc.option(fc.record({ workspaceId: fc.constant('w'), projectId: fc.constantFrom(null, 'p'), role: fc.constantFrom('owner', 'admin', 'member', 'viewer') as fc.Arbitrary<'owner' | 'admin' | 'member' | 'viewer'> }), { nil: null });
const write: fc.Arbitrary<MembershipWrite> = fc.record({ userId: user, membershipId, eventId, membership });

describe('newestWrites', () => {
  it('leaves the same projection as applying every write in turn, from any stored state', () => {
    fc.assert(
      fc.property(fc.array(write, { maxLength: 40 }), fc.array(write, { maxLength: 6 }), (batch, before) => {
        // One event id carries one write per membership; a repeated id is the same event again (a duplicate).
        const byId = new Map<string, MembershipWrite>();
        const writes = batch.map((w) => {
          const key = `${w.eventId}/${w.userId}/${w.membershipId}`;
          const first = byId.get(key) ?? w;
          byId.set(key, first);
          return first;
        });
        const stored = apply(new Map(), before);
        const coalesced = newestWrites(writes);
        expect(apply(stored, coalesced)).toEqual(apply(stored, writes));
        expect(new Set(coalesced.map((w) => `${w.userId}/${w.membershipId}`)).size).toBe(coalesced.length);
      }),
    );
  });
});
