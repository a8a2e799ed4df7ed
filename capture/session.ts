// One replication session's logic, with no socket and no timer of its own: the service feeds it
// what the server sends and calls tick() on its acknowledgement timer; the clock, the producer,
// the dead-letter store and the connection are passed in, so tests drive it with synthetic
// transactions and time (session.test.ts).
//
// What it keeps true: the slot is confirmed only up to what Kinesis (or the DLQ) holds
// (AckTracker), the slot record is written before the server hears a position, reading stops
// while too many events wait for Kinesis, and a server silent for too long (while we were
// reading) ends the session.
import { createHash } from 'node:crypto';
import type { Pgoutput } from 'pg-logical-replication';
import type { BackoffPolicy } from '../lib/backoff.js';
import type { DeadLetterStore } from '../lib/dlq.js';
import { formatLsn } from '../lib/event-id.js';
import type { Logger } from '../lib/logger.js';
import type { ChangeEvent } from '../schemas/types.js';
import { retry } from '../lib/retry.js';
import { AckTracker, type InFlightTransaction } from './ack.js';
import { ChangeDecoder, type CommittedTransaction } from './decoder.js';
import type { CaptureMetrics } from './metrics.js';
import { OrderedEncryptor, type SubjectKeyCache } from './personal-fields.js';
import type { KinesisProducer } from './producer.js';
import type { Partition } from './partitions.js';
import { useCaptureColumnParsers } from './values.js';

/** Hook for snapshot watermarks: sees every transaction and logical message in stream order. */
export interface StreamObserver {
  onTransaction?(tx: CommittedTransaction, handle: InFlightTransaction, session: SessionApi): void;
  onMessage?(prefix: string, content: Uint8Array, session: SessionApi): void;
  /** A session started streaming. */
  onStreaming?(): void;
  /** A session ended: whatever waits for its stream will not get it. */
  onSessionEnd?(): void;
}

export interface SessionApi {
  /** Sends an event outside a WAL change (a snapshot row); `onDone` once Kinesis (or the DLQ) has it. */
  sendEvent(partitionKey: string, envelope: ChangeEvent, handle: InFlightTransaction, meta: { table: string; op: string }, onDone: () => void): void;
  deadLetter(reason: string, message: string, payload: Record<string, unknown>, table: string, onDone: () => void): void;
  ack: AckTracker;
}

export interface SessionOptions {
  /** The slot's confirmed position when the session started. */
  start: bigint;
  source: string;
  db: string;
  /** This capture's partition (capture/partitions.ts); unset, the only one. */
  partition?: Partition;
  /** Reading pauses above this many events waiting for Kinesis, and resumes below half of it. */
  maxBufferedEvents: number;
  /** No message (data or keepalive) from the server for this long ends the session. */
  serverSilenceMs: number;
  dlqBackoff: BackoffPolicy;
}

/** Stops and restarts reading the replication socket. */
export interface Backpressure {
  pause(): void;
  resume(): void;
}

export interface SessionPorts {
  producer: Pick<KinesisProducer, 'send' | 'pendingEvents'>;
  /** Reports `lsn` to the server as written, flushed and applied (a standby status update); `ping` asks for a keepalive back. */
  acknowledge(lsn: bigint, ping: boolean): void;
  backpressure: Backpressure;
  dlq: DeadLetterStore;
  /** Records a confirmable position before the server hears it: the slot is never ahead of the record. */
  recordConfirmed(lsn: bigint, nowMs: number): Promise<void>;
  observer: StreamObserver;
  logger: Logger;
  metrics: CaptureMetrics;
  now(): number;
  random(): number;
  /** Set when personal fields are encrypted before Kinesis (CAPTURE_ENCRYPT_PERSONAL_FIELDS). */
  personalFields?: SubjectKeyCache;
}

export class CaptureSession {
  readonly ack: AckTracker;
  readonly api: SessionApi;
  private readonly decoder: ChangeDecoder;
  private readonly ending = new AbortController();
  private readonly encryptor: OrderedEncryptor | undefined;
  private paused = false;
  private acking = false;
  private lastServerMessageAt: number;
  private lastDataAt: number;
  private serverWalEnd: bigint;

  constructor(
    private readonly opts: SessionOptions,
    private readonly ports: SessionPorts,
  ) {
    this.ack = new AckTracker(opts.start, { keepaliveMs: 10_000 });
    this.decoder = new ChangeDecoder({ source: opts.source, db: opts.db, ...(opts.partition ? { partition: opts.partition } : {}) });
    this.lastServerMessageAt = this.lastDataAt = ports.now();
    this.serverWalEnd = opts.start;
    if (ports.personalFields) this.encryptor = new OrderedEncryptor(ports.personalFields, { signal: this.ending.signal, backoff: opts.dlqBackoff, logger: ports.logger, random: ports.random });
    this.api = {
      ack: this.ack,
      sendEvent: (pk, envelope, handle, meta, onDone) => {
        ports.metrics.eventCaptured(meta.table, meta.op);
        this.sendEvent(pk, envelope, meta, onDone);
      },
      deadLetter: (reason, message, payload, table, onDone) => this.deadLetter(reason, message, Buffer.from(JSON.stringify(payload)), { table }, onDone),
    };
  }

  get ended(): boolean {
    return this.ending.signal.aborted;
  }

  /** Whether reading is paused for Kinesis to catch up. */
  get isPaused(): boolean {
    return this.paused;
  }

  /** Milliseconds since the last data message (an idle database gets a heartbeat). */
  idleMs(): number {
    return this.ports.now() - this.lastDataAt;
  }

  /** Resolves once no event waits for a subject key (at once without encryption). */
  async encryptionIdle(): Promise<void> {
    await this.encryptor?.idle();
  }

  /** Events read but not yet on Kinesis: the producer's, and those waiting for a key. */
  private get buffered(): number {
    return this.ports.producer.pendingEvents + (this.encryptor?.waiting ?? 0);
  }

  /** Stops the session's dead-letter retries; what was not stored is read again next session. */
  end(): void {
    this.ending.abort();
  }

  /** A keepalive from the server, reporting its WAL end. */
  keepalive(walEnd: bigint): void {
    this.lastServerMessageAt = this.ports.now();
    if (walEnd > this.serverWalEnd) this.serverWalEnd = walEnd;
    // Between transactions, everything before the keepalive has reached us.
    if (!this.decoder.inTransaction) this.ack.position(walEnd);
  }

  data(msg: Pgoutput.Message): void {
    this.lastServerMessageAt = this.lastDataAt = this.ports.now();
    useCaptureColumnParsers(msg);
    const out = this.decoder.handle(msg);
    if (!out) return;
    if (out.kind === 'message') {
      this.ack.position(out.lsn);
      this.ports.observer.onMessage?.(out.prefix, out.content, this.api);
      return;
    }
    this.transaction(out.tx);
  }

  /**
   * The acknowledgement timer: resumes reading once the buffer has drained, ends a session whose
   * server fell silent while we were reading, and confirms what may be confirmed. Resolves
   * 'silent' when the session should end.
   */
  async tick(): Promise<'ok' | 'silent'> {
    if (this.ended || this.acking) return 'ok';
    this.acking = true;
    const { ports, opts } = this;
    try {
      const now = ports.now();
      if (this.paused && this.buffered < opts.maxBufferedEvents / 2) {
        this.paused = false;
        this.lastServerMessageAt = now; // we were not reading: the silence was ours
        ports.backpressure.resume();
      }
      if (!this.paused && now - this.lastServerMessageAt > opts.serverSilenceMs) {
        ports.logger.warn({ silentMs: now - this.lastServerMessageAt }, 'no message from the server; reconnecting');
        return 'silent';
      }
      const update = this.ack.tick(now);
      if (!update) return 'ok';
      await ports.recordConfirmed(update.lsn, now);
      if (this.ended) return 'ok';
      // Exactly the commit's end: one byte past it could skip a transaction whose commit record starts there.
      ports.acknowledge(update.lsn, update.ping);
      ports.metrics.slotConfirmed(update.lsn, this.serverWalEnd > update.lsn ? this.serverWalEnd - update.lsn : 0n, this.ack.inFlight === 0);
    } catch (err) {
      ports.logger.warn({ err: describe(err) }, 'acknowledging the slot failed');
    } finally {
      this.acking = false;
    }
    return 'ok';
  }

  private transaction(tx: CommittedTransaction): void {
    const { ports } = this;
    const handle = this.ack.transaction(tx.commitEndLsn, tx.events.length + tx.deadRows.length);
    const commitMs = Date.parse(tx.commitTime);
    // The changes still travel, without an actor: a bad actor message is the application's bug, not a reason to stop the stream.
    if (tx.actorProblem) ports.logger.warn({ xid: tx.xid, lsn: formatLsn(tx.commitLsn), problem: tx.actorProblem }, 'actor message not attached');
    const delivered = () => {
      this.ack.delivered(handle);
      if (handle.pending === 0) ports.metrics.transactionDelivered(Math.max(0, ports.now() - commitMs) / 1000);
    };
    // Every update of a table not opted in (the default) has no message: counted, not a warning.
    if (tx.changedUnknown > 0) ports.metrics.changedUnknown(tx.changedUnknown);
    // The observer first: it reads the row images before encryption rewrites their personal fields in place.
    ports.observer.onTransaction?.(tx, handle, this.api);
    for (const ev of tx.events) {
      ports.metrics.eventCaptured(ev.table, ev.op);
      this.sendEvent(ev.partitionKey, ev.envelope, { table: ev.table, op: ev.op }, delivered);
    }
    for (const dead of tx.deadRows) {
      this.deadLetter(dead.reason, dead.message, Buffer.from(JSON.stringify(dead.payload)), { eventId: dead.id, table: dead.table, lsn: formatLsn(tx.commitLsn) }, delivered);
    }
  }

  private sendEvent(partitionKey: string, envelope: ChangeEvent, meta: { table: string; op: string }, done: () => void): void {
    if (this.encryptor) this.encryptor.submit(envelope, (encrypted) => this.put(partitionKey, encrypted, meta, done));
    else this.put(partitionKey, envelope, meta, done);
    if (!this.paused && this.buffered > this.opts.maxBufferedEvents) {
      this.paused = true;
      this.ports.backpressure.pause();
    }
  }

  private put(partitionKey: string, envelope: ChangeEvent, meta: { table: string; op: string }, done: () => void): void {
    const { ports } = this;
    const data = Buffer.from(JSON.stringify(envelope));
    const r = ports.producer.send({ partitionKey, data, onAck: done });
    if (!r.ok) {
      this.deadLetter(r.reason, r.message, data, { eventId: envelope.id, table: meta.table, op: meta.op }, done);
    }
  }

  /** Dead letters count as delivered once stored; storing is retried until the session ends. */
  private deadLetter(reason: string, message: string, payload: Uint8Array, origin: Record<string, string>, done: () => void): void {
    const { ports } = this;
    ports.metrics.deadLettered(reason);
    ports.logger.warn({ reason, origin }, `dead letter: ${message}`);
    // Resent after a restart, an event keeps its id (a snapshot row: its content), so its dead
    // letter is stored once.
    const dedupeKey = origin.eventId ?? `${origin.table ?? ''}:${createHash('sha256').update(payload).digest('hex')}`;
    retry(() => ports.dlq.put({ source: 'capture', reason, message, payload, origin, dedupeKey }), {
      policy: this.opts.dlqBackoff,
      signal: this.ending.signal,
      shouldRetry: () => true,
      random: ports.random,
      onRetry: (err) => ports.logger.warn({ err: describe(err) }, 'dead-letter store failed; retrying'),
    }).then(done, () => undefined); // given up only when the session ended: the next one reads the change again
  }
}

export function describe(err: unknown): { message: string; code?: string } {
  if (err instanceof Error) return { message: err.message, ...((err as { code?: string }).code ? { code: (err as { code?: string }).code } : {}) };
  return { message: String(err) };
}
