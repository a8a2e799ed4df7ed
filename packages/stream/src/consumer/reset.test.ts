import { describe, expect, it } from '@jest/globals';
import { type Lease, SHARD_END } from './leases.js';
import { liveLeases, planReset } from './reset.js';

const lease = (leaseKey: string, over: Partial<Lease> = {}): Lease => ({ leaseKey, leaseOwner: 'w-1', leaseCounter: 7, checkpoint: '4953', checkpointSubSequence: 2, checkpointState: '{"hwm":1}', parentShardIds: [], ownerSwitchesSinceCheckpoint: 1, ...over });
const shards = [
  { shardId: 's-0', parentShardIds: [], closed: true },
  { shardId: 's-1', parentShardIds: ['s-0'], closed: false },
];

describe('planReset', () => {
  it('rewrites every lease conditionally, freed, without its state; creates missing ones; deletes those of shards gone', () => {
    const plan = planReset([lease('s-0', { checkpoint: SHARD_END }), lease('gone')], shards, { to: 'timestamp', at: new Date(1_700_000_000_000) });
    expect(plan.replace).toEqual([
      { next: { leaseKey: 's-0', leaseOwner: null, leaseCounter: 8, checkpoint: 'AT_TIMESTAMP:1700000000000', checkpointSubSequence: 0, parentShardIds: [], ownerSwitchesSinceCheckpoint: 0 }, expectedCounter: 7 },
    ]);
    expect(plan.create).toEqual([{ leaseKey: 's-1', leaseOwner: null, leaseCounter: 0, checkpoint: 'AT_TIMESTAMP:1700000000000', checkpointSubSequence: 0, parentShardIds: ['s-0'], ownerSwitchesSinceCheckpoint: 0 }]);
    expect(plan.delete).toEqual([{ leaseKey: 'gone', expectedCounter: 7 }]);
  });

  it('latest finishes closed shards (their children must not wait) and trim-horizon restarts all', () => {
    expect(planReset([], shards, { to: 'latest' }).create.map((l) => l.checkpoint)).toEqual([SHARD_END, 'LATEST']);
    expect(planReset([], shards, { to: 'trim-horizon' }).create.map((l) => l.checkpoint)).toEqual(['TRIM_HORIZON', 'TRIM_HORIZON']);
  });
});

describe('liveLeases', () => {
  it('is the owned leases renewed between the two reads', () => {
    const before = [lease('a'), lease('b'), lease('c', { leaseOwner: null })];
    const after = [lease('a', { leaseCounter: 9 }), lease('b'), lease('c', { leaseOwner: null, leaseCounter: 8 })];
    expect(liveLeases(before, after).map((l) => l.leaseKey)).toEqual(['a']);
  });
});
