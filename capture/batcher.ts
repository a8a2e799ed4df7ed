// Plans PutRecords batches (pure, time and randomness passed in).
//
// Ordering rule: a partition key (workspace) has at most ONE record in flight. PutRecords may
// fail some records of a request and accept later ones, so sending record n+1 of a key while n
// could still fail would reorder that workspace; instead the key waits until n is acknowledged,
// and a failed record goes back to the front of its key's queue and is retried after a
// full-jitter backoff. Aggregation (KPL format) is what keeps this fast for a busy workspace: the
// one record in flight carries every event of the key that was waiting, up to 1 MiB.
//
// Linger: at a moderate rate every transaction would otherwise be a request of its own, and a
// request's fixed cost (SDK, signing, HTTP) is most of capture's CPU there. With `linger` set, a
// batch waits until its oldest sendable event has waited `ms` (or the queue holds a request's
// worth), so a few milliseconds of latency buy requests that carry many transactions.
import { type BackoffPolicy, backoffDelay } from '../lib/backoff.js';
import { AggregatedSize, type Compression, KINESIS_MAX_RECORD_BYTES, compressRecord, encodeAggregated, encodePlain } from '@taskflow/stream/codec';

export interface BatchLimits {
  /** PutRecords: at most 500 records … */
  maxRecords: number;
  /** … and 5 MiB (data plus partition keys) per request. */
  maxBatchBytes: number;
  /** One record: data plus partition key at most 1 MiB. */
  maxRecordBytes: number;
}

export const KINESIS_LIMITS: BatchLimits = { maxRecords: 500, maxBatchBytes: 5 * 1024 * 1024, maxRecordBytes: KINESIS_MAX_RECORD_BYTES };

/** Queued this much, a batch goes without lingering: a drain's requests are full anyway. */
export const LINGER_FULL = { events: 500, bytes: 256 * 1024 };

export interface BatcherOptions {
  aggregate: boolean;
  compression: Compression;
  limits: BatchLimits;
  backoff: BackoffPolicy;
  /** Hold a batch up to `ms` after its oldest event was queued, unless `events` or `bytes` are queued (absent: send at once). */
  linger?: Linger;
}

export interface Linger {
  ms: number;
  events: number;
  bytes: number;
}

/** What the batcher moves: one envelope's JSON bytes for one partition key. */
export interface Outgoing {
  partitionKey: string;
  data: Uint8Array;
}

export interface PlannedRecord<T extends Outgoing> {
  partitionKey: string;
  data: Uint8Array;
  /** The events in this record, in order. */
  items: T[];
}

export interface Batch<T extends Outgoing> {
  records: PlannedRecord<T>[];
  bytes: number;
}

interface KeyState<T> {
  queue: T[];
  inFlight: boolean;
  /** Consecutive failures of this key's record. */
  failures: number;
  notBefore: number;
  /** When the oldest event of `queue` was queued (the linger counts from it). */
  since: number;
}

export type EnqueueResult = { ok: true } | { ok: false; reason: 'RECORD_TOO_LARGE'; message: string };

export class Batcher<T extends Outgoing> {
  /** Every key with events queued or in flight. */
  private readonly keys = new Map<string, KeyState<T>>();
  /**
   * Keys with events queued and nothing in flight, in round-robin order: a key joins at the back
   * when it becomes sendable, so a busy workspace cannot starve the others. Planning a batch looks
   * only at these, so its cost follows the keys that can send, not every workspace in flight.
   */
  private readonly sendable = new Map<string, KeyState<T>>();
  private events = 0;
  private bytes = 0;
  /** Events (and their bytes) queued and not in flight: what a request could carry. */
  private queuedEvents = 0;
  private queuedBytes = 0;

  constructor(private readonly opts: BatcherOptions) {}

  /** Queues an event behind the earlier ones of its key; refuses one that no record can hold. */
  enqueue(item: T, nowMs = 0): EnqueueResult {
    const pk = Buffer.byteLength(item.partitionKey);
    if (item.data.length + pk > this.opts.limits.maxRecordBytes) {
      const compressed = this.opts.compression === 'none' ? undefined : encodePlain(item.data, this.opts.compression).length;
      if (compressed === undefined || compressed + pk > this.opts.limits.maxRecordBytes) {
        return {
          ok: false,
          reason: 'RECORD_TOO_LARGE',
          message: `event of ${item.data.length} bytes${compressed === undefined ? '' : ` (${compressed} compressed)`} exceeds the Kinesis record limit of ${this.opts.limits.maxRecordBytes} bytes`,
        };
      }
    }
    let state = this.keys.get(item.partitionKey);
    if (!state) {
      state = { queue: [], inFlight: false, failures: 0, notBefore: 0, since: nowMs };
      this.keys.set(item.partitionKey, state);
    }
    if (state.queue.length === 0) {
      state.since = nowMs;
      if (!state.inFlight) this.sendable.set(item.partitionKey, state);
    }
    state.queue.push(item);
    this.events += 1;
    this.bytes += item.data.length;
    this.queuedEvents += 1;
    this.queuedBytes += item.data.length;
    return { ok: true };
  }

  /** Events queued or in flight. */
  get pendingEvents(): number {
    return this.events;
  }
  get pendingBytes(): number {
    return this.bytes;
  }

  /** Whether batches wait for their linger: set, and less than a request's worth is queued. */
  private get lingering(): boolean {
    const l = this.opts.linger;
    return l !== undefined && l.ms > 0 && this.queuedEvents < l.events && this.queuedBytes < l.bytes;
  }

  /** When a sendable key may go: after its backoff and, while lingering, its linger. */
  private readyAt(state: KeyState<T>, lingering: boolean): number {
    return lingering ? Math.max(state.notBefore, state.since + this.opts.linger!.ms) : state.notBefore;
  }

  /**
   * The next request to send, built from keys that have nothing in flight and are not backing
   * off; while lingering, none until one of them has lingered long enough (then all go together).
   */
  next(nowMs: number): Batch<T> | undefined {
    if (this.lingering) {
      let due = false;
      for (const state of this.sendable.values()) if ((due = this.readyAt(state, true) <= nowMs)) break;
      if (!due) return undefined;
    }
    const records: PlannedRecord<T>[] = [];
    let bytes = 0;
    for (const [key, state] of this.sendable) {
      if (records.length >= this.opts.limits.maxRecords) break;
      if (state.notBefore > nowMs) continue;
      const record = this.buildRecord(key, state.queue);
      const size = record.data.length + Buffer.byteLength(key);
      if (bytes + size > this.opts.limits.maxBatchBytes) break; // this key leads the next batch
      state.queue.splice(0, record.items.length);
      this.queuedEvents -= record.items.length;
      for (const item of record.items) this.queuedBytes -= item.data.length;
      state.inFlight = true;
      this.sendable.delete(key);
      records.push(record);
      bytes += size;
    }
    return records.length === 0 ? undefined : { records, bytes };
  }

  /**
   * Results of a sent batch, per record. Returns the acknowledged items (in order per key).
   * Failed records go back to the front of their key's queue and back off.
   */
  settle(batch: Batch<T>, succeeded: readonly boolean[], nowMs: number, random: () => number): T[] {
    const acked: T[] = [];
    batch.records.forEach((record, i) => {
      const state = this.keys.get(record.partitionKey)!;
      state.inFlight = false;
      if (succeeded[i] === true) {
        state.failures = 0;
        state.notBefore = 0;
        acked.push(...record.items);
        this.events -= record.items.length;
        for (const item of record.items) this.bytes -= item.data.length;
        if (state.queue.length === 0) this.keys.delete(record.partitionKey);
        else this.sendable.set(record.partitionKey, state);
      } else {
        state.queue.unshift(...record.items);
        this.queuedEvents += record.items.length;
        for (const item of record.items) this.queuedBytes += item.data.length;
        state.notBefore = nowMs + backoffDelay(state.failures, random(), this.opts.backoff);
        state.failures += 1;
        this.sendable.set(record.partitionKey, state);
      }
    });
    return acked;
  }

  /**
   * When the earliest sendable key that is backing off or lingering may go (undefined: none is
   * waiting; keys free to go now are sent when a request in flight returns).
   */
  nextSendAt(nowMs: number): number | undefined {
    const lingering = this.lingering;
    let at: number | undefined;
    for (const state of this.sendable.values()) {
      const ready = this.readyAt(state, lingering);
      if (ready <= nowMs) continue;
      if (at === undefined || ready < at) at = ready;
    }
    return at;
  }

  private buildRecord(key: string, queue: readonly T[]): PlannedRecord<T> {
    const first = queue[0]!;
    const limit = this.opts.limits.maxRecordBytes - Buffer.byteLength(key);
    if (!this.opts.aggregate || queue.length === 1) return this.plain(key, first);
    // aws-kinesis-agg builds at most 1 MiB of uncompressed user records per aggregated record
    const size = new AggregatedSize(key);
    const items: T[] = [];
    for (const item of queue) {
      if (size.total + AggregatedSize.recordCost(item.data.length) > limit) break;
      size.add(item.data.length);
      items.push(item);
    }
    if (items.length <= 1) return this.plain(key, first);
    const raw = encodeAggregated(key, items.map((i) => i.data));
    const compressed = this.opts.compression === 'none' ? raw : compressRecord(raw, this.opts.compression);
    return { partitionKey: key, data: compressed.length <= limit ? compressed : raw, items };
  }

  private plain(key: string, item: T): PlannedRecord<T> {
    const limit = this.opts.limits.maxRecordBytes - Buffer.byteLength(key);
    let data: Uint8Array = item.data;
    if (this.opts.compression !== 'none') {
      const compressed = encodePlain(item.data, this.opts.compression);
      // gzip can grow incompressible data by a few bytes: keep whichever fits
      if (compressed.length <= limit || data.length > limit) data = compressed;
    }
    return { partitionKey: key, data, items: [item] };
  }
}
