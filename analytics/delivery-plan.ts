// How the archiver hands records to Firehose, free of I/O: PutRecordBatch calls within
// Firehose's limits (500 records, 4 MiB per call, 1,000 KiB per record), and after each round
// the records to send again — only the failed ones, in their order — with a full-jitter backoff
// when Firehose throttled (a whole call refused with ServiceUnavailableException, or records
// failed with that code). A call Firehose refuses as a whole for its size (ValidationException,
// InvalidArgumentException: our count of the limits and Firehose's disagree) is sent again in
// halves; a single record it refuses is handed back to be dead-lettered, never dropped or retried.

export const PUT_RECORD_BATCH_LIMITS = {
  recordsPerCall: 500,
  bytesPerCall: 4 * 1024 * 1024,
  bytesPerRecord: 1000 * 1024,
} as const;

export type BatchLimits = typeof PUT_RECORD_BATCH_LIMITS;

export const THROTTLED = 'ServiceUnavailableException';
/** The per-record code of a record Firehose refused alone (not one of Firehose's own codes). */
export const REFUSED = 'taskflow.Refused';


/**
 * Contiguous [start, end) ranges covering `sizes` in order, each a legal PutRecordBatch call.
 * Every size must be at most `bytesPerRecord` (larger records cannot go to Firehose at all).
 */
export function planCalls(sizes: readonly number[], limits: BatchLimits = PUT_RECORD_BATCH_LIMITS): Array<[number, number]> {
  const calls: Array<[number, number]> = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < sizes.length; i++) {
    const size = sizes[i]!;
    if (size > limits.bytesPerRecord) throw new RangeError(`record ${i} is ${size} bytes, above Firehose's ${limits.bytesPerRecord}`);
    if (i > start && (i - start >= limits.recordsPerCall || bytes + size > limits.bytesPerCall)) {
      calls.push([start, i]);
      start = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (start < sizes.length) calls.push([start, sizes.length]);
  return calls;
}

/** What one call returned: per record, undefined when accepted or its ErrorCode; or the whole call throttled. */
export type CallOutcome = { kind: 'answered'; errors: readonly (string | undefined)[] } | { kind: 'throttled' } | { kind: 'refused'; message: string };

export interface RoundResult<T> {
  /** To send again, in their original order. */
  retry: T[];
  /** Firehose asked us to slow down: back off before the next round. */
  throttled: boolean;
  /** Refused by Firehose on their own (REFUSED): not to be sent again. */
  refused: T[];
}

/**
 * The records of a round still to send, given the outcomes of its calls so far (in call order).
 * A throttled call stops the round: it and every later call's records are sent again.
 */
export function afterRound<T>(records: readonly T[], calls: ReadonlyArray<[number, number]>, outcomes: readonly CallOutcome[]): RoundResult<T> {
  const retry: T[] = [];
  const refused: T[] = [];
  let throttled = false;
  for (const [c, [start, end]] of calls.entries()) {
    const outcome = outcomes[c];
    if (!outcome || outcome.kind !== 'answered') {
      throttled ||= outcome !== undefined;
      retry.push(...records.slice(start, end));
      continue;
    }
    for (let i = start; i < end; i++) {
      const error = outcome.errors[i - start];
      if (error === REFUSED) refused.push(records[i]!);
      else if (error !== undefined) {
        retry.push(records[i]!);
        if (error === THROTTLED) throttled = true;
      }
    }
  }
  return { retry, throttled, refused };
}
