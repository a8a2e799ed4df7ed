// The checkpoint state lives in two slot items beside the lease item (leases.ts planState): a
// new state is written into the slot the holder's lease item does not reference, fenced by the
// holder's counter, and only then the lease item, fenced as ever. fast-check runs workers that
// take the lease from each other (each on its own clock, so a former holder goes on believing it
// holds the lease, as a paused process does), checkpoint new or unchanged states, renew and read
// their state as a processor's initialization does, with every call to the table carried out at a
// moment it chooses, some lease writes failing with an unknown outcome. Whatever the interleaving, the state the lease item refers to is the one
// written with the item's position, never a stale holder's, and a reader gets that or is told its
// lease is lost.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { LeaseCoordinator, LeaseLostError } from './coordinator.js';
import { type LeaseStore, MemoryLeaseStore } from './lease-store.js';
import { TRIM_HORIZON, checkpointed, planState, renewed, takenBy } from './leases.js';

const F = 3000;
const WORKERS = 3;

/**
 * Carries out each call to the table at a moment fast-check chooses; the lease writes fail as
 * `faults` says, in turn: 'lost' is carried out but its answer lost (the call throws), 'dropped'
 * throws without being carried out. A writer then does not know its counter.
 */
function scheduled(store: LeaseStore, s: fc.Scheduler, faults: readonly ('ok' | 'lost' | 'dropped')[]): LeaseStore {
  const later = <T>(call: () => Promise<T>) => s.schedule(Promise.resolve()).then(call);
  let call = 0;
  return {
    list: () => later(() => store.list()),
    create: (l) => later(() => store.create(l)),
    replace: (l, c) =>
      later(async () => {
        const fault = faults.length ? faults[call++ % faults.length] : 'ok';
        if (fault === 'dropped') throw new Error('connection reset');
        const ok = await store.replace(l, c);
        if (fault === 'lost') throw new Error('timed out');
        return ok;
      }),
    delete: (k, c) => later(() => store.delete(k, c)),
    writeState: (k, r, st) => later(() => store.writeState(k, r, st)),
    readState: (k, r) => later(() => store.readState(k, r)),
  };
}

/** Counts the writes of each kind the table carried out. */
class CountingStore extends MemoryLeaseStore {
  slotWrites = 0;
  leaseWrites = 0;
  override async writeState(...args: Parameters<MemoryLeaseStore['writeState']>): Promise<boolean> {
    const ok = await super.writeState(...args);
    if (ok) this.slotWrites += 1;
    return ok;
  }
  override async replace(...args: Parameters<MemoryLeaseStore['replace']>): Promise<boolean> {
    const ok = await super.replace(...args);
    if (ok) this.leaseWrites += 1;
    return ok;
  }
}

type Op = { op: 'checkpoint'; fresh: boolean } | { op: 'renew' } | { op: 'take' } | { op: 'read' } | { op: 'advance'; ms: number };
const action = fc.record({
  w: fc.integer({ min: 0, max: WORKERS - 1 }),
  act: fc.oneof<fc.Arbitrary<Op>[]>(
    fc.record({ op: fc.constant('checkpoint' as const), fresh: fc.boolean() }),
    fc.constant({ op: 'renew' as const }),
    fc.constant({ op: 'take' as const }),
    fc.constant({ op: 'read' as const }),
    fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 2 * F }) }),
  ),
});

describe('checkpoint states in slots', () => {
  it('a stale former holder never corrupts the state of the lease item’s position, under any interleaving', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.boolean(), fc.array(fc.array(action, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 30 }), fc.array(fc.constantFrom<'ok' | 'lost' | 'dropped'>('ok', 'ok', 'ok', 'ok', 'lost', 'dropped'), { maxLength: 12 }), async (s, legacy, rounds, faults) => {
        const table = new MemoryLeaseStore();
        // The previous version's item: its state inline.
        await table.create({ leaseKey: 's0', leaseOwner: null, leaseCounter: 0, checkpoint: '0', checkpointSubSequence: 0, ...(legacy ? { checkpointState: 'legacy@0' } : {}), parentShardIds: [], ownerSwitchesSinceCheckpoint: 0 });
        /** The state each checkpointed position was written with (positions are unique). */
        const intended = new Map<string, string | undefined>([['0', legacy ? 'legacy@0' : undefined]]);
        const store = scheduled(table, s, faults);
        let seq = 0;
        const workers = Array.from({ length: WORKERS }, (_, i) => {
          const w = { id: `w${i}`, now: 0, state: undefined as string | undefined, coordinator: undefined as unknown as LeaseCoordinator };
          w.coordinator = new LeaseCoordinator({ workerId: w.id, store, failoverMs: F, initialPosition: TRIM_HORIZON, now: () => w.now });
          return w;
        });
        const problems: string[] = [];

        const run = async (w: (typeof workers)[number], act: Op) => {
          const c = w.coordinator;
          try {
            if (act.op === 'advance') w.now += act.ms;
            else if (act.op === 'renew') await c.renewLeases();
            else if (act.op === 'take') {
              // Seen once, then again a failover time later on this worker's clock: taken if nobody wrote meanwhile.
              await c.takeLeases();
              w.now += F;
              await c.takeLeases();
            } else if (act.op === 'read') {
              const lease = c.heldLease('s0');
              if (!lease) return;
              const state = await c.checkpointState('s0');
              w.state = state;
              if (state !== intended.get(lease.checkpoint)) problems.push(`${w.id} read ${state} for ${lease.checkpoint}, written with ${intended.get(lease.checkpoint)}`);
            } else if (c.claims('s0')) {
              // A holder, current or stale (it may not know it lost the lease).
              seq += 1;
              const position = String(seq);
              const state = act.fresh || w.state === undefined ? `${w.id}@${position}` : w.state;
              intended.set(position, state);
              await c.checkpoint('s0', { sequenceNumber: position, subSequenceNumber: 0 }, state);
              w.state = state;
            }
          } catch (err) {
            if (!(err instanceof LeaseLostError) && !/timed out|connection reset/.test(String(err))) throw err;
          }
        };

        for (const round of rounds) {
          await s.waitFor(Promise.all(round.map(({ w, act }) => run(workers[w]!, act))));
          expect(problems).toEqual([]);
          // The table's own invariant: the item's position and the state it refers to were written together.
          const item = table.items.get('s0')!;
          expect({ at: item.checkpoint, state: table.stateOf('s0') }).toEqual({ at: item.checkpoint, state: intended.get(item.checkpoint) });
        }

        // Whoever takes the lease last, once the others are gone, reads the state of its position.
        let lateNow = 0;
        const taker = new LeaseCoordinator({ workerId: 'late', store: table, failoverMs: F, initialPosition: TRIM_HORIZON, now: () => lateNow });
        await taker.takeLeases();
        lateNow += F;
        await taker.takeLeases();
        expect(taker.holds('s0')).toBe(true);
        expect(await taker.checkpointState('s0')).toBe(intended.get(table.items.get('s0')!.checkpoint));
      }),
      { numRuns: 300 },
    );
  }, 60_000);

  it('writes a slot only for a changed state: an unchanged one and the renewals write the lease item alone', async () => {
    const table = new CountingStore();
    await table.create({ leaseKey: 's0', leaseOwner: null, leaseCounter: 0, checkpoint: TRIM_HORIZON, checkpointSubSequence: 0, parentShardIds: [], ownerSwitchesSinceCheckpoint: 0 });
    const c = new LeaseCoordinator({ workerId: 'w', store: table, failoverMs: F, initialPosition: TRIM_HORIZON, now: () => 0 });
    await c.takeLeases();
    const at = (n: number) => ({ sequenceNumber: String(n), subSequenceNumber: 0 });
    await c.checkpoint('s0', at(1), 'marks-1');
    expect(table.items.get('s0')!.stateRef).toEqual({ slot: 'a', writerCounter: 1 });
    await c.checkpoint('s0', at(2), 'marks-1');
    await c.renewLeases();
    expect({ slots: table.slotWrites, leases: table.leaseWrites }).toEqual({ slots: 1, leases: 4 }); // take, two checkpoints, renewal
    await c.checkpoint('s0', at(3), 'marks-3');
    expect(table.items.get('s0')!.stateRef).toEqual({ slot: 'b', writerCounter: 4 });
    await c.checkpoint('s0', at(4), undefined);
    expect(table.items.get('s0')!.stateRef).toBeUndefined();
    expect(table.slotWrites).toBe(2);
    // A processor without state (notifications, search) writes no slot at all.
    await c.checkpoint('s0', at(5), undefined);
    expect(table.slotWrites).toBe(2);
  });

  it('a slot write is refused to a holder whose counter is not past the slot’s writer’s, and the lease is then lost', async () => {
    const table = new MemoryLeaseStore();
    await table.create({ leaseKey: 's0', leaseOwner: null, leaseCounter: 0, checkpoint: '1', checkpointSubSequence: 0, parentShardIds: [], ownerSwitchesSinceCheckpoint: 0 });
    const stale = new LeaseCoordinator({ workerId: 'old', store: table, failoverMs: F, initialPosition: TRIM_HORIZON, now: () => 0 });
    await stale.takeLeases(); // counter 1
    // The new holder takes it (2), checkpoints into slot a (written at 2, lease 3) and again into b (at 3, lease 4).
    let item = takenBy(table.items.get('s0')!, 'new');
    await table.replace(item, 1);
    for (const [slot, state] of [['a', 'new-a'], ['b', 'new-b']] as const) {
      const plan = planState(item, state, undefined);
      expect(plan.ref?.slot).toBe(slot);
      expect(await table.writeState('s0', plan.ref!, state)).toBe(true);
      const next = checkpointed(item, { sequenceNumber: '2', subSequenceNumber: 0 }, plan.ref);
      await table.replace(next, item.leaseCounter);
      item = next;
    }
    item = renewed(item);
    // The stale holder (counter 1, no slot referenced) would write slot a: refused, and it learns it lost the lease.
    await expect(stale.checkpoint('s0', { sequenceNumber: '9', subSequenceNumber: 0 }, 'stale')).rejects.toBeInstanceOf(LeaseLostError);
    expect(table.stateOf('s0')).toBe('new-b');
    expect(table.slots.get('s0#a')).toEqual({ writerCounter: 2, state: 'new-a' });
  });
});
