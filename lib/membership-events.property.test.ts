// Coalescing a batch's membership writes (newestWrites) must leave the projection exactly as
// writing every one in turn would, whatever the projection held before and in whatever order
// duplicates, redriven (older) events and interleaved memberships arrive. And for an erased
// subject (projectionSteps) the projection never holds anything of theirs, in any order.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { newestWrites, projectionSteps, type MembershipWrite } from './membership-events.js';

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

describe('projectionSteps', () => {
  it("stores nothing of an erased subject, whatever arrives in whatever order, and leaves everyone else's projection as it was", () => {
    fc.assert(
      fc.property(fc.array(fc.array(write, { maxLength: 10 }), { maxLength: 5 }), fc.subarray(['u1', 'u2', 'u3']), (batches, erasedList) => {
        const erased = new Set(erasedList);
        let withRule: Stored = new Map();
        let without: Stored = new Map();
        for (const batch of batches) {
          const steps = projectionSteps(newestWrites(batch), (u) => erased.has(u));
          withRule = apply(withRule, steps.flatMap((s) => ('put' in s ? [s.put] : [])));
          for (const s of steps) if ('forget' in s) withRule.delete(`${s.forget.userId}/${s.forget.membershipId}`);
          without = apply(without, newestWrites(batch));
        }
        for (const key of withRule.keys()) expect(erased.has(key.split('/')[0]!)).toBe(false);
        const others = (m: Stored) => new Map([...m].filter(([k]) => !erased.has(k.split('/')[0]!)));
        expect(others(withRule)).toEqual(others(without));
      }),
    );
  });

  it("deletes an erased subject's removed membership instead of writing a tombstone, and writes no grant of theirs", () => {
    const grant: MembershipWrite = { userId: 'u1', membershipId: 'm1', eventId: '0001', membership: { workspaceId: 'w', projectId: null, role: 'member' } };
    const removal: MembershipWrite = { userId: 'u1', membershipId: 'm1', eventId: '0002', membership: null };
    expect(projectionSteps([grant, removal], (u) => u === 'u1')).toEqual([{ forget: { userId: 'u1', membershipId: 'm1' } }]);
    expect(projectionSteps([grant, removal], () => false)).toEqual([{ put: grant }, { put: removal }]);
  });
});

