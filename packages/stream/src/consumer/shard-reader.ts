// Reading one shard, behind one interface so polling (GetRecords: what kinesalite supports)
// and enhanced fan-out (SubscribeToShard: pushed, 2 MB/s per consumer) are interchangeable.
import {
  ExpiredIteratorException,
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
  type KinesisClient,
  ProvisionedThroughputExceededException,
  type ShardIteratorType,
} from '@aws-sdk/client-kinesis';
import { TaskflowError } from '../../../../lib/errors.js';
import { type BackoffPolicy, DEFAULT_BACKOFF, sleep } from '../../../../lib/backoff.js';
import { retry } from '../../../../lib/retry.js';
import { DirectAwsJson, KINESIS_JSON } from '../../../../lib/aws-direct.js';

/** AT_TIMESTAMP: the first record that arrived at or after `timestamp` (the trim horizon when that is older). */
export type StartingPosition = { type: 'TRIM_HORIZON' } | { type: 'LATEST' } | { type: 'AT_SEQUENCE_NUMBER'; sequenceNumber: string } | { type: 'AT_TIMESTAMP'; timestamp: Date };

/** A Kinesis record as read, before decoding. */
export interface RawRecord {
  sequenceNumber: string;
  partitionKey: string;
  data: Uint8Array;
  approximateArrivalTimestamp?: Date;
}

export interface ReadBatch {
  records: RawRecord[];
  millisBehindLatest: number;
  /** The shard is closed and read to its end: there is nothing after this batch. */
  shardEnd: boolean;
}

export interface ShardSubscription {
  /**
   * The next batch, waiting as the read mode requires (poll pacing, or until records are
   * pushed). Resolves with an empty batch when `signal` aborts.
   */
  next(signal: AbortSignal): Promise<ReadBatch>;
  close(): void;
}

export interface ShardReader {
  open(shardId: string, from: StartingPosition): ShardSubscription;
}

/** Kinesis allows 5 GetRecords calls and 2 MB per second per shard, shared by every polling reader. */
export const GET_RECORDS_CALLS_PER_SECOND = 5;
export const GET_RECORDS_BYTES_PER_SECOND = 2 * 1024 * 1024;

/**
 * One consumer's share of each shard's read capacity. The shares of all polling consumers of a
 * stream must add up to at most the shard's limits, or they throttle each other.
 */
export interface ReadBudget {
  callsPerSecond: number;
  bytesPerSecond: number;
}

/** A stream consumer's default share: the router's 2 calls/s + 1 MB/s leave this for four more. */
export const DEFAULT_READ_BUDGET: ReadBudget = { callsPerSecond: 0.75, bytesPerSecond: 256 * 1024 };

/**
 * Throttled calls in a row (backing off between them) before next() rejects: the shard worker
 * then logs it and backs off in turn, so a shard starved for read capacity is seen, not silent.
 */
export const THROTTLED_ATTEMPTS = 8;

export interface PollingOptions {
  kinesis: KinesisClient;
  streamName: string;
  /** GetRecords Limit (Kinesis: at most 10,000). */
  maxRecords?: number;
  /** Wait after an empty read before polling again. Default 200 ms. */
  idlePollMs?: number;
  /** This consumer's share of each shard's read capacity. Default DEFAULT_READ_BUDGET. */
  budget?: ReadBudget;
  /**
   * Spacing between calls instead of 1000 / budget.callsPerSecond, e.g. 0 against a local Kinesis
   * without limits; the bytes budget still applies.
   */
  minCallSpacingMs?: number;
  backoff?: BackoffPolicy;
  random?: () => number;
  now?: () => number;
  /** Kinesis refused a call (ProvisionedThroughputExceeded): the shard's budget is overspent. */
  onThrottled?: (shardId: string) => void;
  /** A wait the budget imposed beyond the idle poll (records were there to read). */
  onBudgetWait?: (shardId: string, ms: number) => void;
}

export interface PaceInput {
  lastCallAt: number;
  now: number;
  /** The last call returned records (else the idle poll interval applies too). */
  gotRecords: boolean;
  /** Bytes the last call returned. */
  lastBytes: number;
  idlePollMs: number;
  minCallSpacingMs: number;
  bytesPerSecond: number;
}

/**
 * How long to wait before the next GetRecords call (pure, for the pacing rule's tests): at least
 * the call spacing after the last call, and long enough for its bytes to fit the bytes budget
 * (a 1 MB read at 256 KB/s waits 4 s, as Kinesis itself would refuse earlier calls); after an
 * empty read, at least the idle poll. `budgetMs` is the part of the wait due to the budget alone.
 */
export function pollDelay(p: PaceInput): { waitMs: number; budgetMs: number } {
  const budgetGap = Math.max(p.minCallSpacingMs, (p.lastBytes * 1000) / p.bytesPerSecond);
  const idleGap = p.gotRecords ? 0 : p.idlePollMs;
  const waitMs = Math.max(0, p.lastCallAt + Math.max(budgetGap, idleGap) - p.now);
  const idleWait = Math.max(0, p.lastCallAt + idleGap - p.now);
  return { waitMs, budgetMs: waitMs - idleWait };
}

export class PollingShardReader implements ShardReader {
  constructor(private readonly opts: PollingOptions) {}

  open(shardId: string, from: StartingPosition): ShardSubscription {
    return new PollingSubscription(this.opts, shardId, from);
  }
}

class PollingSubscription implements ShardSubscription {
  private iterator: string | undefined;
  /** Last sequence number read: where a fresh iterator resumes after an expired one. */
  private lastSequenceNumber: string | undefined;
  private lastCallAt = Number.NEGATIVE_INFINITY;
  private lastGotRecords = true;
  private lastBytes = 0;
  private ended = false;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly direct: DirectAwsJson | undefined;

  constructor(
    private readonly opts: PollingOptions,
    private readonly shardId: string,
    private readonly from: StartingPosition,
  ) {
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.direct = DirectAwsJson.of(opts.kinesis, KINESIS_JSON);
  }

  async next(signal: AbortSignal): Promise<ReadBatch> {
    const empty: ReadBatch = { records: [], millisBehindLatest: 0, shardEnd: this.ended };
    if (this.ended) return empty;
    try {
      return await retry(() => this.read(signal), {
        policy: this.opts.backoff ?? DEFAULT_BACKOFF,
        signal,
        random: this.random,
        maxAttempts: THROTTLED_ATTEMPTS,
        shouldRetry: (err) => {
          const throttled = err instanceof ProvisionedThroughputExceededException;
          if (throttled) this.opts.onThrottled?.(this.shardId);
          return throttled;
        },
      });
    } catch (err) {
      if (signal.aborted) return empty;
      throw err;
    }
  }

  /** One paced GetRecords call (an expired iterator is replaced and the call made again at once). */
  private async read(signal: AbortSignal): Promise<ReadBatch> {
    for (;;) {
      const budget = this.opts.budget ?? DEFAULT_READ_BUDGET;
      const { waitMs, budgetMs } = pollDelay({
        lastCallAt: this.lastCallAt,
        now: this.now(),
        gotRecords: this.lastGotRecords,
        lastBytes: this.lastBytes,
        idlePollMs: this.opts.idlePollMs ?? 200,
        minCallSpacingMs: this.opts.minCallSpacingMs ?? 1000 / budget.callsPerSecond,
        bytesPerSecond: budget.bytesPerSecond,
      });
      if (budgetMs > 0) this.opts.onBudgetWait?.(this.shardId, budgetMs);
      if (waitMs > 0) await sleep(waitMs, signal);
      if (signal.aborted) return { records: [], millisBehindLatest: 0, shardEnd: false };
      this.lastCallAt = this.now();
      try {
        this.iterator ??= await this.freshIterator();
        const out = await this.getRecords(this.iterator, signal);
        const records: RawRecord[] = (out.Records ?? []).map((r) => ({
          sequenceNumber: r.SequenceNumber!,
          partitionKey: r.PartitionKey ?? '',
          data: r.Data ?? new Uint8Array(),
          ...(r.ApproximateArrivalTimestamp ? { approximateArrivalTimestamp: r.ApproximateArrivalTimestamp } : {}),
        }));
        const last = records.at(-1);
        if (last) this.lastSequenceNumber = last.sequenceNumber;
        this.lastGotRecords = records.length > 0;
        this.lastBytes = records.reduce((sum, r) => sum + r.data.byteLength + Buffer.byteLength(r.partitionKey), 0);
        this.iterator = out.NextShardIterator ?? undefined;
        this.ended = out.NextShardIterator === undefined || out.NextShardIterator === null;
        return { records, millisBehindLatest: out.MillisBehindLatest ?? 0, shardEnd: this.ended };
      } catch (err) {
        if (signal.aborted || !(err instanceof ExpiredIteratorException)) throw err;
        this.iterator = undefined; // resume right after the last record read
      }
    }
  }

  close(): void {
    this.iterator = undefined;
  }

  /**
   * GetRecords sent directly (lib/aws-direct.ts: the SDK's middleware and its base64 check of
   * every record cost more CPU than the rest of the read); the SDK's typed errors for the two
   * the reader handles, and the SDK sends it again on anything else.
   */
  private async getRecords(iterator: string, signal: AbortSignal): Promise<Pick<GetRecordsCommandOutput, 'Records' | 'NextShardIterator' | 'MillisBehindLatest'>> {
    const input = { ShardIterator: iterator, Limit: this.opts.maxRecords ?? 1000 };
    const direct = await this.direct?.send('GetRecords', input, signal);
    if (direct?.ok) {
      const out = direct.output as { Records?: { SequenceNumber: string; PartitionKey?: string; Data?: string; ApproximateArrivalTimestamp?: number }[]; NextShardIterator?: string | null; MillisBehindLatest?: number };
      return {
        Records: (out.Records ?? []).map((r) => ({
          SequenceNumber: r.SequenceNumber,
          PartitionKey: r.PartitionKey ?? '',
          Data: r.Data ? Buffer.from(r.Data, 'base64') : new Uint8Array(),
          ...(r.ApproximateArrivalTimestamp === undefined ? {} : { ApproximateArrivalTimestamp: new Date(r.ApproximateArrivalTimestamp * 1000) }),
        })),
        NextShardIterator: out.NextShardIterator ?? undefined,
        MillisBehindLatest: out.MillisBehindLatest ?? 0,
      };
    }
    const known = { ExpiredIteratorException, ProvisionedThroughputExceededException } as const;
    const Known = direct && !direct.ok && direct.errorType !== null ? known[direct.errorType as keyof typeof known] : undefined;
    if (direct && !direct.ok && Known) throw new Known({ message: direct.message, $metadata: {} });
    return this.opts.kinesis.send(new GetRecordsCommand(input), { abortSignal: signal });
  }

  private async freshIterator(): Promise<string> {
    const position: { ShardIteratorType: ShardIteratorType; StartingSequenceNumber?: string; Timestamp?: Date } = this.lastSequenceNumber
      ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: this.lastSequenceNumber }
      : this.from.type === 'AT_SEQUENCE_NUMBER'
        ? { ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: this.from.sequenceNumber }
        : this.from.type === 'AT_TIMESTAMP'
          ? { ShardIteratorType: 'AT_TIMESTAMP', Timestamp: this.from.timestamp }
          : { ShardIteratorType: this.from.type };
    const out = await this.opts.kinesis.send(new GetShardIteratorCommand({ StreamName: this.opts.streamName, ShardId: this.shardId, ...position }));
    if (!out.ShardIterator) throw new TaskflowError('NO_SHARD_ITERATOR', `no shard iterator for ${this.shardId}`, { retriable: true });
    return out.ShardIterator;
  }
}
