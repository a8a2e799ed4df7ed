// One held lease at work: initialize the processor from the checkpoint, read the shard, hand
// over user records in order, and end in one of three ways — shard end (mark finished so the
// children may start), lease lost (stop at once), or stop (checkpoint, then release).
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { type BackoffPolicy, DEFAULT_BACKOFF, sleep } from '../../../../lib/backoff.js';
import type { Logger } from '../../../../lib/logger.js';
import { retry } from '../../../../lib/retry.js';
import { LeaseLostError, type LeaseCoordinator } from './coordinator.js';
import { atTimestampOf, LATEST, type Position, TRIM_HORIZON } from './leases.js';
import type { ConsumerMetrics } from './metrics.js';
import type { Checkpointer, ShardProcessor, ShutdownReason } from './processor.js';
import type { ShardReader, StartingPosition } from './shard-reader.js';
import { comparePositions, recordsAfter, toUserRecords } from './user-records.js';

export type StopMode = 'graceful' | 'abandon';

/** While a lease has lapsed by time only (renewals too slow), how often to try again. */
const LAPSED_RETRY_MS = 100;

/**
 * User records per processRecords call at most. A read after a restart is a backlog (up to
 * 10,000 Kinesis records, each aggregating dozens): handed over whole, the processor's
 * synchronous decoding held the event loop for seconds on a loaded host, lease renewals lapsed,
 * and a batch was once read twice. Slices of it go in order, each checkpointable at its end, with
 * the event loop turned and the lease confirmed between them.
 */
export const MAX_RECORDS_PER_CALL = 500;

export interface ShardWorkerDeps {
  shardId: string;
  coordinator: LeaseCoordinator;
  reader: ShardReader;
  processor: ShardProcessor;
  metrics: ConsumerMetrics;
  logger: Logger;
  backoff?: BackoffPolicy;
  /** Uniform in [0, 1) for the backoff's jitter: injectable so tests are deterministic. */
  random?: () => number;
  /** Called once the shard is finished, so the consumer can look for its children at once. */
  onShardEnd: (shardId: string) => void;
  /** MAX_RECORDS_PER_CALL unless given (tests). */
  maxRecordsPerCall?: number;
  /**
   * Least time between two checkpoint writes (KINESIS_CHECKPOINT_INTERVAL_MS; default 0: each
   * written when asked). A checkpoint asked for sooner is kept, replaced by any later one, and
   * written when the interval has passed, or before the lease is released or finished.
   */
  checkpointIntervalMs?: number;
}

export class ShardWorker {
  private readonly abort = new AbortController();
  private stopMode: StopMode | undefined;
  /** Last record handed to the processor (a re-read never delivers it twice). */
  private delivered: Position | undefined;
  /** What the lease holds now: the floor for new checkpoints and the state kept by default. */
  private checkpointed: Position | undefined;
  private state: string | undefined;
  /** The newest checkpoint asked for within the interval, not written yet. */
  private pending: { at: Position; state: string | undefined } | undefined;
  private lastWriteAt = -Infinity;
  private flushTimer: NodeJS.Timeout | undefined;
  /** Checkpoint writes, one after the other (a timer's write and a processor's never cross). */
  private writes: Promise<void> = Promise.resolve();
  /** A timer's write found the lease gone: the processor's next checkpoint says so. */
  private lost: LeaseLostError | undefined;
  readonly done: Promise<void>;

  constructor(private readonly deps: ShardWorkerDeps) {
    this.done = this.run();
  }

  get shardId(): string {
    return this.deps.shardId;
  }

  /** Asks the worker to end after the batch in hand; resolves when it has. */
  stop(mode: StopMode): Promise<void> {
    this.stopMode ??= mode;
    this.abort.abort();
    return this.done;
  }

  /** The coordinator saw the lease go: end without touching it. */
  leaseLost(): void {
    this.abort.abort();
  }

  private async run(): Promise<void> {
    const { shardId, coordinator, logger } = this.deps;
    let reason: ShutdownReason;
    try {
      reason = await this.work();
    } catch (err) {
      if (!(err instanceof LeaseLostError)) logger.error({ err, shardId }, 'shard worker failed; the lease will be released');
      reason = err instanceof LeaseLostError ? 'lease_lost' : 'shutdown';
    }
    if (this.stopMode === 'abandon') {
      this.dropPending();
      return this.deps.metrics.shardClosed(shardId);
    }
    try {
      if (reason === 'lease_lost' || !(await coordinator.confirm(shardId))) {
        this.dropPending();
        await this.deps.processor.shutdown('lease_lost');
      } else if (reason === 'shard_end') {
        await this.deps.processor.shutdown('shard_end', this.checkpointer());
        await this.flushPending();
        await coordinator.finish(shardId, this.state);
        this.deps.onShardEnd(shardId);
      } else {
        await this.deps.processor.shutdown('shutdown', this.checkpointer());
        await this.flushPending();
        await coordinator.release(shardId);
      }
    } catch (err) {
      logger.warn({ err, shardId, reason }, 'shard shutdown did not complete');
      this.dropPending();
      await coordinator.release(shardId).catch(() => undefined);
    } finally {
      this.deps.metrics.shardClosed(shardId);
    }
  }

  private async work(): Promise<ShutdownReason> {
    const { shardId, coordinator, processor, metrics } = this.deps;
    const lease = coordinator.heldLease(shardId);
    if (!lease) return 'lease_lost';
    let from: StartingPosition;
    const timestamp = atTimestampOf(lease.checkpoint);
    if (lease.checkpoint === TRIM_HORIZON || lease.checkpoint === LATEST) {
      from = { type: lease.checkpoint };
    } else if (timestamp) {
      from = { type: 'AT_TIMESTAMP', timestamp };
    } else {
      this.checkpointed = { sequenceNumber: lease.checkpoint, subSequenceNumber: lease.checkpointSubSequence };
      this.delivered = this.checkpointed;
      from = { type: 'AT_SEQUENCE_NUMBER', sequenceNumber: lease.checkpoint };
    }
    // The states are read only here (the lease item holds a reference to its slot, see leases.ts planState).
    this.state = await coordinator.checkpointState(shardId);
    await processor.initialize({
      shardId,
      ...(this.checkpointed ? { checkpoint: { ...this.checkpointed, ...(this.state === undefined ? {} : { state: this.state }) } } : {}),
      parentStates: await coordinator.parentStates(shardId),
    });

    const subscription = this.deps.reader.open(shardId, from);
    const signal = this.abort.signal;
    const stopped = (): ShutdownReason => (this.stopMode ? 'shutdown' : 'lease_lost');
    // Both retries are unbounded on purpose: the worker holds the lease, and giving up would only
    // hand the same shard to the next worker. They end when the lease goes or a stop aborts.
    const retrying = { policy: this.deps.backoff ?? DEFAULT_BACKOFF, signal, shouldRetry: () => true, ...(this.deps.random ? { random: this.deps.random } : {}) };
    try {
      for (;;) {
        if (!(await this.mayAct())) return 'lease_lost';
        if (signal.aborted) return stopped();
        let batch;
        try {
          batch = await retry(() => subscription.next(signal), {
            ...retrying,
            onRetry: (err) => this.deps.logger.warn({ err, shardId }, 'reading the shard failed; backing off'),
          });
        } catch {
          return stopped(); // retry() gives up only when aborted
        }
        if (signal.aborted) continue;
        metrics.iteratorAge(shardId, batch.millisBehindLatest);
        const records = recordsAfter(toUserRecords(shardId, batch.records), this.delivered);
        const perCall = this.deps.maxRecordsPerCall ?? MAX_RECORDS_PER_CALL;
        for (let start = 0; start < records.length; start += perCall) {
          if (start > 0) {
            await yieldToEventLoop();
            if (signal.aborted) return stopped(); // the rest is re-read after the last checkpoint
          }
          const slice = records.slice(start, start + perCall);
          // A failing processor gets the same slice again, for as long as we hold the lease.
          try {
            await retry(
              async () => {
                if (!(await this.mayAct())) throw new LeaseLostError(shardId);
                await processor.processRecords({ records: slice, millisBehindLatest: batch.millisBehindLatest }, this.checkpointer(slice.at(-1)));
              },
              {
                ...retrying,
                shouldRetry: (err) => !(err instanceof LeaseLostError),
                onRetry: (err) => this.deps.logger.error({ err, shardId }, 'processRecords failed; retrying the batch'),
              },
            );
          } catch (err) {
            return err instanceof LeaseLostError ? 'lease_lost' : stopped();
          }
          const last = slice.at(-1)!;
          this.delivered = { sequenceNumber: last.sequenceNumber, subSequenceNumber: last.subSequenceNumber };
          metrics.recordsProcessed(shardId, slice.length);
        }
        if (batch.shardEnd) return 'shard_end';
      }
    } finally {
      subscription.close();
    }
  }

  /**
   * Waits while the lease has lapsed by time only (this process renewed too slowly: it must not
   * act, but nobody took the lease either) instead of giving the shard up, which would make this
   * same worker take it back and re-read it from the checkpoint. False once the lease is gone.
   */
  private async mayAct(): Promise<boolean> {
    const { coordinator, shardId } = this.deps;
    for (;;) {
      if (await coordinator.confirm(shardId)) return true;
      if (!coordinator.claims(shardId) || this.abort.signal.aborted) return false;
      await sleep(LAPSED_RETRY_MS, this.abort.signal);
    }
  }

  private checkpointer(lastOfBatch?: { sequenceNumber: string; subSequenceNumber: number }): Checkpointer {
    return {
      checkpoint: async (position?: Position, state?: string) => {
        if (this.lost) throw this.lost;
        const at = position ?? (lastOfBatch ? { sequenceNumber: lastOfBatch.sequenceNumber, subSequenceNumber: lastOfBatch.subSequenceNumber } : this.delivered);
        const keep = state ?? this.pending?.state ?? this.state;
        if (!at) {
          // Nothing read yet (TRIM_HORIZON / LATEST): only the state can be stored, and only with a position.
          if (state !== undefined) this.state = state;
          return;
        }
        const floor = this.pending?.at ?? this.checkpointed;
        if (floor && comparePositions(at, floor) < 0) {
          throw new RangeError(`checkpoint ${at.sequenceNumber}/${at.subSequenceNumber} is before the stored one on ${this.deps.shardId}`);
        }
        const dueIn = this.lastWriteAt + (this.deps.checkpointIntervalMs ?? 0) - Date.now();
        if (dueIn > 0) {
          this.pending = { at, state: keep };
          this.armFlush(dueIn);
          return;
        }
        await this.write(at, keep);
      },
    };
  }

  /** Writes a checkpoint after the writes before it; whatever was pending is covered by it. */
  private write(at: Position, state: string | undefined): Promise<void> {
    this.dropPending();
    this.lastWriteAt = Date.now();
    const written = this.writes.then(async () => {
      await this.deps.coordinator.checkpoint(this.deps.shardId, at, state);
      this.checkpointed = at;
      this.state = state;
      this.deps.metrics.checkpointed(this.deps.shardId);
    });
    this.writes = written.catch(() => undefined);
    return written;
  }

  private armFlush(delayMs: number): void {
    if (this.flushTimer !== undefined) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      const due = this.pending;
      if (!due) return;
      this.write(due.at, due.state).catch((err: unknown) => {
        if (err instanceof LeaseLostError) {
          this.lost ??= err;
          return;
        }
        // Written again at the next interval unless a newer checkpoint replaced it meanwhile.
        this.deps.logger.warn({ err, shardId: this.deps.shardId }, 'a deferred checkpoint failed; retrying it');
        if (!this.pending) {
          this.pending = due;
          this.armFlush(this.deps.checkpointIntervalMs ?? 0);
        }
      });
    }, delayMs);
  }

  /** Before a release or a finish: the pending checkpoint is written now, and every write has settled. */
  private async flushPending(): Promise<void> {
    const due = this.pending;
    if (due) await this.write(due.at, due.state);
    else await this.writes;
  }

  /** Forgets the pending checkpoint and its timer: written by the caller, or (the lease gone or abandoned) re-read by the next holder. */
  private dropPending(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.pending = undefined;
  }
}
