// The consumer library's ShardProcessor for notifications: decode and validate each record (bad
// ones to the dead-letter store), run the batch through the pipeline (pipeline.ts: memberships,
// inbox, watchers, live delivery), then checkpoint. No high-water marks: every step is idempotent
// and the plan of a re-read batch is the same (rules.ts), so a crash re-reads it harmlessly.
import type { EventCheck, StreamEvent } from '@taskflow/stream/events';
import { type ConsumerDeadLetterSink, type ErasedSubjects, readBatch } from '@taskflow/stream';
import type { Checkpointer, ProcessBatch, ShardProcessor, ShutdownReason } from '@taskflow/stream';
import { noopNotifierMetrics, type NotifierMetrics } from './metrics.js';
import { notifyBatch, type PipelineDeps } from './pipeline.js';

export interface NotificationProcessorDeps extends PipelineDeps {
  /** The consumer's name (NOTIFICATIONS_CONSUMER_NAME): snapshots aimed at another consumer are skipped. */
  consumer: string;
  deadLetters: ConsumerDeadLetterSink;
  validate: EventCheck;
  metrics?: NotifierMetrics;
  now?: () => number;
  /** Comment bodies decrypted for @mention parsing (null once shredded: no mentions). */
  decrypt?: (event: StreamEvent) => Promise<StreamEvent>;
  /** Erased subjects' data blanked before notifying (a replay or backfill cannot bring it back); absent: not checked. */
  erased?: Pick<ErasedSubjects, 'scrub'>;
}

export class NotificationShardProcessor implements ShardProcessor {
  private readonly metrics: NotifierMetrics;
  private readonly now: () => number;

  constructor(
    private readonly shardId: string,
    private readonly deps: NotificationProcessorDeps,
  ) {
    this.metrics = deps.metrics ?? noopNotifierMetrics;
    this.now = deps.now ?? Date.now;
  }

  async initialize(): Promise<void> {}

  async processRecords(batch: ProcessBatch, checkpointer: Checkpointer): Promise<void> {
    if (batch.records.length === 0) return;
    const events = await readBatch(batch, this.shardId, { ...this.deps, metrics: this.metrics });
    const started = this.now();
    let outcome;
    try {
      outcome = await notifyBatch(events, this.deps);
    } catch (err) {
      // Retried by the consumer library (same batch, after a backoff).
      this.metrics.batchFailed();
      throw err;
    }
    const done = this.now();
    const byKind: Record<string, number> = {};
    for (const n of outcome.notifications) byKind[n.kind] = (byKind[n.kind] ?? 0) + 1;
    this.metrics.batch(
      byKind,
      outcome.delivered,
      outcome.notifications.length - outcome.delivered,
      (done - started) / 1000,
      outcome.notifications.map((n) => (done - Date.parse(n.time)) / 1000),
    );
    // After the inbox and the watchers have the batch durably: a crash before this line re-reads it, harmlessly.
    await checkpointer.checkpoint();
  }

  // Every batch is checkpointed as it is done (one the library's interval holds back is written before the lease is released): nothing is pending here at shutdown.
  async shutdown(_reason: ShutdownReason): Promise<void> {}
}
