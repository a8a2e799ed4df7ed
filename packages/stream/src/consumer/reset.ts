// Operator changes to one consumer's leases (`taskflow consumers reset`), pure: where every shard
// starts again, and whether the consumer is running. Each write is conditional on the counter
// read, like the coordinator's, so a live worker that still holds a lease loses it at its next
// renewal (its checkpoints fail) and whoever takes it next starts from the new position.
import { AT_TIMESTAMP_PREFIX, type Lease, LATEST, SHARD_END, type ShardInfo, TRIM_HORIZON } from './leases.js';

export type ResetTarget = { to: 'trim-horizon' } | { to: 'latest' } | { to: 'timestamp'; at: Date };

export interface ResetPlan {
  /** Existing leases rewritten (write each only if its counter is still `expectedCounter`). */
  replace: { next: Lease; expectedCounter: number }[];
  /** Shards without a lease yet. */
  create: Lease[];
  /** Leases of shards no longer in the stream. */
  delete: { leaseKey: string; expectedCounter: number }[];
}

function startAt(target: ResetTarget, shard: ShardInfo): string {
  switch (target.to) {
    case 'trim-horizon':
      return TRIM_HORIZON;
    case 'latest':
      // Nothing of a closed shard is wanted, and its children must not wait for it.
      return shard.closed ? SHARD_END : LATEST;
    case 'timestamp':
      return `${AT_TIMESTAMP_PREFIX}${target.at.getTime()}`;
  }
}

/**
 * Every shard of the stream starts at the target; the processors' checkpoint states are dropped
 * (they describe the old position: the router's high-water marks would drop every replayed event).
 */
export function planReset(leases: readonly Lease[], shards: readonly ShardInfo[], target: ResetTarget): ResetPlan {
  const byKey = new Map(leases.map((l) => [l.leaseKey, l]));
  const inStream = new Set(shards.map((s) => s.shardId));
  const plan: ResetPlan = { replace: [], create: [], delete: [] };
  for (const shard of shards) {
    const fresh: Lease = { leaseKey: shard.shardId, leaseOwner: null, leaseCounter: 0, checkpoint: startAt(target, shard), checkpointSubSequence: 0, parentShardIds: [...shard.parentShardIds], ownerSwitchesSinceCheckpoint: 0 };
    const existing = byKey.get(shard.shardId);
    if (existing) plan.replace.push({ next: { ...fresh, leaseCounter: existing.leaseCounter + 1 }, expectedCounter: existing.leaseCounter });
    else plan.create.push(fresh);
  }
  for (const l of leases) if (!inStream.has(l.leaseKey)) plan.delete.push({ leaseKey: l.leaseKey, expectedCounter: l.leaseCounter });
  return plan;
}

/**
 * The leases some worker holds (pure): owned, and renewed between two reads taken a failover time
 * apart (an owned lease whose counter did not move is a dead worker's, as the coordinator judges).
 */
export function liveLeases(before: readonly Lease[], after: readonly Lease[]): Lease[] {
  const earlier = new Map(before.map((l) => [l.leaseKey, l.leaseCounter]));
  return after.filter((l) => l.leaseOwner !== null && earlier.get(l.leaseKey) !== l.leaseCounter);
}
