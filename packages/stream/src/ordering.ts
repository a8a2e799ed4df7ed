// Per-workspace order and dedup (docs/ARCHITECTURE.md, "Order is per workspace"): a high-water mark of
// (commit LSN, txIndex) per workspace; an event at or below it is a duplicate. Within one batch
// events are put back in order first, so a reordered batch loses nothing. The marks travel with
// the shard checkpoint as an opaque string, so a restarted reader keeps them.
import { comparePositions, eventId, parseEventId, type EventPosition } from '../../../lib/event-id.js';
import type { StreamEvent } from './change-event.js';

export type HighWaterMarks = ReadonlyMap<string, EventPosition>;

export interface AdmitResult {
  /** New events, each workspace's in position order; workspaces keep their first-arrival order. */
  admitted: StreamEvent[];
  /** Events at or below their workspace's mark, or repeated within the batch. */
  duplicates: number;
  /** Admitted events that arrived after a later event of their workspace and were moved back. */
  reordered: number;
  marks: HighWaterMarks;
}

export function admitBatch(marks: HighWaterMarks, events: readonly StreamEvent[]): AdmitResult {
  const byWorkspace = new Map<string, StreamEvent[]>();
  for (const e of events) {
    const list = byWorkspace.get(e.workspaceId);
    if (list) list.push(e);
    else byWorkspace.set(e.workspaceId, [e]);
  }
  const next = new Map(marks);
  const admitted: StreamEvent[] = [];
  let duplicates = 0;
  let reordered = 0;
  for (const [ws, arrived] of byWorkspace) {
    let maxSoFar: EventPosition | undefined;
    const lateIds = new Set<string>();
    for (const e of arrived) {
      if (maxSoFar && comparePositions(e.position, maxSoFar) < 0) lateIds.add(e.id);
      if (!maxSoFar || comparePositions(e.position, maxSoFar) > 0) maxSoFar = e.position;
    }
    // Arrived in order (no late event): already sorted, as the stable sort would leave it.
    const sorted = lateIds.size === 0 ? arrived : [...arrived].sort((a, b) => comparePositions(a.position, b.position));
    let mark = next.get(ws);
    for (const e of sorted) {
      if (mark && comparePositions(e.position, mark) <= 0) {
        duplicates += 1;
        continue;
      }
      if (lateIds.has(e.id)) reordered += 1;
      admitted.push(e);
      mark = e.position;
    }
    // Delete first: the map's order is then the order marks last moved (see boundMarks).
    if (mark && mark !== next.get(ws)) {
      next.delete(ws);
      next.set(ws, mark);
    }
  }
  return { admitted, duplicates, reordered, marks: next };
}

/**
 * Keeps the `max` most recently advanced marks: the state lives in the lease item (400 KB). A
 * forgotten workspace loses only the O(1) duplicate filter; the changelog's lookup by id still
 * keeps a duplicate from getting a second seq, and projection writes are conditional.
 */
export function boundMarks(marks: HighWaterMarks, max: number): HighWaterMarks {
  if (marks.size <= max) return marks;
  return new Map([...marks].slice(marks.size - max));
}

/**
 * Checkpoint state: `{"v":2,"marks":"<packMarks>"}`, or `{"v":1,"marks":{"<ws>":"<event id>"}}`
 * when a workspace id is not a lower-case UUID (and as states written before v2 read).
 */
export function serializeMarks(marks: HighWaterMarks): string {
  const packed = packMarks(marks);
  if (packed !== undefined) return JSON.stringify({ v: 2, marks: packed });
  const obj: Record<string, string> = {};
  for (const [ws, pos] of marks) obj[ws] = eventId(pos);
  return JSON.stringify({ v: 1, marks: obj });
}

export function parseMarks(state: string | undefined): Map<string, EventPosition> {
  if (!state) return new Map();
  const parsed = JSON.parse(state) as { v?: number; marks?: unknown };
  return readMarks(parsed.v, parsed.marks);
}

/** The marks of a state object as either version writes them (empty for an unknown version). */
export function readMarks(version: unknown, marks: unknown): Map<string, EventPosition> {
  if (version === 2 && typeof marks === 'string') return unpackMarks(marks);
  const out = new Map<string, EventPosition>();
  if (version !== 1 || typeof marks !== 'object' || marks === null) return out;
  for (const [ws, id] of Object.entries(marks as Record<string, string>)) out.set(ws, parseEventId(id));
  return out;
}

const PACKED_MARK_BYTES = 28;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAX_LSN = (1n << 64n) - 1n;

/**
 * The marks in their order, base64 of 28 bytes each: the workspace UUID's 16, the commit LSN's 8
 * and the txIndex's 4 (big-endian). 37 characters a workspace instead of the JSON's 67: the
 * state is rewritten with every checkpoint and renewal of the lease item, at 1 WRU per KB.
 * Undefined when a workspace id is not a lower-case UUID.
 */
export function packMarks(marks: HighWaterMarks): string | undefined {
  const buf = Buffer.allocUnsafe(marks.size * PACKED_MARK_BYTES);
  let at = 0;
  for (const [ws, pos] of marks) {
    if (!UUID.test(ws) || pos.commitLsn < 0n || pos.commitLsn > MAX_LSN || !Number.isInteger(pos.txIndex) || pos.txIndex < 0 || pos.txIndex > 0xffffffff) return undefined;
    buf.write(ws.slice(0, 8) + ws.slice(9, 13) + ws.slice(14, 18) + ws.slice(19, 23) + ws.slice(24), at, 16, 'hex');
    buf.writeBigUInt64BE(pos.commitLsn, at + 16);
    buf.writeUInt32BE(pos.txIndex, at + 24);
    at += PACKED_MARK_BYTES;
  }
  return buf.toString('base64');
}

export function unpackMarks(packed: string): Map<string, EventPosition> {
  const buf = Buffer.from(packed, 'base64');
  if (buf.length % PACKED_MARK_BYTES !== 0) throw new RangeError(`packed marks of ${buf.length} bytes are not whole ${PACKED_MARK_BYTES}-byte entries`);
  const marks = new Map<string, EventPosition>();
  for (let at = 0; at < buf.length; at += PACKED_MARK_BYTES) {
    const hex = buf.toString('hex', at, at + 16);
    const ws = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    marks.set(ws, { commitLsn: buf.readBigUInt64BE(at + 16), txIndex: buf.readUInt32BE(at + 24) });
  }
  return marks;
}

/** A child shard after a reshard starts from the highest mark of each workspace among its parents. */
export function mergeMarks(states: readonly (string | undefined)[]): Map<string, EventPosition> {
  const merged = new Map<string, EventPosition>();
  for (const state of states) {
    for (const [ws, pos] of parseMarks(state)) {
      const current = merged.get(ws);
      if (!current || comparePositions(pos, current) > 0) merged.set(ws, pos);
    }
  }
  return merged;
}
