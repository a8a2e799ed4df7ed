// The consumer library's ShardProcessor for the router: one leased shard's ShardRouter and
// publish pipeline, checkpointing the marks as the lease's state.
import { type Checkpointer, LeaseLostError, type ProcessBatch, type ShardInit, type ShardProcessor, type ShutdownReason } from '@taskflow/stream';
import type { Logger } from '../lib/logger.js';
import type { PublishPipeline } from './publish-pipeline.js';
import { ShardRouter, type ShardRouterDeps } from './shard-router.js';

/**
 * One leased shard: its ShardRouter, its publish pipeline, checkpointing the marks as state.
 * Batches are pipelined: once a batch is in the changelog the next read may start, while its
 * publish and then its checkpoint complete in order behind it. At most MAX_UNCHECKPOINTED batches
 * wait so; a crash re-reads them from the last checkpoint and they get the same seqs.
 */
export class RouterShardProcessor implements ShardProcessor {
  private router: ShardRouter | undefined;
  private readonly pipeline: PublishPipeline;
  /** Checkpoints of staged batches, oldest first; each settles after the one before it. */
  private readonly checkpoints: Promise<void>[] = [];
  private leaseLost: unknown;
  /** A staged batch was never published (the pipeline closed first): nothing after it may be checkpointed. */
  private unpublished = false;
  private batches = 0;
  private caughtUp = false;

  constructor(
    private readonly shardId: string,
    private readonly deps: Omit<ShardRouterDeps, 'shardId' | 'sink'>,
    makePipeline: () => PublishPipeline,
    private readonly logger: Logger,
    /** Nothing is staged before this resolves (the publisher connected, subscriptions loaded); the shard is read meanwhile. */
    private readonly ready: Promise<unknown> = Promise.resolve(),
  ) {
    this.pipeline = makePipeline();
  }

  async initialize(init: ShardInit): Promise<void> {
    const deps = { ...this.deps, shardId: this.shardId, sink: this.pipeline };
    this.router = init.checkpoint ? new ShardRouter(deps, init.checkpoint.state) : new ShardRouter(deps, ...init.parentStates.map((p) => p.state));
  }

  async processRecords(batch: ProcessBatch, checkpointer: Checkpointer): Promise<void> {
    if (this.leaseLost !== undefined) throw this.leaseLost;
    if (!this.router || batch.records.length === 0) return;
    await this.ready;
    const first = this.batches++ === 0;
    // Start-up phases after a crash (bench:recovery): first batch read, in the changelog, published; caught up.
    if (first) this.logger.info({ shardId: this.shardId, records: batch.records.length, millisBehindLatest: batch.millisBehindLatest }, 'first batch read');
    if (!this.caughtUp && batch.millisBehindLatest <= CAUGHT_UP_MS) {
      this.caughtUp = true;
      this.logger.info({ shardId: this.shardId, batches: this.batches, millisBehindLatest: batch.millisBehindLatest }, 'caught up');
    }
    const { state, published, timings } = await this.router.stage(batch.records);
    if (first) {
      this.logger.info({ shardId: this.shardId, ...timings }, 'first batch staged');
      void published.then(() => this.logger.info({ shardId: this.shardId }, 'first batch published'), () => undefined);
    }
    const previous = this.checkpoints.at(-1) ?? Promise.resolve();
    this.checkpoints.push(
      previous.then(async () => {
        try {
          await published;
        } catch {
          this.unpublished = true; // closing: a re-read from the last checkpoint publishes it
          return;
        }
        if (this.unpublished) return;
        try {
          await checkpointer.checkpoint(undefined, state);
        } catch (err) {
          if (err instanceof LeaseLostError) this.leaseLost ??= err;
          // Anything else (a failed checkpoint write): the next batch's checkpoint covers this one.
          else this.logger.warn({ err, shardId: this.shardId }, 'checkpoint failed; the next one covers it');
        }
      }),
    );
    while (this.checkpoints.length > MAX_UNCHECKPOINTED) await this.checkpoints.shift();
    if (this.leaseLost !== undefined) throw this.leaseLost;
  }

  async shutdown(reason: ShutdownReason, checkpointer?: Checkpointer): Promise<void> {
    await this.pipeline.close(reason === 'lease_lost' ? 'abandon' : 'graceful');
    await Promise.all(this.checkpoints.splice(0));
    if (reason === 'lease_lost') return;
    // Throwing keeps a shard with unpublished changes from being marked finished: its lease is
    // released instead, and the next holder re-reads from the last checkpoint.
    if (this.unpublished) throw new Error(`shard ${this.shardId} closed with changes not yet published; they are re-read from the last checkpoint`);
    // Retries a checkpoint that failed in the chain.
    if (checkpointer && this.router && this.leaseLost === undefined) await checkpointer.checkpoint(undefined, this.router.state);
  }
}

/** A read this close to the shard's tip counts as caught up (logged once per lease). */
const CAUGHT_UP_MS = 1000;

/** Staged batches whose publish and checkpoint may still be pending while the next is read. */
const MAX_UNCHECKPOINTED = 3;
