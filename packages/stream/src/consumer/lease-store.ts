// The port through which the coordinator reads and writes one consumer's leases. Every write
// is conditional on the counter the caller read; a lost race answers false, never throws.
import type { Lease } from './leases.js';

export interface LeaseStore {
  /** All leases of this consumer, strongly consistent. */
  list(): Promise<Lease[]>;
  /** Creates the lease unless one with its key exists; false if it did. */
  create(lease: Lease): Promise<boolean>;
  /** Writes `next` if the stored counter is still `expectedCounter`; false otherwise. */
  replace(next: Lease, expectedCounter: number): Promise<boolean>;
  /** Deletes the lease if the stored counter is still `expectedCounter`; false otherwise. */
  delete(leaseKey: string, expectedCounter: number): Promise<boolean>;
}

/**
 * A LeaseStore in memory with DynamoDB's conditional-write semantics: for the property tests of
 * the lease protocol and for unit tests of processors. Not shared between processes.
 */
export class MemoryLeaseStore implements LeaseStore {
  readonly items = new Map<string, Lease>();

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
    return true;
  }
}
