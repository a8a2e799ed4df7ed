// The Kinesis producer: drives the pure Batcher with real PutRecords calls. A request that fails
// as a whole (network, throttling exception) counts as every record failed; per-record failures
// come back in the response. Either way the Batcher puts them back in order and backs off.
import { type KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { DirectAwsJson, KINESIS_JSON } from '../lib/aws-direct.js';
import type { Logger } from '../lib/logger.js';
import { type Batch, Batcher, type BatcherOptions, type EnqueueResult, type Outgoing } from './batcher.js';
import type { AcknowledgedRecord, HotWorkspaceTracker } from './hot-workspaces.js';
import { type CaptureMetrics, noopCaptureMetrics } from './metrics.js';

export interface PutResult {
  ok: boolean;
  errorCode?: string;
  /** The shard an accepted record landed on, when the client reports it (per-shard load). */
  shardId?: string;
}

/** The client boundary: one PutRecords request, results in request order. */
export type PutRecordsFn = (records: { partitionKey: string; data: Uint8Array }[]) => Promise<PutResult[]>;

/** Kinesis' answers that mean "not now" rather than "not this request": the producer backs off. */
const THROTTLED = new Set(['ProvisionedThroughputExceededException', 'LimitExceededException', 'KMSThrottlingException']);

interface PutRecordsAnswer {
  Records?: { ShardId?: string; ErrorCode?: string }[];
}

/**
 * PutRecords signed and sent past the SDK's middleware (lib/aws-direct.ts): ≈ 400 vs 750 µs of
 * client CPU per request. One attempt, as the client's (maxAttempts 1): a request refused as a
 * whole (4xx but throttling: nothing applied) goes through the SDK again, whose error types and
 * clock-skew correction then apply; throttling, 5xx and transport errors throw, and the records
 * are retried after the producer's backoff, as they were for the SDK's errors.
 */
export function kinesisPutRecords(client: KinesisClient, streamName: string): PutRecordsFn {
  const direct = DirectAwsJson.of(client, KINESIS_JSON);
  const viaSdk = async (records: Parameters<PutRecordsFn>[0]) => (await client.send(new PutRecordsCommand({ StreamName: streamName, Records: records.map((r) => ({ PartitionKey: r.partitionKey, Data: r.data })) }))).Records ?? [];
  const viaDirect = async (records: Parameters<PutRecordsFn>[0]) => {
    if (!direct) return viaSdk(records);
    const out = await direct.send('PutRecords', { StreamName: streamName, Records: records.map((r) => ({ Data: Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength).toString('base64'), PartitionKey: r.partitionKey })) });
    if (out.ok) return (out.output as PutRecordsAnswer).Records ?? [];
    if (out.errorType !== null && !THROTTLED.has(out.errorType)) return viaSdk(records);
    throw Object.assign(new Error(`PutRecords failed: ${out.message}`), { name: out.errorType ?? 'PutRecordsError' });
  };
  return async (records) => {
    const results = await viaDirect(records);
    return records.map((_, i) => {
      const r = results[i];
      if (!r) return { ok: false, errorCode: 'MissingResult' };
      if (r.ErrorCode) return { ok: false, errorCode: r.ErrorCode };
      return r.ShardId ? { ok: true, shardId: r.ShardId } : { ok: true };
    });
  };
}

export interface ProducerItem extends Outgoing {
  /** Called once, when Kinesis has acknowledged the event. */
  onAck(): void;
}

export interface ProducerOptions {
  batcher: BatcherOptions;
  maxInFlightBatches: number;
  logger: Logger;
  metrics?: CaptureMetrics;
  /** Counts what Kinesis acknowledged per workspace (and shard), to find workspaces nearing the limit. */
  hotWorkspaces?: HotWorkspaceTracker;
  now?: () => number;
  random?: () => number;
  /** The timer behind linger and backoff (default: the event loop's). */
  timers?: ProducerTimers;
}

export interface ProducerTimers {
  set(fire: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const eventLoopTimers: ProducerTimers = { set: (fire, ms) => setTimeout(fire, ms), clear: (handle) => clearTimeout(handle as NodeJS.Timeout) };

export class KinesisProducer {
  private readonly batcher: Batcher<ProducerItem>;
  private inFlight = 0;
  private retryTimer: unknown;
  /** When retryTimer fires. */
  private retryAt = Number.POSITIVE_INFINITY;
  private closed = false;
  private readonly drainWaiters: (() => void)[] = [];
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly timers: ProducerTimers;
  private readonly metrics: CaptureMetrics;

  constructor(
    private readonly put: PutRecordsFn,
    private readonly opts: ProducerOptions,
  ) {
    this.batcher = new Batcher(opts.batcher);
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.timers = opts.timers ?? eventLoopTimers;
    this.metrics = opts.metrics ?? noopCaptureMetrics;
  }

  /** Queues an event; refuses one too large for any Kinesis record (the caller dead-letters it). */
  send(item: ProducerItem): EnqueueResult {
    const now = this.now();
    const result = this.batcher.enqueue(item, now);
    if (!result.ok) return result;
    if (this.inFlight < this.opts.maxInFlightBatches) this.pump(now);
    // A new event may linger at most until now + linger: the timer is moved only if it is later.
    const linger = this.opts.batcher.linger?.ms ?? 0;
    if (linger > 0 && !this.closed && this.retryAt > now + linger) this.schedule(now + linger, now);
    return result;
  }

  get pendingEvents(): number {
    return this.batcher.pendingEvents;
  }

  /** Resolves when every queued event is acknowledged. */
  drained(): Promise<void> {
    if (this.batcher.pendingEvents === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Stops sending; events still queued are abandoned (capture resends them from the slot). */
  close(): void {
    this.closed = true;
    if (this.retryTimer !== undefined) this.timers.clear(this.retryTimer);
    for (const w of this.drainWaiters.splice(0)) w();
  }

  private pump(now: number): void {
    if (this.closed) return;
    while (this.inFlight < this.opts.maxInFlightBatches) {
      const batch = this.batcher.next(now);
      if (!batch) break;
      this.inFlight += 1;
      void this.sendBatch(batch);
    }
  }

  /**
   * Sends what can go, then sets the timer for the earliest key still backing off or lingering.
   * One reading of the clock serves both: nextSendAt skips the keys due at its `now` (they count
   * as sent), so reading a later ms than pump did would skip a key that became due in between,
   * and that change would wait, unsent and with no timer, for the next one to come along.
   */
  private pumpAndScheduleRetry(): void {
    const now = this.now();
    this.pump(now);
    if (this.retryTimer !== undefined) this.timers.clear(this.retryTimer);
    this.retryTimer = undefined;
    this.retryAt = Number.POSITIVE_INFINITY;
    if (this.closed) return;
    const at = this.batcher.nextSendAt(now);
    if (at !== undefined) this.schedule(at, now);
  }

  private schedule(at: number, now: number): void {
    if (this.retryTimer !== undefined) this.timers.clear(this.retryTimer);
    this.retryAt = at;
    this.retryTimer = this.timers.set(() => this.pumpAndScheduleRetry(), Math.max(0, at - now));
  }

  private async sendBatch(batch: Batch<ProducerItem>): Promise<void> {
    const m = this.metrics;
    const started = process.hrtime.bigint();
    let ok: boolean[];
    let results: PutResult[] = [];
    try {
      results = await this.put(batch.records.map((r) => ({ partitionKey: r.partitionKey, data: r.data })));
      ok = results.map((r) => r.ok);
      for (const r of results) if (!r.ok) m.putRetried(r.errorCode ?? 'unknown', 1);
      if (ok.some((x) => !x)) this.opts.logger.warn({ failed: ok.filter((x) => !x).length, records: ok.length, codes: [...new Set(results.flatMap((r) => (r.errorCode ? [r.errorCode] : [])))] }, 'PutRecords partially failed; retrying those records');
    } catch (err) {
      ok = batch.records.map(() => false);
      m.putRetried((err as Error).name || 'Error', batch.records.length);
      this.opts.logger.warn({ err, records: batch.records.length }, 'PutRecords failed; retrying');
    }
    m.putCompleted({
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
      records: batch.records.length,
      events: batch.records.reduce((n, r) => n + r.items.length, 0),
      bytes: batch.bytes,
    });
    this.inFlight -= 1;
    if (this.closed) return;
    const now = this.now();
    this.opts.hotWorkspaces?.recordAcknowledged(acknowledgedRecords(batch, results), now);
    const acked = this.batcher.settle(batch, ok, now, this.random);
    for (const item of acked) item.onAck();
    m.bufferedEvents(this.batcher.pendingEvents);
    if (this.batcher.pendingEvents === 0) for (const w of this.drainWaiters.splice(0)) w();
    this.pumpAndScheduleRetry();
  }
}

/** The records of a batch Kinesis accepted, sized as the shard counts them (data + partition key). */
function acknowledgedRecords(batch: Batch<ProducerItem>, results: readonly PutResult[]): AcknowledgedRecord[] {
  const out: AcknowledgedRecord[] = [];
  batch.records.forEach((record, i) => {
    const result = results[i];
    if (!result?.ok) return;
    const bytes = record.data.length + Buffer.byteLength(record.partitionKey);
    out.push(result.shardId === undefined ? { partitionKey: record.partitionKey, bytes } : { partitionKey: record.partitionKey, bytes, shardId: result.shardId });
  });
  return out;
}

/**
 * Reports what changed since the last call: a warning when a workspace (or shard) becomes hot, an
 * info when it cools down, and the hot-workspace gauges. The service calls it on a timer, so a key
 * whose traffic stopped still cools down.
 */
export function reportHotWorkspaces(tracker: HotWorkspaceTracker, nowMs: number, logger: Logger, metrics: CaptureMetrics): void {
  for (const t of tracker.evaluate(nowMs)) {
    const fields = { [t.scope]: t.key, recordsPerSecond: round(t.recordsPerSecond), bytesPerSecond: Math.round(t.bytesPerSecond), utilization: round(t.utilization) };
    const lowerBound = t.scope === 'workspace' ? 'other workspaces may share its shard' : 'other capture instances may write to it';
    if (t.state === 'hot') {
      logger.warn(fields, `${t.scope} nearing the Kinesis shard write limit (${lowerBound}); see runbooks/capture-hot-workspace.md`);
    } else {
      logger.info(fields, `${t.scope} below the hot threshold again`);
      metrics.keyCooled(t.scope, t.key);
    }
  }
  metrics.hotKeys({ workspaces: tracker.hot('workspace', nowMs), shards: tracker.hot('shard', nowMs), maxWorkspaceUtilization: tracker.maxUtilization });
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
