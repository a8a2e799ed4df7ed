// The archiver: one ShardProcessor per leased shard of the change stream. Each batch's records
// are decoded and validated as every reader does (packages/stream/src/record-codec through the consumer,
// schemas/validate), malformed ones go to the dead-letter store with their reason, the rest go
// to Firehose as newline-terminated JSON lines packed into gzipped records (record-packing.ts;
// delivery-plan.ts: Firehose's limits, only failed records again, backoff when throttled), and
// the shard is checkpointed only once Firehose accepted all.
// A crash before the checkpoint re-reads the batch: the archive may hold an event twice, and the
// warehouse loader dedups by event id.
import { backoffDelay, type BackoffPolicy, sleep } from '../lib/backoff.js';
import type { DeadLetterStore } from '../lib/dlq.js';
import { type Checkpointer, isForConsumer, type ProcessBatch, type ShardInit, type ShardProcessor, type ShutdownReason, type UserRecord } from '@taskflow/stream';
import type { Logger } from '../lib/logger.js';
import type { ChangeEvent } from '../schemas/types.js';
import type { ValidationResult } from '../schemas/validate.js';
import { afterRound, type CallOutcome, planCalls, PUT_RECORD_BATCH_LIMITS, REFUSED, THROTTLED } from './delivery-plan.js';
import type { DeliveryStreamPort } from './firehose.js';
import { packLines, packRecord, type PackedRecord } from './record-packing.js';
import { type ArchiverMetrics, noopArchiverMetrics } from './metrics.js';

export type ArchiverDlqReason = 'undecodable_record' | 'malformed_json' | Exclude<Extract<ValidationResult, { ok: false }>['reason'], 'not_an_object'> | 'record_too_large';

export const DLQ_SOURCE = 'analytics-archiver';
const NEWLINE = 0x0a;

/** One archive line for a record, or why it cannot be archived. */
export function archiveLine(record: Pick<UserRecord, 'data' | 'decodeError'>, validate: (input: unknown) => ValidationResult): { ok: true; line: Uint8Array; event: ChangeEvent } | { ok: false; reason: ArchiverDlqReason; message: string } {
  if (record.decodeError) return { ok: false, reason: 'undecodable_record', message: record.decodeError.message };
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(record.data).toString('utf8'));
  } catch (err) {
    return { ok: false, reason: 'malformed_json', message: (err as Error).message };
  }
  const result = validate(parsed);
  if (!result.ok) return { ok: false, reason: result.reason === 'not_an_object' ? 'malformed_json' : result.reason, message: result.message };
  // The bytes as capture wrote them, unless upcast or spread over lines (one line per event).
  const json = result.upcastFrom !== undefined || record.data.includes(NEWLINE) ? Buffer.from(JSON.stringify(result.event)) : record.data;
  const line = Buffer.concat([json, Buffer.of(NEWLINE)]);
  if (line.length > PUT_RECORD_BATCH_LIMITS.bytesPerRecord) {
    return { ok: false, reason: 'record_too_large', message: `event is ${line.length} bytes as a line, above Firehose's ${PUT_RECORD_BATCH_LIMITS.bytesPerRecord} per record` };
  }
  return { ok: true, line, event: result.event };
}

export interface DeliverOptions {
  backoff: BackoffPolicy;
  random?: () => number;
  signal?: AbortSignal;
  metrics?: ArchiverMetrics;
}

/** A line Firehose refused on its own, with its answer. */
export interface RefusedLine {
  line: Uint8Array;
  message: string;
}

/**
 * One planned call. A call refused for its size goes again in halves, down to single records; a
 * single refused record is answered REFUSED (its message in `refusals`). Throttled means nothing
 * of this call was accepted.
 */
async function sendCall(stream: DeliveryStreamPort, records: readonly Uint8Array[], metrics: ArchiverMetrics, refusals: Map<Uint8Array, string>): Promise<CallOutcome> {
  const started = performance.now();
  const outcome = await stream.putRecordBatch(records);
  metrics.call((performance.now() - started) / 1000, outcome.kind === 'throttled' ? 'throttled' : outcome.kind === 'refused' ? 'refused' : 'answered');
  if (outcome.kind !== 'refused') return outcome;
  if (records.length === 1) {
    refusals.set(records[0]!, outcome.message);
    return { kind: 'answered', errors: [REFUSED] };
  }
  const mid = Math.ceil(records.length / 2);
  const first = await sendCall(stream, records.slice(0, mid), metrics, refusals);
  if (first.kind !== 'answered') return first;
  const second = await sendCall(stream, records.slice(mid), metrics, refusals);
  return { kind: 'answered', errors: [...first.errors, ...(second.kind === 'answered' ? second.errors : Array<string>(records.length - mid).fill(THROTTLED))] };
}

const linesIn = (records: readonly PackedRecord[]): number => records.reduce((n, r) => n + r.lines.length, 0);

/**
 * Sends every line, packed into gzipped records (record-packing.ts), until Firehose has accepted
 * it, or refused it on its own (returned, to be dead-lettered); rejects only on another call
 * failure or when aborted. A record of several lines refused alone (a Firehose stricter than its
 * documented limits) goes again as two, so only a line refused by itself is handed back.
 */
export async function deliverAll(stream: DeliveryStreamPort, lines: readonly Uint8Array[], options: DeliverOptions): Promise<RefusedLine[]> {
  const metrics = options.metrics ?? noopArchiverMetrics;
  const random = options.random ?? Math.random;
  const limit = PUT_RECORD_BATCH_LIMITS.bytesPerRecord;
  const refusals = new Map<Uint8Array, string>();
  const refusedLines: RefusedLine[] = [];
  let pending: PackedRecord[] = [];
  for (const r of packLines(lines, limit)) {
    if (r.data.length <= limit) pending.push(r);
    else refusedLines.push({ line: r.lines[0]!, message: `event is ${r.data.length} bytes gzipped, above Firehose's ${limit} per record` });
  }
  for (let failedRounds = 0; pending.length > 0; ) {
    if (options.signal?.aborted) throw new Error('delivery aborted: the shard is closing');
    const calls = planCalls(pending.map((r) => r.data.length));
    const outcomes: CallOutcome[] = [];
    for (const [start, end] of calls) {
      const outcome = await sendCall(
        stream,
        pending.slice(start, end).map((r) => r.data),
        metrics,
        refusals,
      );
      outcomes.push(outcome);
      if (outcome.kind === 'throttled') break;
    }
    const { retry, throttled, refused } = afterRound(pending, calls, outcomes);
    const split: PackedRecord[] = [];
    for (const r of refused) {
      if (r.lines.length === 1) refusedLines.push({ line: r.lines[0]!, message: refusals.get(r.data) ?? 'refused by Firehose' });
      else split.push(packRecord(r.lines.slice(0, Math.ceil(r.lines.length / 2))), packRecord(r.lines.slice(Math.ceil(r.lines.length / 2))));
    }
    const notAccepted = new Set([...retry, ...refused]);
    const accepted = pending.filter((r) => !notAccepted.has(r));
    metrics.delivered(linesIn(accepted));
    metrics.accepted(accepted.length, accepted.reduce((n, r) => n + r.data.length, 0));
    if (retry.length > 0) metrics.retried(retry.length, throttled);
    pending = [...retry, ...split];
    failedRounds = retry.length > 0 ? failedRounds + 1 : 0;
    if (retry.length > 0) await sleep(backoffDelay(failedRounds - 1, random(), options.backoff), options.signal);
  }
  return refusedLines;
}

export interface ArchiverDeps {
  /**
   * The archiver's consumer name (ARCHIVER_CONSUMER_NAME). A snapshot aimed at another consumer
   * is not archived: the archive (and the warehouse loaded from it) holds changes, and snapshots
   * taken for everyone; a rebuild of one consumer is not part of that history.
   */
  consumer: string;
  stream: DeliveryStreamPort;
  deadLetters: DeadLetterStore;
  validate: (input: unknown) => ValidationResult;
  backoff: BackoffPolicy;
  metrics?: ArchiverMetrics;
  logger: Logger;
}

export class ArchiverShardProcessor implements ShardProcessor {
  private readonly closing = new AbortController();
  private readonly metrics: ArchiverMetrics;

  constructor(
    private readonly shardId: string,
    private readonly deps: ArchiverDeps,
  ) {
    this.metrics = deps.metrics ?? noopArchiverMetrics;
  }

  async initialize(_init: ShardInit): Promise<void> {}

  async processRecords(batch: ProcessBatch, checkpointer: Checkpointer): Promise<void> {
    if (batch.records.length === 0) return;
    const lines: Uint8Array[] = [];
    const recordOf = new Map<Uint8Array, UserRecord>();
    for (const r of batch.records) {
      const result = archiveLine(r, this.deps.validate);
      if (result.ok) {
        if (!isForConsumer(result.event, this.deps.consumer)) continue;
        lines.push(result.line);
        recordOf.set(result.line, r);
        continue;
      }
      await this.deadLetter(r, result.reason, result.message);
    }
    const refused = await deliverAll(this.deps.stream, lines, { backoff: this.deps.backoff, signal: this.closing.signal, metrics: this.metrics });
    // Refused by Firehose itself: kept in the dead-letter store (redrivable), not lost and not retried forever.
    for (const { line, message } of refused) await this.deadLetter(recordOf.get(line)!, 'record_too_large', message);
    await checkpointer.checkpoint();
  }

  private async deadLetter(r: UserRecord, reason: ArchiverDlqReason, message: string): Promise<void> {
    const origin = { shardId: this.shardId, sequenceNumber: r.sequenceNumber, subSequenceNumber: String(r.subSequenceNumber) };
    // Keyed by the Kinesis record: re-reading the batch after a crash finds the entry already there.
    await this.deps.deadLetters.put({ source: DLQ_SOURCE, reason, message, payload: r.data, origin, dedupeKey: `${origin.shardId}/${origin.sequenceNumber}/${origin.subSequenceNumber}` });
    this.metrics.deadLettered(reason);
    this.deps.logger.warn({ reason, origin }, 'event dead-lettered');
  }

  async shutdown(_reason: ShutdownReason): Promise<void> {
    // Every processed batch is already checkpointed; a delivery still retrying gives up so the
    // shard can close (its batch is re-read by the next holder).
    this.closing.abort();
  }
}
