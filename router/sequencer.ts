// Per-project dense sequence numbers (docs/ARCHITECTURE.md, "Per-project sequence numbers"). A project's head holds
// the last seq given out and the highest event id among the events that got one. Assignment is a
// pure function of (head, ordered events, seqs already known for some ids), so reprocessing the
// same events from the same head always yields the same numbers:
//  - an event above head.lastId cannot have a seq yet: it gets the next one;
//  - an event at or below head.lastId may have one (reprocessing after a crash between the
//    changelog write and the checkpoint, a capture duplicate the marks no longer remember, a DLQ
//    redrive): the store looks it up by id, and only a truly unknown id gets a new seq.
// The head is the changelog's newest item (router/README.md, "Changelog"), so a crash after an
// item write gives its events their seqs again by lookup, and one before it the same new seqs.
import { comparePositions, parseEventId } from '../lib/event-id.js';
import type { RouterEvent } from './event.js';

export interface ProjectHead {
  seq: number;
  /** Highest event id that has a seq in this project, null before the first. */
  lastId: string | null;
}

export const EMPTY_HEAD: ProjectHead = { seq: 0, lastId: null };

export interface SequencedChange {
  seq: number;
  event: RouterEvent;
}

export interface SequencePlan {
  /** Every input event with its seq, in seq order (re-published ones included). */
  changes: SequencedChange[];
  /** The changes that got a new seq: these must be appended to the changelog. */
  fresh: SequencedChange[];
  head: ProjectHead;
}

/** Ids that might already have a seq and must be looked up before planning. */
export function idsToLookUp(head: ProjectHead, events: readonly RouterEvent[]): string[] {
  if (head.lastId === null) return [];
  const last = parseEventId(head.lastId);
  return events.filter((e) => comparePositions(e.position, last) <= 0).map((e) => e.id);
}

/** `events` are one project's, in position order, without repeats (see admitBatch). */
export function planSequence(head: ProjectHead, events: readonly RouterEvent[], known: ReadonlyMap<string, number>): SequencePlan {
  let seq = head.seq;
  let lastId = head.lastId;
  // Parsed once, not per event.
  let lastPosition = lastId === null ? null : parseEventId(lastId);
  const changes: SequencedChange[] = [];
  const fresh: SequencedChange[] = [];
  const seen = new Set<string>();
  for (const event of events) {
    if (seen.has(event.id)) continue;
    seen.add(event.id);
    const knownSeq = known.get(event.id);
    if (knownSeq !== undefined) {
      changes.push({ seq: knownSeq, event });
      continue;
    }
    seq += 1;
    const change = { seq, event };
    changes.push(change);
    fresh.push(change);
    if (lastPosition === null || comparePositions(event.position, lastPosition) > 0) {
      lastId = event.id;
      lastPosition = event.position;
    }
  }
  changes.sort((a, b) => a.seq - b.seq);
  return { changes, fresh, head: { seq, lastId } };
}
