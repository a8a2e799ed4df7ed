// Dead letters of a stream consumer that applies events itself (search, notifications): records
// that do not decode to a valid event go to the dead-letter store, keyed by their Kinesis record;
// redrive applies them straight to the consumer's own store once the cause is fixed — not back
// through the stream, which every other consumer would read again.
import { decodeEvent, type DlqReason, type EventCheck, isForConsumer, type StreamEvent } from './change-event.js';
import type { ErasedSubjects } from './erased-subjects.js';
import type { DeadLetter, DeadLetterStore } from '../../../lib/dlq.js';
import type { ProcessBatch } from './consumer/processor.js';
import type { Logger } from '../../../lib/logger.js';

export interface ConsumerDeadLetter {
  reason: DlqReason | 'undecodable_record';
  message: string;
  bytes: Uint8Array;
  origin: { shardId: string; sequenceNumber: string; subSequenceNumber?: number };
}

export interface ConsumerDeadLetterSink {
  put(letter: ConsumerDeadLetter): Promise<void>;
}

/** The dead-letter store as a consumer's sink, under `source`. */
export function deadLetterSink(dlq: DeadLetterStore, source: string, logger: Logger): ConsumerDeadLetterSink {
  return {
    async put(l) {
      const origin: Record<string, string> = { shardId: l.origin.shardId, sequenceNumber: l.origin.sequenceNumber };
      if (l.origin.subSequenceNumber !== undefined) origin.subSequenceNumber = String(l.origin.subSequenceNumber);
      // Keyed by the Kinesis record: reprocessing it after a crash finds the entry already there.
      const dedupeKey = `${origin.shardId}/${origin.sequenceNumber}/${origin.subSequenceNumber ?? ''}`;
      await dlq.put({ source, reason: l.reason, message: l.message, payload: l.bytes, origin, dedupeKey });
      logger.warn({ reason: l.reason, origin }, 'event dead-lettered');
    },
  };
}

/** How a consumer that applies events itself reads a batch: what checks it, where bad records go, what it decrypts. */
export interface BatchReading {
  /** The consumer's name: snapshot events aimed at another consumer are skipped (isForConsumer). */
  consumer: string;
  validate: EventCheck;
  deadLetters: ConsumerDeadLetterSink;
  /** Personal fields decrypted (null once shredded); absent: the events stay as they came. */
  decrypt?: (event: StreamEvent) => Promise<StreamEvent>;
  /** Erased subjects' data blanked, after decrypting (erased-subjects.ts); absent: not checked. */
  erased?: Pick<ErasedSubjects, 'scrub'>;
  metrics: { eventsIn(count: number): void; deadLettered(reason: ConsumerDeadLetter['reason']): void };
}

/** A batch's valid events in order, decrypted, erased subjects' data blanked; every other record is stored as a dead letter first. */
export async function readBatch(batch: ProcessBatch, shardId: string, reading: BatchReading): Promise<StreamEvent[]> {
  reading.metrics.eventsIn(batch.records.length);
  const valid = await validEventsOf(batch, shardId, reading.validate, reading.deadLetters, (reason) => reading.metrics.deadLettered(reason));
  return prepareEvents(valid.filter((e) => isForConsumer(e.envelope, reading.consumer)), reading);
}

/** What a consumer does to valid events before applying them, live or redriven: decrypt, then blank erased subjects. */
export type EventPreparation = Pick<BatchReading, 'decrypt' | 'erased'>;

/** The events decrypted (null once shredded) and with erased subjects' data blanked, as the live path and a redrive both apply them. */
export async function prepareEvents(events: readonly StreamEvent[], how: EventPreparation): Promise<StreamEvent[]> {
  const plain = how.decrypt ? await Promise.all(events.map(how.decrypt)) : [...events];
  return how.erased ? how.erased.scrub(plain) : plain;
}

async function validEventsOf(
  batch: ProcessBatch,
  shardId: string,
  validate: EventCheck,
  sink: ConsumerDeadLetterSink,
  onDeadLetter: (reason: ConsumerDeadLetter['reason']) => void,
): Promise<StreamEvent[]> {
  const events: StreamEvent[] = [];
  for (const r of batch.records) {
    const decoded = r.decodeError ? { ok: false as const, reason: 'undecodable_record' as const, message: r.decodeError.message } : decodeEvent(r.data, validate);
    if (decoded.ok) {
      events.push(decoded.event);
      continue;
    }
    await sink.put({
      reason: decoded.reason,
      message: decoded.message,
      bytes: r.data,
      origin: { shardId, sequenceNumber: r.sequenceNumber, subSequenceNumber: r.subSequenceNumber },
    });
    onDeadLetter(decoded.reason);
  }
  return events;
}

export interface RedriveOptions {
  store: DeadLetterStore;
  /** The consumer's dead letters: their `source`. */
  source: string;
  validate: EventCheck;
  reason?: string;
  id?: string;
  /** Only the dead letters this picks (a source whose letters are not all single events). */
  only?: (letter: DeadLetter) => boolean;
  /**
   * Applies the events that are valid now, in commit order, as the stream would have had them;
   * may answer the ones its destination refused (their letters stay, with its message).
   */
  apply(events: StreamEvent[]): Promise<void | ReadonlyArray<{ id: string; message: string }>>;
}

export interface RedriveResult {
  redriven: DeadLetter[];
  /** Still not a valid event: left in the store, with today's reason. */
  refused: { letter: DeadLetter; message: string }[];
}

export async function redriveConsumerDeadLetters(opts: RedriveOptions): Promise<RedriveResult> {
  const candidates = opts.id ? [await opts.store.get(opts.id)].filter((d): d is DeadLetter => d !== undefined && d.redrivenAt === undefined) : await opts.store.list({ source: opts.source });
  const chosen = candidates.filter((d) => d.source === opts.source && (opts.reason === undefined || d.reason === opts.reason) && (opts.only?.(d) ?? true));
  const events: StreamEvent[] = [];
  const letterOf = new Map<StreamEvent, DeadLetter>();
  const refused: RedriveResult['refused'] = [];
  for (const d of chosen) {
    const decoded = decodeEvent(d.payload, opts.validate);
    if (decoded.ok) {
      events.push(decoded.event);
      letterOf.set(decoded.event, d);
    } else refused.push({ letter: d, message: `${decoded.reason}: ${decoded.message}` });
  }
  events.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const notApplied = new Map((events.length > 0 ? ((await opts.apply(events)) ?? []) : []).map((r) => [r.id, r.message]));
  const redriven: DeadLetter[] = [];
  for (const e of events) {
    const message = notApplied.get(e.id);
    if (message === undefined) redriven.push(letterOf.get(e)!);
    else refused.push({ letter: letterOf.get(e)!, message });
  }
  // Marked only once applied: a crash in between redrives them again, harmlessly.
  for (const d of redriven) await opts.store.markRedriven(d.id);
  return { redriven, refused };
}
