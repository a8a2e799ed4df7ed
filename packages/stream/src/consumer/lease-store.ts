// The port through which the coordinator reads and writes one consumer's leases. Every write
// is conditional on the counter the caller read; a lost race answers false, never throws.
import { type Lease, type StateRef, slotWriteAllowed } from './leases.js';

export interface LeaseStore {
  /** All leases of this consumer, strongly consistent: the lease items only, without their states' slots. */
  list(): Promise<Lease[]>;
  /** Creates the lease unless one with its key exists; false if it did. */
  create(lease: Lease): Promise<boolean>;
  /** Writes `next` if the stored counter is still `expectedCounter`; false otherwise. */
  replace(next: Lease, expectedCounter: number): Promise<boolean>;
  /** Deletes the lease (and its state slots) if the stored counter is still `expectedCounter`; false otherwise. */
  delete(leaseKey: string, expectedCounter: number): Promise<boolean>;
  /**
   * Writes `state` into the lease's slot `ref.slot` with `ref.writerCounter`, unless the slot holds
   * a write of the same or a later counter (leases.ts slotWriteAllowed); false then.
   */
  writeState(leaseKey: string, ref: StateRef, state: string): Promise<boolean>;
  /**
   * The state in slot `ref.slot`, strongly consistent, if the slot still holds the write `ref`
   * names (its writerCounter); undefined when it does not (the reference is outdated) or is empty.
   */
  readState(leaseKey: string, ref: StateRef): Promise<string | undefined>;
}

/**
 * The checkpoint state a lease item refers to: its slot's, or the previous version's inline one.
 * `found` is false when the lease references a slot that no longer holds that write (the lease was
 * written again since it was read).
 */
export async function stateOf(store: LeaseStore, lease: Lease): Promise<{ found: boolean; state?: string }> {
  if (!lease.stateRef) return lease.checkpointState === undefined ? { found: true } : { found: true, state: lease.checkpointState };
  const state = await store.readState(lease.leaseKey, lease.stateRef);
  return state === undefined ? { found: false } : { found: true, state };
}

/**
 * A LeaseStore in memory with DynamoDB's conditional-write semantics, the slots' fence included:
 * for the property tests of the lease protocol and for unit tests of processors. Not shared
 * between processes.
 */
export class MemoryLeaseStore implements LeaseStore {
  readonly items = new Map<string, Lease>();
  /** State slots by `${leaseKey}#${slot}`. */
  readonly slots = new Map<string, { writerCounter: number; state: string }>();

  async list(): Promise<Lease[]> {
    return [...this.items.values()].map((l) => structuredClone(l));
  }

  async create(lease: Lease): Promise<boolean> {
    if (this.items.has(lease.leaseKey)) return false;
    this.items.set(lease.leaseKey, structuredClone(lease));
    return true;
  }

  async replace(next: Lease, expectedCounter: number): Promise<boolean> {
    const current = this.items.get(next.leaseKey);
    if (!current || current.leaseCounter !== expectedCounter) return false;
    this.items.set(next.leaseKey, structuredClone(next));
    return true;
  }

  async delete(leaseKey: string, expectedCounter: number): Promise<boolean> {
    const current = this.items.get(leaseKey);
    if (!current || current.leaseCounter !== expectedCounter) return false;
    this.items.delete(leaseKey);
    this.slots.delete(`${leaseKey}#a`);
    this.slots.delete(`${leaseKey}#b`);
    return true;
  }

  async writeState(leaseKey: string, ref: StateRef, state: string): Promise<boolean> {
    const key = `${leaseKey}#${ref.slot}`;
    if (!slotWriteAllowed(this.slots.get(key)?.writerCounter, ref.writerCounter)) return false;
    this.slots.set(key, { writerCounter: ref.writerCounter, state });
    return true;
  }

  async readState(leaseKey: string, ref: StateRef): Promise<string | undefined> {
    return this.slotState(leaseKey, ref);
  }

  /** The state the stored lease item refers to (tests): its slot's, or its inline one. */
  stateOf(leaseKey: string): string | undefined {
    const lease = this.items.get(leaseKey);
    return lease?.stateRef ? this.slotState(leaseKey, lease.stateRef) : lease?.checkpointState;
  }

  private slotState(leaseKey: string, ref: StateRef): string | undefined {
    const slot = this.slots.get(`${leaseKey}#${ref.slot}`);
    return slot && slot.writerCounter === ref.writerCounter ? slot.state : undefined;
  }
}
