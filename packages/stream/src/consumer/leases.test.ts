import { describe, expect, it } from '@jest/globals';
import {
  LATEST,
  type Lease,
  SHARD_END,
  TRIM_HORIZON,
  checkpointed,
  isExpired,
  planState,
  slotWriteAllowed,
  leasesToCreate,
  leasesToDelete,
  observe,
  planTakes,
  takenBy,
} from './leases.js';

function lease(key: string, owner: string | null, extra: Partial<Lease> = {}): Lease {
  return {
    leaseKey: key,
    leaseOwner: owner,
    leaseCounter: 1,
    checkpoint: TRIM_HORIZON,
    checkpointSubSequence: 0,
    parentShardIds: [],
    ownerSwitchesSinceCheckpoint: 0,
    ...extra,
  };
}

const F = 1000;

describe('lease expiry', () => {
  it('expires a lease only after its counter stood still for the failover time, as seen locally', () => {
    const l = lease('s0', 'a');
    let obs = observe(new Map(), [l], 0);
    expect(isExpired(l, obs, 999, F)).toBe(false);
    expect(isExpired(l, obs, 1000, F)).toBe(true);
    const bumped = { ...l, leaseCounter: 2 };
    obs = observe(obs, [bumped], 900);
    expect(isExpired(bumped, obs, 1800, F)).toBe(false);
    expect(isExpired(bumped, obs, 1900, F)).toBe(true);
  });

  it('treats a free lease as available at once and an unseen one as live', () => {
    expect(isExpired(lease('s0', null), new Map(), 0, F)).toBe(true);
    expect(isExpired(lease('s0', 'a'), new Map(), 10_000, F)).toBe(false);
  });
});

describe('lease writes', () => {
  it('counts owner switches until the next checkpoint', () => {
    const l = takenBy(takenBy(lease('s0', null), 'a'), 'b');
    expect(l).toMatchObject({ leaseOwner: 'b', leaseCounter: 3, ownerSwitchesSinceCheckpoint: 2 });
    const c = checkpointed(l, { sequenceNumber: '42', subSequenceNumber: 3 }, { slot: 'a', writerCounter: 3 });
    expect(c).toMatchObject({ leaseCounter: 4, checkpoint: '42', checkpointSubSequence: 3, stateRef: { slot: 'a', writerCounter: 3 }, ownerSwitchesSinceCheckpoint: 0 });
    expect(takenBy(c, 'b').ownerSwitchesSinceCheckpoint).toBe(0);
  });
});

describe('checkpoint states', () => {
  const ref = { slot: 'a' as const, writerCounter: 4 };
  it('writes a new state into the slot the lease does not reference, as the holder’s counter', () => {
    expect(planState(lease('s0', 'w', { leaseCounter: 7 }), 'x', undefined)).toEqual({ ref: { slot: 'a', writerCounter: 7 }, write: true });
    expect(planState(lease('s0', 'w', { leaseCounter: 7, stateRef: ref }), 'x', { ref, state: 'old' })).toEqual({ ref: { slot: 'b', writerCounter: 7 }, write: true });
  });

  it('keeps the reference for the state known to be in its slot, drops it for no state, and moves an inline state into a slot', () => {
    expect(planState(lease('s0', 'w', { leaseCounter: 7, stateRef: ref }), 'same', { ref, state: 'same' })).toEqual({ ref, write: false });
    // Known for another write of the slot (or not known at all): written again.
    expect(planState(lease('s0', 'w', { leaseCounter: 7, stateRef: ref }), 'same', { ref: { slot: 'a', writerCounter: 2 }, state: 'same' }).write).toBe(true);
    expect(planState(lease('s0', 'w', { leaseCounter: 7, stateRef: ref }), undefined, { ref, state: 'same' })).toEqual({ ref: undefined, write: false });
    expect(planState(lease('s0', 'w', { leaseCounter: 7, checkpointState: 'inline' }), 'inline', undefined)).toEqual({ ref: { slot: 'a', writerCounter: 7 }, write: true });
    const moved = checkpointed(lease('s0', 'w', { checkpointState: 'inline' }), { sequenceNumber: '9', subSequenceNumber: 0 }, { slot: 'a', writerCounter: 1 });
    expect(moved.checkpointState).toBeUndefined();
  });

  it('lets a slot write land only on an empty slot or one written at an earlier counter', () => {
    expect([slotWriteAllowed(undefined, 0), slotWriteAllowed(3, 4), slotWriteAllowed(4, 4), slotWriteAllowed(5, 4)]).toEqual([true, true, false, false]);
  });
});

describe('shard discovery', () => {
  const shards = [
    { shardId: 'p', parentShardIds: [], closed: true },
    { shardId: 'c1', parentShardIds: ['p'], closed: false },
    { shardId: 'c2', parentShardIds: ['p'], closed: false },
  ];

  it('creates leases from the trim horizon with their parents', () => {
    const created = leasesToCreate(shards, [], TRIM_HORIZON);
    expect(created.map((l) => [l.leaseKey, l.checkpoint, l.parentShardIds])).toEqual([
      ['p', TRIM_HORIZON, []],
      ['c1', TRIM_HORIZON, ['p']],
      ['c2', TRIM_HORIZON, ['p']],
    ]);
  });

  it('with LATEST, skips closed shards and starts open ones at the tip', () => {
    const created = leasesToCreate(shards, [], LATEST);
    expect(created.map((l) => [l.leaseKey, l.checkpoint])).toEqual([
      ['p', SHARD_END],
      ['c1', LATEST],
      ['c2', LATEST],
    ]);
  });

  it('starts children of a shard already leased at the trim horizon even with LATEST', () => {
    const created = leasesToCreate(shards, [lease('p', 'a', { checkpoint: '17' })], LATEST);
    expect(created.map((l) => [l.leaseKey, l.checkpoint])).toEqual([
      ['c1', TRIM_HORIZON],
      ['c2', TRIM_HORIZON],
    ]);
  });

  it('deletes a finished lease once its shard is trimmed and its children have started', () => {
    const parent = lease('p', null, { checkpoint: SHARD_END });
    const waiting = lease('c1', null, { parentShardIds: ['p'] });
    const started = lease('c1', 'a', { parentShardIds: ['p'], checkpoint: '5' });
    expect(leasesToDelete([parent, waiting], new Set(['c1']))).toEqual([]);
    expect(leasesToDelete([parent, started], new Set(['p', 'c1']))).toEqual([]);
    expect(leasesToDelete([parent, started], new Set(['c1']))).toEqual([parent]);
  });
});

describe('taking leases', () => {
  const base = { observations: new Map(), heldByMe: new Set<string>(), now: 0, failoverMs: F };
  const stream = (n: number) => new Set(Array.from({ length: n }, (_, i) => `s${i}`));

  it('takes free leases up to an even share', () => {
    const leases = [lease('s0', null), lease('s1', null), lease('s2', 'b'), lease('s3', 'b')];
    const plan = planTakes({ ...base, workerId: 'a', leases, shardIdsInStream: stream(4) });
    expect(plan.target).toBe(2);
    expect(plan.take.map((l) => l.leaseKey)).toEqual(['s0', 's1']);
    expect(plan.steal).toBeUndefined();
  });

  it('steals one lease from an over-loaded worker when nothing is free', () => {
    const leases = [lease('s0', 'b'), lease('s1', 'b'), lease('s2', 'b'), lease('s3', 'b')];
    const plan = planTakes({ ...base, workerId: 'a', leases, shardIdsInStream: stream(4) });
    expect(plan.take).toEqual([]);
    expect(plan.steal?.leaseKey).toBe('s0');
  });

  it('does not steal once the split is even', () => {
    const leases = [lease('s0', 'a'), lease('s1', 'a'), lease('s2', 'b'), lease('s3', 'b')];
    const plan = planTakes({ ...base, workerId: 'a', heldByMe: new Set(['s0', 's1']), leases, shardIdsInStream: stream(4) });
    expect(plan).toEqual({ take: [], target: 2 });
  });

  it('never takes a child before its parents finished, nor a finished lease', () => {
    const leases = [lease('p', 'b', { checkpoint: '9' }), lease('c', null, { parentShardIds: ['p'] }), lease('done', null, { checkpoint: SHARD_END })];
    const plan = planTakes({ ...base, workerId: 'a', leases, shardIdsInStream: new Set(['p', 'c', 'done']) });
    expect(plan.take).toEqual([]);
    const finished = [{ ...leases[0]!, checkpoint: SHARD_END }, leases[1]!];
    expect(planTakes({ ...base, workerId: 'a', leases: finished, shardIdsInStream: new Set(['p', 'c']) }).take.map((l) => l.leaseKey)).toEqual(['c']);
  });
});
