// How fast leases come back after a worker dies, with the clock injected: a worker restarted
// under the same id takes its own leases back in its first cycle (no failover wait), with the
// counter fence intact; a peer takes a dead worker's leases no earlier than the failover time
// after the last renewal it could have seen, and no later than failover + two take cycles
// (failover / 6 each) after the death; a graceful stop hands leases over at the peer's next cycle.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { LeaseCoordinator, LeaseLostError } from './coordinator.js';
import { MemoryLeaseStore } from './lease-store.js';
import { type ShardInfo, TRIM_HORIZON, planTakes, leftoversOf, observe, type Lease } from './leases.js';

const shardsOf = (n: number): ShardInfo[] => Array.from({ length: n }, (_, i) => ({ shardId: `s${i}`, parentShardIds: [], closed: false }));

function coordinator(store: MemoryLeaseStore, workerId: string, failoverMs: number, clock: () => number): LeaseCoordinator {
  return new LeaseCoordinator({ workerId, store, failoverMs, initialPosition: TRIM_HORIZON, now: clock });
}

/** One lease cycle as the consumer runs it: renew, then take. */
async function cycle(c: LeaseCoordinator): Promise<void> {
  await c.renewLeases();
  await c.takeLeases();
}

describe('recovery of leases', () => {
  it('a worker restarted under its own id takes all its leases back in its first cycle, and the fence stops the old incarnation', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 300, max: 20_000 }),
        fc.integer({ min: 0, max: 60_000 }),
        fc.boolean(),
        async (shardCount, failoverMs, downFor, peerPresent) => {
          let now = 0;
          const clock = () => now;
          const store = new MemoryLeaseStore();
          const shards = shardsOf(shardCount);
          const first = coordinator(store, 'router-0', failoverMs, clock);
          await first.syncShards(shards);
          await cycle(first);
          expect(first.heldKeys().sort()).toEqual(shards.map((s) => s.shardId).sort());
          const countersBefore = new Map([...store.items.values()].map((l) => [l.leaseKey, l.leaseCounter]));

          // A peer may cycle while the worker is down: it may steal for balance or take expired
          // leases; whatever it has not taken stays the dead worker's in the table.
          const peer = peerPresent ? coordinator(store, 'router-1', failoverMs, clock) : undefined;
          const deathAt = now;
          for (let t = 0; peer && t < downFor; t += Math.floor(failoverMs / 3)) {
            now = deathAt + t;
            await cycle(peer);
          }
          now = deathAt + downFor;

          const restarted = coordinator(store, 'router-0', failoverMs, clock);
          await restarted.syncShards(shards);
          await restarted.takeLeases();
          // Everything the table still says is router-0's is held again, after one cycle.
          const stillMine = [...store.items.values()].filter((l) => l.leaseOwner === 'router-0').map((l) => l.leaseKey).sort();
          expect(restarted.heldKeys().sort()).toEqual(stillMine);
          if (!peer) expect(stillMine).toEqual(shards.map((s) => s.shardId).sort());
          for (const key of stillMine) expect(store.items.get(key)!.leaseCounter).toBeGreaterThan(countersBefore.get(key)!);

          // The old incarnation (were it alive after all) cannot write: its counter is stale.
          for (const key of stillMine) {
            await expect(first.checkpoint(key, { sequenceNumber: '1', subSequenceNumber: 0 }, undefined)).rejects.toBeInstanceOf(LeaseLostError);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a peer takes a dead worker’s leases after the failover time and within failover + two take cycles of the death', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 300, max: 12_000 }),
        // The dead worker's and the peer's cycles are out of phase by any amount.
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 30 }),
        async (shardCount, failoverMs, phase, renewalsBeforeDeath) => {
          // As the consumer runs them: renewals every failover/3, the table read for takes every failover/6.
          const renewEvery = Math.floor(failoverMs / 3);
          const takeEvery = Math.floor(failoverMs / 6);
          let now = 0;
          const clock = () => now;
          const store = new MemoryLeaseStore();
          const dying = coordinator(store, 'a', failoverMs, clock);
          const peer = coordinator(store, 'b', failoverMs, clock);
          await dying.syncShards(shardsOf(shardCount));
          await cycle(dying);
          const offset = Math.floor(phase * takeEvery);
          const deathAt = renewalsBeforeDeath * renewEvery;
          const events: { at: number; who: 'a' | 'b' }[] = [];
          for (let i = 0; i <= renewalsBeforeDeath; i++) events.push({ at: i * renewEvery, who: 'a' });
          for (let t = offset; t <= deathAt; t += takeEvery) events.push({ at: t, who: 'b' });
          events.sort((x, y) => x.at - y.at || (x.who === 'a' ? -1 : 1));
          let lastRenewal = 0;
          for (const e of events) {
            now = e.at;
            if (e.who === 'a') {
              await cycle(dying);
              lastRenewal = now;
            } else await cycle(peer);
          }
          const aHeld = dying.heldKeys();
          // `a` is dead from here on; `b` keeps its beat until it holds a's leases.
          let t = events.filter((e) => e.who === 'b').at(-1)?.at ?? offset - takeEvery;
          let takenAt: number | undefined;
          while (takenAt === undefined && t < deathAt + 10 * failoverMs) {
            t += takeEvery;
            now = t;
            await cycle(peer);
            if (aHeld.every((k) => peer.holds(k))) takenAt = now;
          }
          expect(takenAt).toBeDefined();
          // Never before `a` could have stopped believing it holds them...
          expect(takenAt! - lastRenewal).toBeGreaterThanOrEqual(failoverMs);
          // ...and no later than one take cycle to see the last counter, the failover time, one cycle to act.
          expect(takenAt! - deathAt).toBeLessThanOrEqual(failoverMs + 2 * takeEvery);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('planTakes always takes back every workable lease left under its own id, whatever the target, cap or clock', () => {
    const leaseArb = (key: string) =>
      fc.record({
        owner: fc.constantFrom<string | null>(null, 'me', 'other', 'third'),
        counter: fc.integer({ min: 0, max: 5 }),
        seenAgo: fc.integer({ min: 0, max: 5000 }),
        held: fc.boolean(),
      }).map(({ owner, counter, seenAgo, held }) => ({ lease: { leaseKey: key, leaseOwner: owner, leaseCounter: counter, checkpoint: TRIM_HORIZON, checkpointSubSequence: 0, parentShardIds: [], ownerSwitchesSinceCheckpoint: 0 } as Lease, seenAgo, held: held && owner === 'me' }));
    fc.assert(
      fc.property(fc.tuple(...Array.from({ length: 6 }, (_, i) => leaseArb(`s${i}`))), fc.integer({ min: 1, max: 3 }), (rows, cap) => {
        const now = 10_000;
        let observations = new Map<string, { counter: number; since: number }>();
        for (const r of rows) observations = observe(observations, [r.lease], now - r.seenAgo);
        const heldByMe = new Set(rows.filter((r) => r.held).map((r) => r.lease.leaseKey));
        const leases = rows.map((r) => r.lease);
        const plan = planTakes({ workerId: 'me', leases, observations, heldByMe, shardIdsInStream: new Set(leases.map((l) => l.leaseKey)), now, failoverMs: 1000, maxTakesPerCycle: cap });
        const leftovers = leftoversOf('me', leases, heldByMe).map((l) => l.leaseKey);
        const taken = plan.take.map((l) => l.leaseKey);
        for (const key of leftovers) expect(taken).toContain(key);
        // Nothing held is taken again, nothing is taken twice, and only free or expired leases of others besides.
        expect(new Set(taken).size).toBe(taken.length);
        for (const key of taken) expect(heldByMe.has(key)).toBe(false);
        for (const l of plan.take) if (l.leaseOwner !== 'me' && l.leaseOwner !== null) expect(rows.find((r) => r.lease.leaseKey === l.leaseKey)!.seenAgo).toBeGreaterThanOrEqual(1000);
      }),
      { numRuns: 500 },
    );
  });

  it('a worker paused past the failover time keeps its lease unless a peer took it meanwhile', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 300, max: 12_000 }), fc.integer({ min: 0, max: 40_000 }), fc.boolean(), async (failoverMs, pauseMs, peerCycles) => {
        let now = 0;
        const clock = () => now;
        const store = new MemoryLeaseStore();
        const slow = coordinator(store, 'slow', failoverMs, clock);
        const peer = coordinator(store, 'peer', failoverMs, clock);
        await slow.syncShards(shardsOf(1));
        await cycle(slow);
        await cycle(peer); // 1 lease, 2 workers: the peer stays below its share of 1 and does not steal
        for (let t = 0; t <= pauseMs; t += Math.floor(failoverMs / 3)) {
          now = t;
          if (peerCycles) await cycle(peer);
        }
        now = pauseMs;
        const peerHas = peer.holds('s0');
        const kept = await slow.confirm('s0');
        // Exactly one of them may act on it, and the table agrees.
        expect(kept).toBe(!peerHas);
        expect(store.items.get('s0')!.leaseOwner).toBe(kept ? 'slow' : 'peer');
        if (kept) await slow.checkpoint('s0', { sequenceNumber: '1', subSequenceNumber: 0 }, undefined);
        // Without a peer, the lease is simply kept, however long the pause.
        if (!peerCycles) expect(kept).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('a graceful stop frees the leases for a peer’s next cycle', async () => {
    let now = 0;
    const clock = () => now;
    const store = new MemoryLeaseStore();
    const a = coordinator(store, 'a', 3000, clock);
    const b = coordinator(store, 'b', 3000, clock);
    await a.syncShards(shardsOf(2));
    await cycle(a);
    await cycle(b);
    for (const key of a.heldKeys()) await a.release(key);
    now += 1;
    await cycle(b);
    expect(b.heldKeys().sort()).toEqual(['s0', 's1']);
  });
});
