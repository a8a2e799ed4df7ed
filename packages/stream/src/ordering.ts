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

/** Checkpoint state: `{"v":1,"marks":{"<ws>":"<event id>"}}`. */
export function serializeMarks(marks: HighWaterMarks): string {
  const obj: Record<string, string> = {};
  for (const [ws, pos] of marks) obj[ws] = eventId(pos);
  return JSON.stringify({ v: 1, marks: obj });
}

export function parseMarks(state: string | undefined): Map<string, EventPosition> {
  const marks = new Map<string, EventPosition>();
  if (!state) return marks;
  const parsed = JSON.parse(state) as { v?: number; marks?: Record<string, string> };
  if (parsed.v !== 1 || typeof parsed.marks !== 'object' || parsed.marks === null) return marks;
  for (const [ws, id] of Object.entries(parsed.marks)) marks.set(ws, parseEventId(id));
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
