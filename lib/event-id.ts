// Event identity and order (docs/ARCHITECTURE.md, "Identity is a WAL position"): an event's id is its commit LSN
// plus its index in the transaction, fixed-width so that string order equals (lsn, index) order.
import { TaskflowError } from './errors.js';

export interface EventPosition {
  /** Commit LSN of the transaction, as a bigint (Postgres LSN "X/Y" = X * 2^32 + Y). */
  commitLsn: bigint;
  /** 0-based index of the change within its transaction. */
  txIndex: number;
}

const LSN = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;

export function parseLsn(lsn: string): bigint {
  if (!LSN.test(lsn)) throw new TaskflowError('BAD_LSN', `not a Postgres LSN: "${lsn}"`);
  const slash = lsn.indexOf('/');
  return BigInt(Number.parseInt(lsn.slice(0, slash), 16)) * 0x1_0000_0000n + BigInt(Number.parseInt(lsn.slice(slash + 1), 16));
}

// Capture formats one commit LSN for every event of a transaction (its ids and data.source.lsn):
// each function remembers its last answer.
let formatted: { lsn: bigint; text: string } = { lsn: 0n, text: '0/0' };
let idPrefix: { lsn: bigint; text: string } = { lsn: 0n, text: '0'.repeat(16) };

export function formatLsn(lsn: bigint): string {
  if (lsn !== formatted.lsn) formatted = { lsn, text: `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}` };
  return formatted.text;
}

export function eventId(pos: EventPosition): string {
  if (pos.txIndex < 0 || pos.txIndex > 99_999_999 || !Number.isInteger(pos.txIndex)) {
    throw new TaskflowError('BAD_TX_INDEX', `transaction index out of range: ${pos.txIndex}`);
  }
  if (pos.commitLsn !== idPrefix.lsn) idPrefix = { lsn: pos.commitLsn, text: pos.commitLsn.toString(16).toUpperCase().padStart(16, '0') };
  return `${idPrefix.text}-${String(pos.txIndex).padStart(8, '0')}`;
}

export function parseEventId(id: string): EventPosition {
  const m = /^([0-9A-F]{16})-(\d{8})$/.exec(id);
  if (!m) throw new TaskflowError('BAD_EVENT_ID', `not a TaskFlow event id: "${id}"`);
  return { commitLsn: BigInt(`0x${m[1]}`), txIndex: Number(m[2]) };
}

/** Total order of events within a workspace: negative if a is before b. */
export function comparePositions(a: EventPosition, b: EventPosition): number {
  if (a.commitLsn !== b.commitLsn) return a.commitLsn < b.commitLsn ? -1 : 1;
  return a.txIndex - b.txIndex;
}
