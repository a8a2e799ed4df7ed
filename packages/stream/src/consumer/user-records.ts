// From Kinesis records to the user records a processor sees, and the position arithmetic that
// lets a checkpoint land inside an aggregated record.
import { TaskflowError } from '../../../../lib/errors.js';
import { decodeRecord } from '../record-codec.js';
import type { Position } from './leases.js';
import type { UserRecord } from './processor.js';
import type { RawRecord } from './shard-reader.js';

/** Kinesis sequence numbers are decimal strings of up to 128 bits. */
export function compareSequenceNumbers(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function comparePositions(a: Position, b: Position): number {
  return compareSequenceNumbers(a.sequenceNumber, b.sequenceNumber) || a.subSequenceNumber - b.subSequenceNumber;
}

/** De-aggregates and decompresses; a record that is not a contract form becomes one record with `decodeError`. */
export function toUserRecords(shardId: string, records: readonly RawRecord[], decode: (data: Uint8Array) => Uint8Array[] = decodeRecord): UserRecord[] {
  const out: UserRecord[] = [];
  for (const record of records) {
    const base = {
      shardId,
      sequenceNumber: record.sequenceNumber,
      partitionKey: record.partitionKey,
      ...(record.approximateArrivalTimestamp ? { approximateArrivalTimestamp: record.approximateArrivalTimestamp } : {}),
    };
    let parts: Uint8Array[];
    try {
      parts = decode(record.data);
    } catch (err) {
      const decodeError = err instanceof TaskflowError ? err : new TaskflowError('RECORD_CORRUPT', String(err), { cause: err });
      out.push({ ...base, subSequenceNumber: 0, data: record.data, decodeError });
      continue;
    }
    parts.forEach((data, subSequenceNumber) => out.push({ ...base, subSequenceNumber, data }));
  }
  return out;
}

/** The records strictly after `position` (all of them when there is none). */
export function recordsAfter(records: readonly UserRecord[], position: Position | undefined): UserRecord[] {
  if (!position) return [...records];
  return records.filter((r) => comparePositions(r, position) > 0);
}
