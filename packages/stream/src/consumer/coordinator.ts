// One worker's side of the lease protocol: drives the pure rules in leases.ts against a
// LeaseStore. It owns no timers (the consumer calls renew/take/sync on its schedule, tests call
// them step by step with a manual clock), and it serializes the writes to each lease so that a
// renewal and a checkpoint of the same lease never race each other's counter.
import { TaskflowError } from '../../../../lib/errors.js';
import { type LeaseStore, stateOf } from './lease-store.js';
import {
  type InitialPosition,
  type Lease,
  type Observation,
  type Position,
  type ShardInfo,
  SHARD_END,
  type StateRef,
  checkpointed,
  leasesToCreate,
  leasesToDelete,
  observe,
  planState,
  planTakes,
  released,
  renewed,
  stillHeld,
  takenBy,
} from './leases.js';

export class LeaseLostError extends TaskflowError {
  constructor(shardId: string) {
    super('LEASE_LOST', `lease on ${shardId} is no longer held by this worker`, { details: { shardId } });
    this.name = 'LeaseLostError';
  }
}

interface HeldLease {
  /** The item as this worker last wrote it (its counter is the next write's condition). */
  lease: Lease;
  /** Local time just before the last successful write was sent. */
  lastWriteSentAt: number;
}

export interface CoordinatorOptions {
  workerId: string;
  store: LeaseStore;
  failoverMs: number;
  initialPosition: InitialPosition;
  now?: () => number;
  maxTakesPerCycle?: number;
}

export interface TakeResult {
  acquired: Lease[];
  /** Of `acquired`, those taken from another worker (expired or stolen). */
  takeovers: number;
}

export class LeaseCoordinator {
  readonly workerId: string;
  private readonly store: LeaseStore;
  private readonly failoverMs: number;
  private readonly initialPosition: InitialPosition;
  private readonly now: () => number;
  private readonly maxTakesPerCycle: number | undefined;
  private readonly held = new Map<string, HeldLease>();
  /** Per held lease, the state known to be in the slot it references (read at the take, or written since). */
  private readonly storedStates = new Map<string, { ref: StateRef; state: string }>();
  private readonly writeChains = new Map<string, Promise<unknown>>();
  private observations: Map<string, Observation> = new Map();
  private lastLeases: Lease[] = [];
  private shardIdsInStream: ReadonlySet<string> | undefined;
  private taking = false;

  constructor(opts: CoordinatorOptions) {
    this.workerId = opts.workerId;
    this.store = opts.store;
    this.failoverMs = opts.failoverMs;
    this.initialPosition = opts.initialPosition;
    this.now = opts.now ?? Date.now;
    this.maxTakesPerCycle = opts.maxTakesPerCycle;
  }

  /** Creates leases for new shards and deletes finished leases of trimmed shards. */
  async syncShards(shards: readonly ShardInfo[]): Promise<{ created: number; deleted: number }> {
    this.shardIdsInStream = new Set(shards.map((s) => s.shardId));
    const leases = await this.store.list();
    let created = 0;
    for (const lease of leasesToCreate(shards, leases, this.initialPosition)) {
      if (await this.store.create(lease)) created += 1;
    }
    let deleted = 0;
    for (const lease of leasesToDelete(leases, this.shardIdsInStream)) {
      if (await this.store.delete(lease.leaseKey, lease.leaseCounter)) deleted += 1;
    }
    return { created, deleted };
  }

  /** Reads the table and takes (or steals) leases up to this worker's share. */
  async takeLeases(): Promise<TakeResult> {
    if (this.taking) return { acquired: [], takeovers: 0 }; // one cycle at a time
    this.taking = true;
    try {
      return await this.takeCycle();
    } finally {
      this.taking = false;
    }
  }

  private async takeCycle(): Promise<TakeResult> {
    const leases = await this.store.list();
    const now = this.now();
    this.observations = observe(this.observations, leases, now);
    this.lastLeases = leases;
    const plan = planTakes({
      workerId: this.workerId,
      leases,
      observations: this.observations,
      heldByMe: new Set(this.heldKeys()),
      // Before the first shard sync, only parents with leases count as known.
      shardIdsInStream: this.shardIdsInStream ?? new Set(leases.map((l) => l.leaseKey)),
      now,
      failoverMs: this.failoverMs,
      ...(this.maxTakesPerCycle === undefined ? {} : { maxTakesPerCycle: this.maxTakesPerCycle }),
    });
    const result: TakeResult = { acquired: [], takeovers: 0 };
    for (const lease of plan.steal ? [...plan.take, plan.steal] : plan.take) {
      const next = takenBy(lease, this.workerId);
      const sentAt = this.now();
      if (!(await this.store.replace(next, lease.leaseCounter))) continue;
      this.held.set(lease.leaseKey, { lease: next, lastWriteSentAt: sentAt });
      result.acquired.push(next);
      if (lease.leaseOwner !== null && lease.leaseOwner !== this.workerId) result.takeovers += 1;
    }
    return result;
  }

  /**
   * Renews every held lease, also one that lapsed by time since the last renewal (this process
   * was too slow, e.g. starved of CPU): the write is conditional on the counter this worker last
   * wrote, so it succeeds only if nobody took the lease meanwhile. Returns the shard ids whose
   * lease another worker has taken.
   */
  async renewLeases(): Promise<string[]> {
    const lost: string[] = [];
    await Promise.all([...this.held.keys()].map(async (key) => (await this.renew(key)) === 'lost' && lost.push(key)));
    return lost;
  }

  /**
   * True while this worker may act on the shard. A lease that lapsed by time only is renewed
   * first (see renewLeases), so a slow renewal costs the shard a wait, not a restart from its
   * checkpoint and a takeover by this same worker.
   */
  async confirm(shardId: string): Promise<boolean> {
    if (this.holds(shardId)) return true;
    if (!this.held.has(shardId)) return false;
    await this.renew(shardId);
    return this.holds(shardId);
  }

  private renew(key: string): Promise<'renewed' | 'lost' | 'unknown'> {
    return this.serialized(key, async () => {
      const entry = this.held.get(key);
      if (!entry) return 'lost';
      const next = renewed(entry.lease);
      const sentAt = this.now();
      let ok: boolean;
      try {
        ok = await this.store.replace(next, entry.lease.leaseCounter);
      } catch {
        return 'unknown'; // a failed call proves nothing; the lease lapses by time if this goes on
      }
      if (ok) {
        this.held.set(key, { lease: next, lastWriteSentAt: sentAt });
        return 'renewed';
      }
      this.drop(key);
      return 'lost';
    });
  }

  /** True while this worker may act on the shard. */
  holds(shardId: string): boolean {
    const entry = this.held.get(shardId);
    return entry !== undefined && stillHeld(entry.lastWriteSentAt, this.now(), this.failoverMs);
  }

  /**
   * False once the lease is gone for good: another worker took it (a write's condition failed),
   * or it was released or finished. A lease that only lapsed by time is not gone yet.
   */
  claims(shardId: string): boolean {
    return this.held.has(shardId);
  }

  /** Shard ids this worker holds now. */
  heldKeys(): string[] {
    return [...this.held.keys()].filter((k) => this.holds(k));
  }

  heldLease(shardId: string): Lease | undefined {
    return this.holds(shardId) ? this.held.get(shardId)?.lease : undefined;
  }

  /** The parents' leases as last read: their final checkpoint states seed a child's processor. */
  parentLeases(shardId: string): Lease[] {
    const lease = this.held.get(shardId)?.lease;
    if (!lease) return [];
    return this.lastLeases.filter((l) => lease.parentShardIds.includes(l.leaseKey));
  }

  /**
   * The checkpoint state of a held lease, read from its slot (or the previous version's inline
   * state) when the processor is initialized. Throws LeaseLostError if the slot no longer holds
   * the write the lease refers to: only a holder at a later counter can have written it.
   */
  async checkpointState(shardId: string): Promise<string | undefined> {
    const lease = this.held.get(shardId)?.lease;
    if (!lease) throw new LeaseLostError(shardId);
    const { found, state } = await stateOf(this.store, lease);
    if (!found) throw new LeaseLostError(shardId);
    // A (slot, writerCounter) pair names one write (a second one at the same counter is refused), so this stays true while the lease references it.
    if (lease.stateRef && state !== undefined) this.storedStates.set(shardId, { ref: lease.stateRef, state });
    return state;
  }

  /** The final checkpoint states of the parents (as last read), for a child that starts after a reshard. */
  async parentStates(shardId: string): Promise<{ shardId: string; state?: string }[]> {
    return Promise.all(
      this.parentLeases(shardId).map(async (parent) => {
        const { found, state } = await stateOf(this.store, parent);
        // A finished parent's item is not written again (but by `consumers reset`): read the table anew.
        if (!found) throw new TaskflowError('STATE_MOVED', `the checkpoint state of ${parent.leaseKey} changed while ${shardId} started`, { details: { shardId, parent: parent.leaseKey } });
        return { shardId: parent.leaseKey, ...(state === undefined ? {} : { state }) };
      }),
    );
  }

  /** Conditional checkpoint (a new state first into a slot, see leases.ts planState); throws LeaseLostError if the lease is gone. */
  async checkpoint(shardId: string, position: Position, state: string | undefined): Promise<void> {
    await this.write(shardId, (lease, ref) => checkpointed(lease, position, ref), 'keep', state);
  }

  /** Marks the shard read to its end (children may start) and frees the lease. */
  async finish(shardId: string, state: string | undefined): Promise<void> {
    await this.write(shardId, (lease, ref) => ({ ...checkpointed(lease, SHARD_END, ref), leaseOwner: null }), 'drop', state);
  }

  /** Frees the lease so another worker can take it without waiting for the failover time. */
  async release(shardId: string): Promise<void> {
    try {
      await this.write(shardId, released, 'drop');
    } catch (err) {
      if (!(err instanceof LeaseLostError)) throw err;
    } finally {
      this.drop(shardId);
    }
  }

  /** Forgets every lease without writing (a crash, or a process about to exit anyway). */
  abandon(): void {
    this.held.clear();
    this.storedStates.clear();
  }

  private drop(shardId: string): void {
    this.held.delete(shardId);
    this.storedStates.delete(shardId);
  }

  /**
   * One conditional write; `drop` gives the lease up in the same step, before any queued write.
   * With `state` (a checkpoint), a changed state is written into the free slot first: a refused
   * slot write means a holder at a later counter exists, so the lease is lost.
   */
  private async write(shardId: string, change: (lease: Lease, stateRef: StateRef | undefined) => Lease, after: 'keep' | 'drop' = 'keep', state?: string): Promise<void> {
    await this.serialized(shardId, async () => {
      const entry = this.held.get(shardId);
      // A lapsed lease may still be written: the condition on the counter proves nobody took it.
      if (!entry) throw new LeaseLostError(shardId);
      if (entry.lease.checkpoint === SHARD_END) throw new TaskflowError('SHARD_FINISHED', `${shardId} is already finished`);
      const plan = planState(entry.lease, state, this.storedStates.get(shardId));
      const slotWrite = plan.write && plan.ref && state !== undefined ? { ref: plan.ref, state } : undefined;
      if (slotWrite && !(await this.store.writeState(shardId, slotWrite.ref, slotWrite.state))) {
        this.drop(shardId);
        throw new LeaseLostError(shardId);
      }
      const next = change(entry.lease, plan.ref);
      const sentAt = this.now();
      if (!(await this.store.replace(next, entry.lease.leaseCounter))) {
        this.drop(shardId);
        throw new LeaseLostError(shardId);
      }
      if (after === 'drop') return this.drop(shardId);
      this.held.set(shardId, { lease: next, lastWriteSentAt: sentAt });
      if (slotWrite) this.storedStates.set(shardId, slotWrite);
    });
  }

  private serialized<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.writeChains.get(key) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.writeChains.set(key, tail);
    void tail.then(() => {
      if (this.writeChains.get(key) === tail) this.writeChains.delete(key);
    });
    return run;
  }
}
