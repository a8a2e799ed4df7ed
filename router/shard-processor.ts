// The consumer library's ShardProcessor for the router: one leased shard's ShardRouter and
// publish pipeline, checkpointing the marks as the lease's state.
import { type Checkpointer, type HighWaterMarks, LeaseLostError, type ProcessBatch, type ShardInit, type ShardProcessor, type ShutdownReason, type UserRecord, serializeMarks } from '@taskflow/stream';
import { backoffDelay, DEFAULT_BACKOFF, sleep } from '../lib/backoff.js';
import type { Logger } from '../lib/logger.js';
import type { PublishPipeline } from './publish-pipeline.js';
import { ReadWindow, type TakenWindow } from './read-window.js';
import { ShardRouter, type ShardRouterDeps } from './shard-router.js';

/**
 * One leased shard: its ShardRouter, its publish pipeline, checkpointing the marks as state.
 * Reads are gathered over the batch window (read-window.ts) and staged as one batch: one
 * changelog item per project per window, not per read. A window is staged when it is due (by
 * processRecords, or its timer), one at a time and in read order; a failed staging is retried in
 * place (the same records: the changelog's lookups give them the same seqs). Batches are
 * pipelined: once a batch is in the changelog the next read may start, while its publish and then
 * its checkpoint (at the window's last read) complete in order behind it. At most
 * MAX_UNCHECKPOINTED batches wait so; a crash re-reads them from the last checkpoint and they get
 * the same seqs.
 *
 * Checkpoints are at least `checkpointEveryMs` apart (ROUTER_CHECKPOINT_INTERVAL_MS): each one
 * whose marks changed writes them (up to ~150 KB packed, 1 WRU per KB) into a state slot of the
 * lease besides the small lease item (packages/stream leases.ts planState), so one per window
 * would make the lease table the bill's largest line. A checkpoint due sooner waits, replaced by
 * any later one, and is written when the interval has passed (a timer, so an idle shard's
 * checkpoint still lands) or by the final checkpoint of a shutdown. A crash meanwhile re-reads at
 * most that much more from the last checkpoint, with the same seqs.
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
  private staged = 0;
  private caughtUp = false;
  private readonly window: ReadWindow<UserRecord, Checkpointer>;
  private timer: NodeJS.Timeout | undefined;
  /** The staging in progress (windows are staged one after the other). */
  private staging: Promise<void> = Promise.resolve();
  /** Shutting down: a failing staging is not retried any more, and a waiting retry wakes. */
  private readonly stopping = new AbortController();
  private readonly checkpointEveryMs: number;
  private lastCheckpointAt = -Infinity;
  /** The newest published batch's checkpoint, waiting for the interval to pass. */
  private deferred: { checkpointer: Checkpointer; marks: HighWaterMarks } | undefined;
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly shardId: string,
    private readonly deps: Omit<ShardRouterDeps, 'shardId' | 'sink'>,
    makePipeline: () => PublishPipeline,
    private readonly logger: Logger,
    /** Nothing is staged before this resolves (the publisher connected, subscriptions loaded); the shard is read meanwhile. */
    private readonly ready: Promise<unknown> = Promise.resolve(),
    options: RouterShardProcessorOptions = {},
  ) {
    this.pipeline = makePipeline();
    this.window = new ReadWindow({ windowMs: options.windowMs ?? 0, maxRecords: MAX_WINDOW_RECORDS });
    this.checkpointEveryMs = options.checkpointEveryMs ?? 0;
  }

  async initialize(init: ShardInit): Promise<void> {
    const deps = { ...this.deps, shardId: this.shardId, sink: this.pipeline };
    this.router = init.checkpoint ? new ShardRouter(deps, init.checkpoint.state) : new ShardRouter(deps, ...init.parentStates.map((p) => p.state));
  }

  async processRecords(batch: ProcessBatch, checkpointer: Checkpointer): Promise<void> {
    if (this.leaseLost !== undefined) throw this.leaseLost;
    if (!this.router || batch.records.length === 0) return;
    await this.ready;
    // Start-up phases after a crash (bench:recovery): first batch read, in the changelog, published; caught up.
    if (this.batches++ === 0) this.logger.info({ shardId: this.shardId, records: batch.records.length, millisBehindLatest: batch.millisBehindLatest }, 'first batch read');
    if (!this.caughtUp && batch.millisBehindLatest <= CAUGHT_UP_MS) {
      this.caughtUp = true;
      this.logger.info({ shardId: this.shardId, batches: this.batches, millisBehindLatest: batch.millisBehindLatest }, 'caught up');
    }
    const now = Date.now();
    this.window.add(batch.records, checkpointer, oldestArrival(batch.records) ?? now, now);
    if (this.window.isDue(now)) await this.stageWindow();
    else this.armTimer();
    while (this.checkpoints.length > MAX_UNCHECKPOINTED) await this.checkpoints.shift();
    if (this.leaseLost !== undefined) throw this.leaseLost;
  }

  async shutdown(reason: ShutdownReason, checkpointer?: Checkpointer): Promise<void> {
    clearTimeout(this.timer);
    clearTimeout(this.flushTimer); // a deferred checkpoint is covered by the final one (or dropped with the lease)
    this.stopping.abort();
    // The window's reads were handed over, so the final checkpoint would pass them: staged now
    // (once; a failure leaves them to the next holder), or dropped with the lease.
    if (reason === 'lease_lost') this.window.take();
    await this.stageWindow();
    await this.pipeline.close(reason === 'lease_lost' ? 'abandon' : 'graceful');
    await Promise.all(this.checkpoints.splice(0));
    if (reason === 'lease_lost') return;
    // Throwing keeps a shard with unpublished changes from being marked finished: its lease is
    // released instead, and the next holder re-reads from the last checkpoint.
    if (this.unpublished) throw new Error(`shard ${this.shardId} closed with changes not yet published; they are re-read from the last checkpoint`);
    // Retries a checkpoint that failed in the chain.
    if (checkpointer && this.router && this.leaseLost === undefined) await checkpointer.checkpoint(undefined, this.router.state);
  }

  private armTimer(): void {
    const dueAt = this.window.dueAt;
    if (this.timer !== undefined || dueAt === undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.stageWindow();
    }, Math.max(0, dueAt - Date.now()));
  }

  /** Stages what the window holds once the staging before it is done; resolves when it is in the changelog (or given up on while closing). */
  private stageWindow(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.staging = this.staging.then(async () => {
      const taken = this.window.take();
      if (taken) await this.stageTaken(taken);
    });
    return this.staging;
  }

  private async stageTaken({ records, last }: TakenWindow<UserRecord, Checkpointer>): Promise<void> {
    const router = this.router!;
    const first = this.staged++ === 0;
    let staged: Awaited<ReturnType<ShardRouter['stage']>>;
    for (let attempt = 0; ; attempt += 1) {
      try {
        staged = await router.stage(records);
        break;
      } catch (err) {
        if (this.stopping.signal.aborted) {
          this.unpublished = true; // closing: a re-read from the last checkpoint stages it
          return;
        }
        this.logger.error({ err, shardId: this.shardId, records: records.length }, 'staging a batch failed; retrying it');
        await sleep(backoffDelay(attempt, Math.random(), DEFAULT_BACKOFF), this.stopping.signal);
      }
    }
    const { marks, published, timings } = staged;
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
        const dueAt = this.lastCheckpointAt + this.checkpointEveryMs;
        const now = Date.now();
        if (now < dueAt) {
          this.deferred = { checkpointer: last, marks };
          this.armFlush(dueAt - now);
        } else await this.writeCheckpoint(last, marks);
      }),
    );
  }

  /** Writes the deferred checkpoint once the interval has passed, after the checkpoints queued before it. */
  private armFlush(delayMs: number): void {
    if (this.flushTimer !== undefined) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      const previous = this.checkpoints.at(-1) ?? Promise.resolve();
      this.checkpoints.push(
        previous.then(async () => {
          const d = this.deferred;
          if (d && !this.unpublished && this.leaseLost === undefined) await this.writeCheckpoint(d.checkpointer, d.marks);
        }),
      );
    }, delayMs);
  }

  private async writeCheckpoint(checkpointer: Checkpointer, marks: HighWaterMarks): Promise<void> {
    this.deferred = undefined;
    this.lastCheckpointAt = Date.now();
    try {
      await checkpointer.checkpoint(undefined, serializeMarks(marks));
    } catch (err) {
      if (err instanceof LeaseLostError) this.leaseLost ??= err;
      // Anything else (a failed checkpoint write): the next batch's checkpoint covers this one.
      else this.logger.warn({ err, shardId: this.shardId }, 'checkpoint failed; the next one covers it');
    }
  }
}

export interface RouterShardProcessorOptions {
  /** ROUTER_BATCH_WINDOW_MS: reads younger than this are gathered (0: each read is staged alone). */
  windowMs?: number;
  /** ROUTER_CHECKPOINT_INTERVAL_MS: least time between two checkpoints (0: one per staged window). */
  checkpointEveryMs?: number;
}

/** Arrival time (ms) of the read's oldest record; undefined when none says. */
function oldestArrival(records: readonly UserRecord[]): number | undefined {
  let oldest: number | undefined;
  for (const r of records) {
    const t = r.approximateArrivalTimestamp?.getTime();
    if (t !== undefined && (oldest === undefined || t < oldest)) oldest = t;
  }
  return oldest;
}

/** Records of one staged window at most: the kit's slice of one processRecords call (synchronous decoding). */
const MAX_WINDOW_RECORDS = 500;

/** A read this close to the shard's tip counts as caught up (logged once per lease). */
const CAUGHT_UP_MS = 1000;

/** Staged batches whose publish and checkpoint may still be pending while the next is read. */
const MAX_UNCHECKPOINTED = 3;
