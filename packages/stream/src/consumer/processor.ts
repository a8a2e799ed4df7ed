// What a consumer's user writes: a ShardProcessor per shard lease, fed user records in order.
import type { TaskflowError } from '../../../../lib/errors.js';
import type { Position } from './leases.js';

/** One user record: a plain record, or one of the records inside an aggregated one. */
export interface UserRecord {
  shardId: string;
  sequenceNumber: string;
  /** Index inside an aggregated Kinesis record; 0 for a plain one. */
  subSequenceNumber: number;
  partitionKey: string;
  /** The envelope's JSON bytes (after gunzip and de-aggregation). */
  data: Uint8Array;
  approximateArrivalTimestamp?: Date;
  /**
   * Set when the Kinesis record could not be decoded (not one of the contract's forms); `data`
   * then holds the record's raw bytes so the processor can dead-letter it and go on.
   */
  decodeError?: TaskflowError;
}

export interface ProcessBatch {
  records: UserRecord[];
  /** How far the read is behind the tip of the shard (Kinesis' MillisBehindLatest). */
  millisBehindLatest: number;
}

export interface Checkpointer {
  /**
   * Stores `position` (default: the last record of the latest batch) and `state` (default: the
   * state stored last) in the lease (the state in a slot item beside the lease item, written only
   * when it changed: leases.ts planState). A later takeover resumes after that position and hands
   * `state` to the next processor. Rejects with LeaseLostError when another worker has taken
   * the lease: stop working on the shard then. Within the consumer's checkpoint interval it
   * resolves at once and the write waits (replaced by any later checkpoint) until the interval
   * has passed or the lease is released: a crash meanwhile re-reads from the last one written.
   */
  checkpoint(position?: Position, state?: string): Promise<void>;
}

export type ShutdownReason = 'shard_end' | 'lease_lost' | 'shutdown';

export interface ShardInit {
  shardId: string;
  /** Where the previous holder stopped, if anyone checkpointed this shard before. */
  checkpoint?: Position & { state?: string };
  /** Final states of the parent shards (after a reshard), for a child that starts fresh. */
  parentStates: { shardId: string; state?: string }[];
}

export interface ShardProcessor {
  initialize(init: ShardInit): Promise<void>;
  /** Throwing retries the same batch after a backoff; processing is at-least-once. */
  processRecords(batch: ProcessBatch, checkpointer: Checkpointer): Promise<void>;
  /**
   * 'shard_end': the shard is read to its end; checkpoint now if the state changed (the
   * consumer then marks the lease finished with the last state). 'shutdown': the consumer is
   * stopping gracefully; checkpoint now, the lease is released after. 'lease_lost': another
   * worker has the shard; no checkpointer.
   */
  shutdown(reason: ShutdownReason, checkpointer?: Checkpointer): Promise<void>;
}
