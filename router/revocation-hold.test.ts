// The hold's rules, checked against random interleavings of changes, revocations, confirmations
// and the clock: nothing of a workspace committed after its revocation is released before the
// disconnect is confirmed or the bound passes; other workspaces are never held; order is kept;
// everything is released in the end.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { RevocationHolds } from './revocation-hold.js';

const TIMEOUT_MS = 1000;
const WORKSPACES = ['w-a', 'w-b', 'w-c'] as const;
/** Only these ever see a revocation: the others must never wait. */
const REVOKED = new Set(['w-a', 'w-b']);

type Op =
  | { kind: 'change'; ws: (typeof WORKSPACES)[number]; redriven: boolean }
  | { kind: 'revoke'; ws: 'w-a' | 'w-b' }
  | { kind: 'confirm'; nth: number }
  | { kind: 'tick'; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('change' as const), ws: fc.constantFrom(...WORKSPACES), redriven: fc.nat(9).map((n) => n === 0) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('revoke' as const), ws: fc.constantFrom('w-a' as const, 'w-b' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('confirm' as const), nth: fc.nat(5) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 700 }) }) },
);

const id = (n: number) => n.toString(16).padStart(16, '0');

interface Item {
  ws: string;
  eventId: string;
  ordinal: number;
}

describe('RevocationHolds', () => {
  it('releases nothing committed after a revocation before its disconnect is confirmed or the bound passes; others never wait; order kept', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        const holds = new RevocationHolds<Item>(TIMEOUT_MS);
        let now = 0;
        let ordinal = 0;
        const lastId = new Map<string, number>(WORKSPACES.map((w) => [w, 100]));
        /** Holds as the test knows them: open until confirmed or past the deadline. */
        const open: { holdId: number; ws: string; after: string; deadline: number; confirmed: boolean }[] = [];
        const offered = new Map<string, number[]>();
        const out = new Map<string, number[]>();

        const emit = (items: Item[]) => {
          for (const item of items) {
            for (const h of open) {
              const active = !h.confirmed && now < h.deadline;
              if (h.ws === item.ws && active && item.eventId > h.after) throw new Error(`${item.eventId} of ${item.ws} released during the hold after ${h.after}`);
            }
            out.set(item.ws, [...(out.get(item.ws) ?? []), item.ordinal]);
          }
        };

        for (const o of ops) {
          if (o.kind === 'change') {
            // A redriven event is older than the workspace's mark; a normal one is the next in order.
            const n = o.redriven ? Math.max(1, (lastId.get(o.ws) ?? 100) - 50) : (lastId.get(o.ws) ?? 100) + 1;
            if (!o.redriven) lastId.set(o.ws, n);
            const item = { ws: o.ws, eventId: id(n), ordinal: ordinal++ };
            offered.set(o.ws, [...(offered.get(o.ws) ?? []), item.ordinal]);
            const passes = holds.offer(o.ws, item.eventId, item);
            if (!REVOKED.has(o.ws)) expect(passes).toBe(true);
            if (passes) emit([item]);
          } else if (o.kind === 'revoke') {
            const n = (lastId.get(o.ws) ?? 100) + 1;
            lastId.set(o.ws, n); // the membership delete itself takes a position
            const holdId = holds.hold(o.ws, id(n), now);
            open.push({ holdId, ws: o.ws, after: id(n), deadline: now + TIMEOUT_MS, confirmed: false });
          } else if (o.kind === 'confirm') {
            const h = open.filter((x) => !x.confirmed)[o.nth];
            if (h) {
              h.confirmed = true;
              holds.confirm(h.holdId);
              emit(holds.release(now).items);
            }
          } else {
            now += o.ms;
            emit(holds.release(now).items);
          }
        }
        // Past every deadline everything is out, in the order offered, per workspace.
        now += TIMEOUT_MS;
        const last = holds.release(now);
        emit(last.items);
        expect(holds.queuedCount).toBe(0);
        expect(holds.nextDeadline()).toBeUndefined();
        for (const w of WORKSPACES) expect(out.get(w) ?? []).toEqual(offered.get(w) ?? []);
      }),
    );
  });

  it('reports each hold once, as confirmed or as timed out', () => {
    const holds = new RevocationHolds<string>(500);
    const a = holds.hold('w', id(10), 0);
    const b = holds.hold('w', id(20), 100);
    expect(holds.offer('w', id(5), 'older')).toBe(true);
    expect(holds.offer('w', id(11), 'after-a')).toBe(false);
    expect(holds.offer('other', id(99), 'elsewhere')).toBe(true);
    expect(holds.nextDeadline()).toBe(500);
    holds.confirm(a);
    const first = holds.release(200);
    expect(first.confirmed.map((h) => h.id)).toEqual([a]);
    expect(first.items).toEqual(['after-a']); // 11 is not after b's 20
    expect(holds.offer('w', id(21), 'after-b')).toBe(false);
    const second = holds.release(600);
    expect(second.timedOut.map((h) => h.id)).toEqual([b]);
    expect(second.items).toEqual(['after-b']);
  });
});
