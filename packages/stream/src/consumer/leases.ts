// The pure core of the consumer's lease protocol (KCL's design, docs/ARCHITECTURE.md "Consuming
// the stream"): which leases exist, when one is expired, which ones a worker takes, and how
// every change bumps `leaseCounter` so that all writes can be conditional on it. No I/O and no
// clocks here: time is passed in, so the protocol is testable under any schedule.

export const TRIM_HORIZON = 'TRIM_HORIZON';
export const LATEST = 'LATEST';
/** Checkpoint of a shard that has been read to its end: its children may start. */
export const SHARD_END = 'SHARD_END';
/**
 * `AT_TIMESTAMP:<epoch ms>`: not started, from the first record that arrived at or after that
 * instant (written by `taskflow consumers reset --to TIME`).
 */
export const AT_TIMESTAMP_PREFIX = 'AT_TIMESTAMP:';

/** The instant of an AT_TIMESTAMP checkpoint, or undefined for any other. */
export function atTimestampOf(checkpoint: string): Date | undefined {
  return checkpoint.startsWith(AT_TIMESTAMP_PREFIX) ? new Date(Number(checkpoint.slice(AT_TIMESTAMP_PREFIX.length))) : undefined;
}

export type InitialPosition = typeof TRIM_HORIZON | typeof LATEST;

/** One lease per (consumer, shard), as stored in DynamoDB. */
export interface Lease {
  /** The shard id. */
  leaseKey: string;
  /** Worker holding the lease, or null when free (released, or never taken). */
  leaseOwner: string | null;
  /** Incremented by every write; every write is conditional on the value it read. */
  leaseCounter: number;
  /** A sequence number, or TRIM_HORIZON / LATEST / AT_TIMESTAMP:<ms> (not started), or SHARD_END (finished). */
  checkpoint: string;
  /** Position inside an aggregated record; 0 for plain records. */
  checkpointSubSequence: number;
  /**
   * Where the opaque string the processor stores with its checkpoint lives: one of the lease's two
   * state slots (separate items, see `planState`), or absent when the processor keeps no state.
   */
  stateRef?: StateRef;
  /**
   * The state inline, as the previous version wrote it: read only when there is no `stateRef`,
   * carried by renewals, and moved into a slot by the next checkpoint (a rolling deploy).
   */
  checkpointState?: string;
  parentShardIds: string[];
  ownerSwitchesSinceCheckpoint: number;
}

export type StateSlot = 'a' | 'b';

/**
 * A lease's reference to its state: the slot, and the lease counter its writer held when it wrote
 * the slot (the slot item carries the same `writerCounter`, so a reader can tell that the slot
 * still holds the write the lease item refers to).
 */
export interface StateRef {
  slot: StateSlot;
  writerCounter: number;
}

export function sameRef(a: StateRef | undefined, b: StateRef | undefined): boolean {
  return a === undefined || b === undefined ? a === b : a.slot === b.slot && a.writerCounter === b.writerCounter;
}

/** What shard discovery (ListShards) tells about one shard. */
export interface ShardInfo {
  shardId: string;
  parentShardIds: string[];
  /** True once the shard has an ending sequence number (after a split or merge). */
  closed: boolean;
}

/** Where a processor's work on a shard stands. */
export interface Position {
  sequenceNumber: string;
  subSequenceNumber: number;
}

export function isFinished(lease: Lease): boolean {
  return lease.checkpoint === SHARD_END;
}

// ---------------------------------------------------------------------------------------------
// Writes: each returns the new item; the store writes it only if the counter is still `lease`'s.

export function takenBy(lease: Lease, workerId: string): Lease {
  const switched = lease.leaseOwner !== workerId;
  return {
    ...lease,
    leaseOwner: workerId,
    leaseCounter: lease.leaseCounter + 1,
    ownerSwitchesSinceCheckpoint: lease.ownerSwitchesSinceCheckpoint + (switched ? 1 : 0),
  };
}

export function renewed(lease: Lease): Lease {
  return { ...lease, leaseCounter: lease.leaseCounter + 1 };
}

/** The checkpoint's lease item: the position, and `stateRef` as `planState` chose it (never an inline state). */
export function checkpointed(lease: Lease, position: Position | typeof SHARD_END, stateRef: StateRef | undefined): Lease {
  const next: Lease = {
    ...lease,
    leaseCounter: lease.leaseCounter + 1,
    checkpoint: position === SHARD_END ? SHARD_END : position.sequenceNumber,
    checkpointSubSequence: position === SHARD_END ? 0 : position.subSequenceNumber,
    ownerSwitchesSinceCheckpoint: 0,
  };
  delete next.checkpointState;
  if (stateRef === undefined) delete next.stateRef;
  else next.stateRef = stateRef;
  return next;
}

// ---------------------------------------------------------------------------------------------
// Checkpoint states. A state (the router's and audit's marks: tens of KB) is not in the lease item,
// which every renewal rewrites and every lease list reads, but in one of two slot items of the
// lease. A checkpoint with a new state (1) writes it into the slot the holder's lease item does
// NOT reference, as `writerCounter` = the holder's counter, conditional on the slot's stored
// writerCounter being absent or less than that; then (2) writes the lease item as ever
// (conditional on the counter) referencing the slot. If (2) fails, the slot written in (1) is
// referenced by nobody, and harmless.
//
// Why a stale holder never corrupts the referenced slot: say the item at counter n references
// slot S, last written with writerCounter m. That write went with the lease write m → m+1 that
// set the reference, and every version of the item from m+1 to n references S (the reference only
// moves with a slot write, and moving back to S would have written S again, with a later counter).
// A holder at counter c (the counter of the item as it last wrote it, so c ≤ n) writes S only if
// its own view does not reference S, and the slot's condition lets it only if m < c. Then
// m+1 ≤ c ≤ n, and the item at c, its own view, references S: a contradiction. So a slot write
// that succeeds never hits the slot a current item references, and one refused means a later
// counter than the writer's exists (its lease is lost). Counters grow by one per write of a lease
// key and are never reused (leases are deleted only once finished and their shard gone).

/**
 * How a checkpoint stores `state`: `ref` is what the lease item will reference, and `write` says
 * whether `state` must first be written into `ref`'s slot. `stored` is the state known to be in the
 * slot the lease references now (read when the lease was taken, or written since), if known. An
 * unchanged state writes no slot; an inline state of the previous version moves into a slot.
 */
export function planState(lease: Lease, state: string | undefined, stored: { ref: StateRef; state: string } | undefined): { ref: StateRef | undefined; write: boolean } {
  if (state === undefined) return { ref: undefined, write: false };
  if (lease.stateRef && stored && sameRef(stored.ref, lease.stateRef) && stored.state === state) return { ref: lease.stateRef, write: false };
  return { ref: { slot: lease.stateRef?.slot === 'a' ? 'b' : 'a', writerCounter: lease.leaseCounter }, write: true };
}

/**
 * Whether a slot write may land (the store's condition, pure for the in-memory store): the slot is
 * empty, or its last write was by a holder at an earlier counter.
 */
export function slotWriteAllowed(storedWriterCounter: number | undefined, writerCounter: number): boolean {
  return storedWriterCounter === undefined || storedWriterCounter < writerCounter;
}

export function released(lease: Lease): Lease {
  return { ...lease, leaseOwner: null, leaseCounter: lease.leaseCounter + 1 };
}

// ---------------------------------------------------------------------------------------------
// Expiry. Like KCL, a worker never compares its clock with another's: a lease is expired when
// *this* worker has seen its counter stay the same for the failover time (or it has no owner).

export interface Observation {
  counter: number;
  /** Local time at which this worker first saw `counter`. */
  since: number;
}

export type Observations = ReadonlyMap<string, Observation>;

/** Updates what this worker has seen of each lease's counter after a fresh read of the table. */
export function observe(previous: Observations, leases: readonly Lease[], now: number): Map<string, Observation> {
  const next = new Map<string, Observation>();
  for (const lease of leases) {
    const seen = previous.get(lease.leaseKey);
    next.set(lease.leaseKey, seen && seen.counter === lease.leaseCounter ? seen : { counter: lease.leaseCounter, since: now });
  }
  return next;
}

export function isExpired(lease: Lease, observations: Observations, now: number, failoverMs: number): boolean {
  if (lease.leaseOwner === null) return true;
  const seen = observations.get(lease.leaseKey);
  return seen !== undefined && seen.counter === lease.leaseCounter && now - seen.since >= failoverMs;
}

/**
 * A worker may keep using a lease only while its last successful write (timed from *before* the
 * request was sent) is younger than the failover time: another worker waits at least that long
 * after it last saw the counter change, so the two never both believe they hold it — unless
 * the lease is stolen for balancing, when the old holder learns it at its next renewal.
 */
export function stillHeld(lastWriteSentAt: number, now: number, failoverMs: number): boolean {
  return now - lastWriteSentAt < failoverMs;
}

// ---------------------------------------------------------------------------------------------
// Shard discovery → leases.

/**
 * Parents are done when each has a SHARD_END checkpoint, or has no lease and is no longer in
 * the stream (trimmed away after retention, its lease cleaned up).
 */
export function parentsFinished(lease: Lease, leasesByKey: ReadonlyMap<string, Lease>, shardIdsInStream: ReadonlySet<string>): boolean {
  return lease.parentShardIds.every((parentId) => {
    const parent = leasesByKey.get(parentId);
    return parent ? isFinished(parent) : !shardIdsInStream.has(parentId);
  });
}

/**
 * Leases to create for shards that have none. A shard whose parent already has (or gets) a
 * lease starts at TRIM_HORIZON so nothing written after a reshard is skipped; the others follow
 * `initialPosition`. With LATEST a closed shard is created finished: nothing in it is wanted,
 * and its children must not wait for it.
 */
export function leasesToCreate(shards: readonly ShardInfo[], existing: readonly Lease[], initialPosition: InitialPosition): Lease[] {
  const hasLease = new Set(existing.map((l) => l.leaseKey));
  const byId = new Map(shards.map((s) => [s.shardId, s]));
  const created = new Map<string, Lease>();

  // A shard follows `initialPosition` unless some ancestor chain reaches a lease that existed
  // before this discovery (then the consumer was already running when the shard appeared).
  const descendsFromExisting = new Map<string, boolean>();
  const fromExisting = (shardId: string, depth: number): boolean => {
    const known = descendsFromExisting.get(shardId);
    if (known !== undefined) return known;
    const shard = byId.get(shardId);
    const result =
      depth < 10_000 && shard !== undefined && shard.parentShardIds.some((p) => hasLease.has(p) || fromExisting(p, depth + 1));
    descendsFromExisting.set(shardId, result);
    return result;
  };

  for (const shard of shards) {
    if (hasLease.has(shard.shardId)) continue;
    let checkpoint: string = TRIM_HORIZON;
    if (initialPosition === LATEST && !fromExisting(shard.shardId, 0)) checkpoint = shard.closed ? SHARD_END : LATEST;
    created.set(shard.shardId, {
      leaseKey: shard.shardId,
      leaseOwner: null,
      leaseCounter: 0,
      checkpoint,
      checkpointSubSequence: 0,
      parentShardIds: [...shard.parentShardIds],
      ownerSwitchesSinceCheckpoint: 0,
    });
  }
  return [...created.values()];
}

/**
 * Finished leases whose shard has left the stream and whose children have all started (or are
 * gone too) are garbage: deleting them keeps the table to the live shards plus recent history.
 */
export function leasesToDelete(leases: readonly Lease[], shardIdsInStream: ReadonlySet<string>): Lease[] {
  const startedOrGone = (l: Lease) => l.checkpoint !== TRIM_HORIZON && l.checkpoint !== LATEST && atTimestampOf(l.checkpoint) === undefined;
  return leases.filter(
    (lease) =>
      isFinished(lease) &&
      !shardIdsInStream.has(lease.leaseKey) &&
      leases.filter((child) => child.parentShardIds.includes(lease.leaseKey)).every(startedOrGone),
  );
}

// ---------------------------------------------------------------------------------------------
// Which leases to take (KCL's LeaseTaker): fill up to an even share from expired or free
// leases; only when there are none, steal one lease from the most loaded worker.

export interface TakePlanInput {
  workerId: string;
  leases: readonly Lease[];
  observations: Observations;
  /** Leases this worker holds right now (renewed within the failover time). */
  heldByMe: ReadonlySet<string>;
  shardIdsInStream: ReadonlySet<string>;
  now: number;
  failoverMs: number;
  /** Upper bound on leases taken in one cycle (spreads a cold start across workers). */
  maxTakesPerCycle?: number;
}

export interface TakePlan {
  /**
   * Leases to take, as last read (their counter is the write condition): first this worker's
   * own leftovers (see `leftoversOf`), then expired or free ones up to the target.
   */
  take: Lease[];
  /** A lease of a live, over-loaded worker to steal, if balancing needs it. */
  steal?: Lease;
  /** An even share: ceil(workable leases / live workers). */
  target: number;
}

/** Leases someone could work on now: not finished, and their parents are. */
export function workableLeases(leases: readonly Lease[], shardIdsInStream: ReadonlySet<string>): Lease[] {
  const byKey = new Map(leases.map((l) => [l.leaseKey, l]));
  return leases.filter((l) => !isFinished(l) && parentsFinished(l, byKey, shardIdsInStream));
}

/**
 * Workable leases the table says this worker owns but this process does not hold: what a
 * previous incarnation of the same worker left when it died (a restart that keeps its id, as a
 * Kubernetes StatefulSet pod keeps its name), or leases this process let lapse while paused.
 * Worker ids are unique among live processes, so nobody else is working on them: they are taken
 * back at once instead of after the failover time. The write is still conditional on the
 * counter read, so an incarnation that somehow lives on fails its next write (the fence).
 */
export function leftoversOf(workerId: string, workable: readonly Lease[], heldByMe: ReadonlySet<string>): Lease[] {
  return workable.filter((l) => l.leaseOwner === workerId && !heldByMe.has(l.leaseKey));
}

export function planTakes(input: TakePlanInput): TakePlan {
  const { workerId, observations, heldByMe, now, failoverMs } = input;
  const workable = workableLeases(input.leases, input.shardIdsInStream);
  const expired = (l: Lease) => isExpired(l, observations, now, failoverMs);
  const leftovers = leftoversOf(workerId, workable, heldByMe);

  // Live workers: owners of leases that are not expired, plus this one (with its leftovers).
  const loadByWorker = new Map<string, Lease[]>();
  loadByWorker.set(workerId, []);
  for (const lease of workable) {
    if (lease.leaseOwner === null || (expired(lease) && lease.leaseOwner !== workerId)) continue;
    const owner = heldByMe.has(lease.leaseKey) ? workerId : lease.leaseOwner;
    loadByWorker.set(owner, [...(loadByWorker.get(owner) ?? []), lease]);
  }
  const target = Math.ceil(workable.length / loadByWorker.size);
  const mine = workable.filter((l) => heldByMe.has(l.leaseKey)).length + leftovers.length;
  // Leftovers are all taken back, whatever the target or cap: balancing moves the excess later.
  const needed = Math.min(target - mine, input.maxTakesPerCycle ?? Number.POSITIVE_INFINITY);
  if (needed <= 0) return { take: leftovers, target };

  // Free leases first (released or new), then expired ones, oldest shard ids first for a
  // stable order; a lease another worker wins meanwhile just fails its conditional write.
  const available = workable
    .filter((l) => !heldByMe.has(l.leaseKey) && l.leaseOwner !== workerId && expired(l))
    .sort((a, b) => Number(a.leaseOwner !== null) - Number(b.leaseOwner !== null) || a.leaseKey.localeCompare(b.leaseKey));
  if (available.length > 0 || leftovers.length > 0) return { take: [...leftovers, ...available.slice(0, needed)], target };

  // Steal one lease from the most loaded other worker if it holds more than its share, or
  // exactly its share while this worker is more than one below (KCL's rule; avoids ping-pong).
  let richest: { worker: string; leases: Lease[] } | undefined;
  for (const [worker, leases] of loadByWorker) {
    if (worker === workerId) continue;
    if (!richest || leases.length > richest.leases.length || (leases.length === richest.leases.length && worker < richest.worker)) {
      richest = { worker, leases };
    }
  }
  if (!richest) return { take: [], target };
  const count = richest.leases.length;
  if (count > target || (count === target && target - mine > 1)) {
    const victim = [...richest.leases].sort((a, b) => a.leaseKey.localeCompare(b.leaseKey))[0];
    if (victim) return { take: [], steal: victim, target };
  }
  return { take: [], target };
}
