// The lease protocol under arbitrary schedules: several workers share one lease table (in memory,
// with DynamoDB's conditional writes); fast-check picks which worker renews, takes, checkpoints,
// finishes a shard, pauses, dies or restarts, advances the clock, and the moment each call to
// the table is carried out, so concurrent calls interleave in any order.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { LeaseCoordinator, LeaseLostError } from './coordinator.js';
import { type LeaseStore, MemoryLeaseStore } from './lease-store.js';
import { type Lease, type ShardInfo, SHARD_END, TRIM_HORIZON, parentsFinished } from './leases.js';

const F = 3000;
// The stream reshards while the workers run. Stage 0: r0..r3. Stage 1: r0+r1 merged into m, r2
// split into a and b. Stage 2: a split again into a1. r3 is never touched.
const STAGES: ShardInfo[][] = [
  [
    { shardId: 'r0', parentShardIds: [], closed: false },
    { shardId: 'r1', parentShardIds: [], closed: false },
    { shardId: 'r2', parentShardIds: [], closed: false },
    { shardId: 'r3', parentShardIds: [], closed: false },
  ],
];
STAGES.push([
  ...STAGES[0]!.map((s) => (s.shardId === 'r3' ? s : { ...s, closed: true })),
  { shardId: 'm', parentShardIds: ['r0', 'r1'], closed: false },
  { shardId: 'a', parentShardIds: ['r2'], closed: false },
  { shardId: 'b', parentShardIds: ['r2'], closed: false },
]);
STAGES.push([...STAGES[1]!.map((s) => (s.shardId === 'a' ? { ...s, closed: true } : s)), { shardId: 'a1', parentShardIds: ['a'], closed: false }]);
const ALL_SHARDS = STAGES[2]!;
const SLOTS = 3;

type Op = 'renew' | 'take' | 'checkpoint' | 'finish' | 'sync';
type Command =
  | { kind: 'advance'; ms: number }
  | { kind: 'round'; actions: { slot: number; op: Op }[] }
  | { kind: 'kill'; slot: number }
  | { kind: 'reshard' }
  | { kind: 'restart'; slot: number; sameId: boolean };

const slot = fc.integer({ min: 0, max: SLOTS - 1 });
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: F }) }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('round' as const),
      actions: fc.array(fc.record({ slot, op: fc.constantFrom<Op>('renew', 'take', 'checkpoint', 'finish', 'sync') }), { minLength: 1, maxLength: 5 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('kill' as const), slot }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reshard' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const), slot, sameId: fc.boolean() }) },
);

/** The table, with a record of ownership changes and of anything that must never happen. */
class AuditedStore extends MemoryLeaseStore {
  readonly takeovers: { shardId: string; at: number; from: string }[] = [];
  readonly violations: string[] = [];
  constructor(private readonly clock: () => number) {
    super();
  }
  override async replace(next: Lease, expectedCounter: number): Promise<boolean> {
    const before = this.items.get(next.leaseKey);
    const ok = await super.replace(next, expectedCounter);
    if (ok && before) {
      if (before.checkpoint === SHARD_END && next.checkpoint !== SHARD_END) this.violations.push(`${next.leaseKey} un-finished`);
      if (before.leaseOwner !== null && next.leaseOwner !== null && before.leaseOwner !== next.leaseOwner) {
        this.takeovers.push({ shardId: next.leaseKey, at: this.clock(), from: before.leaseOwner });
      }
    }
    return ok;
  }
}

/** Carries out each call to the table at a moment fast-check chooses. */
function scheduled(store: LeaseStore, s: fc.Scheduler): LeaseStore {
  const later = <T>(call: () => Promise<T>) => s.schedule(Promise.resolve()).then(call);
  return {
    list: () => later(() => store.list()),
    create: (l) => later(() => store.create(l)),
    replace: (l, c) => later(() => store.replace(l, c)),
    delete: (k, c) => later(() => store.delete(k, c)),
    writeState: (k, r, st) => later(() => store.writeState(k, r, st)),
    readState: (k, r) => later(() => store.readState(k, r)),
  };
}

interface Worker {
  id: string;
  coordinator: LeaseCoordinator;
}

describe('lease coordinator under any schedule', () => {
  it('keeps shards exclusive, children after parents, and gives every shard a live owner', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(command, { maxLength: 40 }), async (s, commands) => {
        let now = 0;
        let stage = 0;
        const shards = () => STAGES[stage]!;
        const table = new AuditedStore(() => now);
        const store = scheduled(table, s);
        const workers: (Worker | undefined)[] = [];
        let generation = 0;

        const startWorker = async (index: number, id: string) => {
          const coordinator = new LeaseCoordinator({ workerId: id, store, failoverMs: F, initialPosition: TRIM_HORIZON, now: () => now });
          workers[index] = { id, coordinator };
          await s.waitFor(coordinator.syncShards(shards()));
        };

        const act = async (w: Worker, op: Op) => {
          const c = w.coordinator;
          if (op === 'renew') await c.renewLeases();
          else if (op === 'sync') await c.syncShards(shards());
          else if (op === 'take') {
            const { acquired } = await c.takeLeases();
            const byKey = new Map([...table.items.values()].map((l) => [l.leaseKey, l]));
            const inStream = new Set(shards().map((sh) => sh.shardId));
            for (const lease of acquired) {
              // The lease was written just now: its parents must be finished in the table.
              if (!parentsFinished(lease, byKey, inStream)) table.violations.push(`${lease.leaseKey} started before its parents`);
              if (lease.checkpoint === SHARD_END) table.violations.push(`${lease.leaseKey} taken after it finished`);
            }
          } else {
            const closed = new Set(shards().filter((sh) => sh.closed).map((sh) => sh.shardId));
            const key = c.heldKeys().find((k) => op === 'checkpoint' || closed.has(k));
            if (key === undefined) return;
            try {
              if (op === 'checkpoint') await c.checkpoint(key, { sequenceNumber: String(now), subSequenceNumber: 0 }, `state@${now}`);
              else await c.finish(key, 'final');
            } catch (err) {
              if (!(err instanceof LeaseLostError)) throw err;
            }
          }
        };

        const round = async (actions: { slot: number; op: Op }[]) => {
          const running = actions.flatMap(({ slot: i, op }) => {
            const w = workers[i];
            return w ? [act(w, op)] : [];
          });
          await s.waitFor(Promise.all(running));
        };

        const checkExclusive = () => {
          for (const shard of ALL_SHARDS) {
            const holders = workers.filter((w): w is Worker => w !== undefined && w.coordinator.holds(shard.shardId));
            const owner = table.items.get(shard.shardId)?.leaseOwner;
            // Only a balancing steal leaves an old holder believing, and only until its next
            // renewal, at most the failover time (steals can chain: A→B→C in one instant).
            for (const stale of holders.filter((w) => w.id !== owner)) {
              const stolen = table.takeovers.some((t) => t.shardId === shard.shardId && t.from === stale.id && now - t.at < F);
              expect({ shard: shard.shardId, stale: stale.id, stolen }).toEqual({ shard: shard.shardId, stale: stale.id, stolen: true });
            }
          }
        };

        for (let i = 0; i < SLOTS; i += 1) await startWorker(i, `w${i}`);
        for (const cmd of commands) {
          if (cmd.kind === 'advance') now += cmd.ms;
          else if (cmd.kind === 'round') await round(cmd.actions);
          else if (cmd.kind === 'kill') workers[cmd.slot] = undefined;
          else if (cmd.kind === 'reshard') stage = Math.min(stage + 1, STAGES.length - 1);
          else {
            generation += 1;
            const old = workers[cmd.slot];
            await startWorker(cmd.slot, cmd.sameId && old ? old.id : `w${cmd.slot}-g${generation}`);
          }
          checkExclusive();
          expect(table.violations).toEqual([]);
        }

        // Settle: at least one worker lives, and the live ones all work on a steady beat.
        // The resharding completes, and every worker lists the shards on each beat.
        stage = STAGES.length - 1;
        if (workers.every((w) => w === undefined)) await startWorker(0, 'w0-last');
        for (let r = 0; r < 45; r += 1) {
          now += Math.floor(F / 3);
          const live = workers.flatMap((w, i) => (w ? [i] : []));
          const beat: Op[] = ['sync', 'renew', 'take', 'finish'];
          await round(live.flatMap((i) => beat.map((op) => ({ slot: i, op }))));
          checkExclusive();
        }
        expect(table.violations).toEqual([]);

        const live = workers.filter((w): w is Worker => w !== undefined);
        for (const lease of table.items.values()) {
          if (lease.checkpoint === SHARD_END) continue;
          const holders = live.filter((w) => w.coordinator.holds(lease.leaseKey));
          expect(holders.map((w) => w.id)).toEqual([lease.leaseOwner]);
        }
        // Every closed shard got read to its end, so only the open leaves remain, spread evenly.
        const open = [...table.items.values()].filter((l) => l.checkpoint !== SHARD_END).map((l) => l.leaseKey).sort();
        expect(open).toEqual(['a1', 'b', 'm', 'r3']);
        const counts = live.map((w) => w.coordinator.heldKeys().length);
        expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
      }),
      { numRuns: 60 },
    );
  }, 60_000);
});
