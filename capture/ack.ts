// When may the replication slot be confirmed? A pure state machine with time passed in.
//
// Postgres skips, on restart, every transaction whose commit record starts before the slot's
// confirmed LSN. So the confirmed LSN may pass a transaction only once Kinesis has acknowledged
// all of its events (or they are in the dead-letter store), and it must never pass a transaction
// that is still in flight — even when later ones are already acknowledged. Positions that carry
// no events of ours (keepalives, heartbeat messages, empty transactions) advance it once
// everything received before them is acknowledged, so an idle or filtered-out database still
// lets the server recycle WAL.
//
// Acknowledging is done on a timer (tick), never per message: pg-logical-replication's
// per-message acknowledgement costs 38% of the throughput here (docs/ARCHITECTURE.md, "Capture and the source database").

export interface AckOptions {
  /** Send a status update at least this often even if the position did not move (wal_sender_timeout is 60 s by default). */
  keepaliveMs: number;
}

/** One transaction whose events are on their way to Kinesis. */
export interface InFlightTransaction {
  readonly lsn: bigint;
  pending: number;
}

export interface StatusUpdate {
  /** The LSN to report as written/flushed/applied. */
  lsn: bigint;
  /** Ask the server to answer with a keepalive carrying its current position (we are idle). */
  ping: boolean;
}

export class AckTracker {
  /** Received positions in arrival order; an entry is done when pending reaches 0. */
  private queue: InFlightTransaction[] = [];
  private head = 0;
  private safe: bigint;
  private lastSent: bigint;
  private lastSentAt = Number.NEGATIVE_INFINITY;

  constructor(
    /** The slot's confirmed LSN at start: nothing below it will be sent again. */
    start: bigint,
    private readonly opts: AckOptions = { keepaliveMs: 10_000 },
  ) {
    this.safe = start;
    this.lastSent = start;
  }

  /** A committed transaction with `events` deliveries to wait for (0: nothing of ours in it). */
  transaction(commitEndLsn: bigint, events: number): InFlightTransaction {
    const tx: InFlightTransaction = { lsn: commitEndLsn, pending: events };
    this.queue.push(tx);
    return tx;
  }

  /** `n` more deliveries belong to the transaction (snapshot rows placed after a watermark). */
  expect(tx: InFlightTransaction, n: number): void {
    tx.pending += n;
  }

  /** `n` of the transaction's events are acknowledged by Kinesis (or dead-lettered). */
  delivered(tx: InFlightTransaction, n = 1): void {
    if (n > tx.pending) throw new Error(`acknowledged ${n} events of a transaction with ${tx.pending} pending`);
    tx.pending -= n;
  }

  /**
   * A position with nothing of ours before it that we have not received: a keepalive's WAL
   * position or a non-transactional message. Call it only between transactions.
   */
  position(lsn: bigint): void {
    this.queue.push({ lsn, pending: 0 });
  }

  /** Highest LSN below which everything received is acknowledged. */
  confirmable(): bigint {
    while (this.head < this.queue.length) {
      const entry = this.queue[this.head]!;
      if (entry.pending > 0) break;
      if (entry.lsn > this.safe) this.safe = entry.lsn;
      this.head += 1;
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return this.safe;
  }

  /** Transactions (and positions) received but not yet all acknowledged. */
  get inFlight(): number {
    this.confirmable();
    return this.queue.length - this.head;
  }

  /** The last LSN handed out by tick: what the server has been told. */
  get confirmed(): bigint {
    return this.lastSent;
  }

  /** Called on a timer: the status update to send now, if any. */
  tick(nowMs: number): StatusUpdate | undefined {
    const target = this.confirmable();
    const idle = this.head === this.queue.length;
    if (target > this.lastSent || nowMs - this.lastSentAt >= this.opts.keepaliveMs || idle) {
      if (target > this.lastSent) this.lastSent = target;
      this.lastSentAt = nowMs;
      return { lsn: this.lastSent, ping: idle };
    }
    return undefined;
  }
}
