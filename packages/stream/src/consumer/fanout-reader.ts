// Enhanced fan-out: SubscribeToShard over HTTP/2, behind the same ShardReader interface as the
// polling reader. Kinesis pushes records to a registered stream consumer (its own 2 MB/s per
// shard, not shared with polling readers, ~70 ms from put instead of a poll interval); each
// subscription lasts at most 5 minutes and is then renewed from its ContinuationSequenceNumber,
// which is how the reader resumes without a gap or a repeat. A crash resumes from the lease's
// checkpoint, as with polling (the shard worker opens the reader at it).
import { type KinesisClient, ResourceInUseException, type StartingPosition as KinesisStartingPosition, type SubscribeToShardEventStream, SubscribeToShardCommand } from '@aws-sdk/client-kinesis';
import { type BackoffPolicy, DEFAULT_BACKOFF, backoffDelay, sleep } from '../../../../lib/backoff.js';
import type { RawRecord, ReadBatch, ShardReader, ShardSubscription, StartingPosition } from './shard-reader.js';

export interface FanOutOptions {
  /** A client whose request handler speaks HTTP/2 (NodeHttp2Handler), as SubscribeToShard requires. */
  kinesis: KinesisClient;
  /** The registered stream consumer (RegisterStreamConsumer) this reader subscribes as. */
  consumerArn: string;
  backoff?: BackoffPolicy;
  random?: () => number;
  /** A subscription ended (after ~5 minutes, or a dropped connection) and is renewed. */
  onResubscribe?: (shardId: string) => void;
}

export class FanOutShardReader implements ShardReader {
  constructor(private readonly opts: FanOutOptions) {}

  open(shardId: string, from: StartingPosition): ShardSubscription {
    return new FanOutSubscription(this.opts, shardId, from);
  }
}

/** Where a renewed subscription starts: after the continuation, else where the reader was opened (pure). */
export function subscribePosition(from: StartingPosition, continuation: string | undefined): KinesisStartingPosition {
  if (continuation) return { Type: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: continuation };
  return from.type === 'AT_SEQUENCE_NUMBER' ? { Type: 'AT_SEQUENCE_NUMBER', SequenceNumber: from.sequenceNumber } : { Type: from.type };
}

class FanOutSubscription implements ShardSubscription {
  private events: AsyncIterator<SubscribeToShardEventStream> | undefined;
  private abort: AbortController | undefined;
  private continuation: string | undefined;
  private ended = false;
  private failures = 0;

  constructor(
    private readonly opts: FanOutOptions,
    private readonly shardId: string,
    private readonly from: StartingPosition,
  ) {}

  async next(signal: AbortSignal): Promise<ReadBatch> {
    const empty = (): ReadBatch => ({ records: [], millisBehindLatest: 0, shardEnd: this.ended });
    const onAbort = () => this.abort?.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (!this.ended && !signal.aborted) {
        try {
          this.events ??= await this.subscribe();
          const step = await this.events.next();
          if (step.done) {
            // The subscription's 5 minutes are over (or the stream closed): renew after the continuation.
            this.events = undefined;
            this.opts.onResubscribe?.(this.shardId);
            continue;
          }
          this.failures = 0;
          const event = step.value.SubscribeToShardEvent;
          if (!event) continue;
          const records: RawRecord[] = (event.Records ?? []).map((r) => ({
            sequenceNumber: r.SequenceNumber!,
            partitionKey: r.PartitionKey ?? '',
            data: r.Data ?? new Uint8Array(),
            ...(r.ApproximateArrivalTimestamp ? { approximateArrivalTimestamp: r.ApproximateArrivalTimestamp } : {}),
          }));
          // No continuation (and child shards named): the shard is closed and read to its end.
          if (event.ContinuationSequenceNumber) this.continuation = event.ContinuationSequenceNumber;
          else this.ended = true;
          return { records, millisBehindLatest: event.MillisBehindLatest ?? 0, shardEnd: this.ended };
        } catch (err) {
          this.close();
          if (signal.aborted) break;
          // Another subscription of this consumer to the shard opened less than 5 s ago (a previous
          // holder's; after that Kinesis lets this one take over), a throttle, a dropped
          // connection: back off and subscribe again.
          this.failures += 1;
          if (this.failures > 8 && !(err instanceof ResourceInUseException)) throw err;
          await sleep(backoffDelay(this.failures, (this.opts.random ?? Math.random)(), this.opts.backoff ?? DEFAULT_BACKOFF), signal);
        }
      }
      return empty();
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  private async subscribe(): Promise<AsyncIterator<SubscribeToShardEventStream>> {
    this.abort = new AbortController();
    const out = await this.opts.kinesis.send(
      new SubscribeToShardCommand({ ConsumerARN: this.opts.consumerArn, ShardId: this.shardId, StartingPosition: subscribePosition(this.from, this.continuation) }),
      { abortSignal: this.abort.signal },
    );
    if (!out.EventStream) throw new Error(`SubscribeToShard ${this.shardId}: no event stream`);
    return out.EventStream[Symbol.asyncIterator]();
  }

  close(): void {
    this.abort?.abort();
    this.abort = undefined;
    void this.events?.return?.().catch(() => {});
    this.events = undefined;
  }
}
