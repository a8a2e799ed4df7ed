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

/** The number written by 8 upper-case hex digits of `s` from `at`, or -1 if one is not. */
function hex8(s: string, at: number): number {
  let value = 0;
  for (let i = at; i < at + 8; i += 1) {
    const c = s.charCodeAt(i);
    const digit = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

/** The number written by 8 decimal digits of `s` from `at`, or -1 if one is not. */
function dec8(s: string, at: number): number {
  let value = 0;
  for (let i = at; i < at + 8; i += 1) {
    const digit = s.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/** `^([0-9A-F]{16})-(\d{8})$` read in place: every reader parses every event's id, and a regex match, its substrings and a BigInt parsed from text cost three times as much. */
export function parseEventId(id: string): EventPosition {
  const hi = id.length === 25 && id.charCodeAt(16) === 0x2d /* - */ ? hex8(id, 0) : -1;
  const lo = hi < 0 ? -1 : hex8(id, 8);
  const txIndex = lo < 0 ? -1 : dec8(id, 17);
  if (txIndex < 0) throw new TaskflowError('BAD_EVENT_ID', `not a TaskFlow event id: "${id}"`);
  // Below 2^53 (every LSN for decades) the number is exact, and one BigInt is made, not three.
  const commitLsn = hi < 0x20_0000 ? BigInt(hi * 0x1_0000_0000 + lo) : (BigInt(hi) << 32n) | BigInt(lo);
  return { commitLsn, txIndex };
}

/** Total order of events within a workspace: negative if a is before b. */
export function comparePositions(a: EventPosition, b: EventPosition): number {
  if (a.commitLsn !== b.commitLsn) return a.commitLsn < b.commitLsn ? -1 : 1;
  return a.txIndex - b.txIndex;
}
