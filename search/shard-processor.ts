// The consumer library's ShardProcessor for search: decode and validate each record (bad ones to
// the dead-letter store), apply the batch to the index in one durable step, then checkpoint.
// No high-water marks: every index write is idempotent and order-free (documents.ts), so a batch
// re-read after a crash, a replay or a redrive is applied again harmlessly.
import type { EventCheck, StreamEvent } from '@taskflow/stream/events';
import { type ConsumerDeadLetterSink, type ErasedSubjects, readBatch } from '@taskflow/stream';
import type { Checkpointer, ProcessBatch, ShardProcessor, ShutdownReason } from '@taskflow/stream';
import { indexBatchOf } from './indexer.js';
import { type IndexerMetrics, noopIndexerMetrics } from './metrics.js';
import type { SearchIndex } from './search-index.js';

export interface SearchProcessorDeps {
  /** The consumer's name (SEARCH_CONSUMER_NAME): snapshots aimed at another consumer are skipped. */
  consumer: string;
  index: SearchIndex;
  deadLetters: ConsumerDeadLetterSink;
  validate: EventCheck;
  metrics?: IndexerMetrics;
  now?: () => number;
  /** Personal fields decrypted before indexing (null once shredded: indexed without text). */
  decrypt?: (event: StreamEvent) => Promise<StreamEvent>;
  /** Erased subjects' data blanked before indexing (a replay or backfill cannot bring it back); absent: not checked. */
  erased?: Pick<ErasedSubjects, 'scrub'>;
}

export class SearchShardProcessor implements ShardProcessor {
  private readonly metrics: IndexerMetrics;
  private readonly now: () => number;

  constructor(
    private readonly shardId: string,
    private readonly deps: SearchProcessorDeps,
  ) {
    this.metrics = deps.metrics ?? noopIndexerMetrics;
    this.now = deps.now ?? Date.now;
  }

  async initialize(): Promise<void> {}

  async processRecords(batch: ProcessBatch, checkpointer: Checkpointer): Promise<void> {
    if (batch.records.length === 0) return;
    const events = await readBatch(batch, this.shardId, { ...this.deps, metrics: this.metrics });
    const started = this.now();
    const change = indexBatchOf(events);
    await this.deps.index.apply(change);
    const done = this.now();
    this.metrics.applied(
      change.changes.length,
      change.truncates.length,
      (done - started) / 1000,
      events.map((e) => (done - Date.parse(e.envelope.time)) / 1000),
    );
    // After the index has the batch durably: a crash before this line re-reads it, harmlessly.
    await checkpointer.checkpoint();
  }

  // Every batch is checkpointed as it is applied: nothing is pending at shutdown.
  async shutdown(_reason: ShutdownReason): Promise<void> {}
}
