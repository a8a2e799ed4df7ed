// How a Firehose delivery stream turns records into S3 objects, free of timers and I/O: records
// are buffered as they arrive and delivered as one object once the buffer holds SizeInMBs or its
// oldest record is IntervalInSeconds old, whichever comes first. The object's key is
// `<prefix>YYYY/MM/dd/HH/<stream>-<version>-YYYY-MM-dd-HH-mm-ss-<uuid>` (UTC, the arrival time of
// the object's oldest record), then the stream's FileExtension, or `.gz` with GZIP as Firehose
// does. Firehose concatenates records as they are: whoever puts them adds the newline.

export const FIREHOSE_LIMITS = {
  recordsPerCall: 500,
  bytesPerCall: 4 * 1024 * 1024,
  bytesPerRecord: 1000 * 1024,
} as const;

export interface BufferingHints {
  /** 1–128 in Firehose. */
  sizeInMBs: number;
  /** 0–900 in Firehose; 0 delivers at the next opportunity. */
  intervalInSeconds: number;
}

export interface Buffered {
  data: Uint8Array;
  arrivedAtMs: number;
}

export interface DueObject {
  records: Buffered[];
  bytes: number;
  oldestArrivedAtMs: number;
}

export class DeliveryBuffer {
  private records: Buffered[] = [];
  private bytes = 0;

  constructor(private readonly hints: BufferingHints) {}

  get size(): { records: number; bytes: number } {
    return { records: this.records.length, bytes: this.bytes };
  }

  add(data: Uint8Array, nowMs: number): void {
    this.records.push({ data, arrivedAtMs: nowMs });
    this.bytes += data.length;
  }

  /** When the buffer will be due by age (undefined when empty); it may be due earlier by size. */
  dueAt(): number | undefined {
    const oldest = this.records[0];
    return oldest ? oldest.arrivedAtMs + this.hints.intervalInSeconds * 1000 : undefined;
  }

  isDue(nowMs: number): boolean {
    const at = this.dueAt();
    return at !== undefined && (nowMs >= at || this.bytes >= this.sizeLimit());
  }

  /**
   * The next object when due: the oldest records up to the size hint (at least one), in arrival
   * order; the rest stay buffered with their own arrival times.
   */
  takeDue(nowMs: number): DueObject | undefined {
    if (!this.isDue(nowMs)) return undefined;
    const limit = this.sizeLimit();
    let n = 0;
    let bytes = 0;
    while (n < this.records.length && (n === 0 || bytes + this.records[n]!.data.length <= limit)) bytes += this.records[n++]!.data.length;
    const records = this.records.splice(0, n);
    this.bytes -= bytes;
    return { records, bytes, oldestArrivedAtMs: records[0]!.arrivedAtMs };
  }

  /** Everything buffered, due or not (a stop). */
  takeAll(): DueObject | undefined {
    const records = this.records.splice(0);
    if (records.length === 0) return undefined;
    const bytes = this.bytes;
    this.bytes = 0;
    return { records, bytes, oldestArrivedAtMs: records[0]!.arrivedAtMs };
  }

  private sizeLimit(): number {
    return this.hints.sizeInMBs * 1024 * 1024;
  }
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** `YYYY/MM/dd/HH/` of a time, in UTC: Firehose's default (and our loader's) hourly prefix. */
export function hourPrefix(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}/${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())}/${pad(d.getUTCHours())}/`;
}

/** The extension Firehose gives an object: FileExtension when set, else `.gz` for GZIP, none uncompressed. */
export function fileExtension(compression: 'GZIP' | 'UNCOMPRESSED', configured?: string): string {
  return configured ?? (compression === 'GZIP' ? '.gz' : '');
}

export function objectKey(o: { prefix: string; streamName: string; version: number; oldestArrivedAtMs: number; uuid: string; extension: string }): string {
  const d = new Date(o.oldestArrivedAtMs);
  const stamp = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}-${pad(d.getUTCHours())}-${pad(d.getUTCMinutes())}-${pad(d.getUTCSeconds())}`;
  return `${o.prefix}${hourPrefix(o.oldestArrivedAtMs)}${o.streamName}-${o.version}-${stamp}-${o.uuid}${o.extension}`;
}

/** Where an object that could not be delivered goes: `<errorPrefix><error-output-type>/YYYY/MM/dd/HH/…`, as Firehose's `!{firehose:error-output-type}`. */
export function errorObjectKey(o: Parameters<typeof objectKey>[0] & { errorPrefix: string; errorType: string }): string {
  return objectKey({ ...o, prefix: `${o.errorPrefix}${o.errorType}/` });
}

export type FirehoseLimits = { readonly [K in keyof typeof FIREHOSE_LIMITS]: number };

/** A refusal as Firehose answers it: the error type (`__type`) and its message. */
export interface Refusal {
  type: 'ValidationException' | 'InvalidArgumentException';
  message: string;
}

/** Firehose's answer to a request body larger than any call within the limits can be (its records base64-encoded). */
export function tooLargeCall(limits: FirehoseLimits = FIREHOSE_LIMITS): Refusal {
  return { type: 'InvalidArgumentException', message: `Records size exceeds ${limits.bytesPerCall / (1024 * 1024)} MB limit` };
}

/** The largest request body a call within the limits can need: its records as base64, with room for the JSON around them. */
export function maxRequestBytes(limits: FirehoseLimits = FIREHOSE_LIMITS): number {
  return Math.ceil(limits.bytesPerCall / 3) * 4 + limits.recordsPerCall * 64 + 64 * 1024;
}

/**
 * A PutRecordBatch (`records`) or PutRecord (`record`) that breaks Firehose's limits, answered as
 * Firehose does: counts and record sizes fail its request validation (ValidationException, the
 * Coral wording, records numbered from 1), the total its own check (InvalidArgumentException).
 */
export function limitViolation(sizes: readonly number[], member: 'records' | 'record' = 'records', limits: FirehoseLimits = FIREHOSE_LIMITS): Refusal | undefined {
  const errors: string[] = [];
  if (member === 'records' && sizes.length === 0) errors.push("Value '[]' at 'records' failed to satisfy constraint: Member must have length greater than or equal to 1");
  if (sizes.length > limits.recordsPerCall) errors.push(`Value at 'records' failed to satisfy constraint: Member must have length less than or equal to ${limits.recordsPerCall}`);
  for (const [i, size] of sizes.entries()) {
    if (size > limits.bytesPerRecord) {
      const at = member === 'records' ? `records.${i + 1}.member.data` : 'record.data';
      errors.push(`Value 'java.nio.HeapByteBuffer[pos=0 lim=${size} cap=${size}]' at '${at}' failed to satisfy constraint: Member must have length less than or equal to ${limits.bytesPerRecord}`);
    }
  }
  if (errors.length > 0) return { type: 'ValidationException', message: `${errors.length} validation error${errors.length > 1 ? 's' : ''} detected: ${errors.join('; ')}` };
  if (sizes.reduce((a, b) => a + b, 0) > limits.bytesPerCall) return tooLargeCall(limits);
  return undefined;
}
