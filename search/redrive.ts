// `taskflow search redrive`: re-applies search's dead letters straight to the index, once the
// cause is fixed (a new upcaster, a validator fix). Not back through the stream as the router's
// redrive does: the index needs no stream position (every write is order-free and idempotent),
// and a record put back on the stream would be read again by every other consumer.
import { decodeEvent, type EventCheck, type StreamEvent } from '../lib/change-event.js';
import type { DeadLetter, DeadLetterStore } from '../lib/dlq.js';
import { indexBatchOf } from './indexer.js';
import type { SearchIndex } from './search-index.js';

export const SEARCH_DLQ_SOURCE = 'search';

export interface SearchRedriveOptions {
  store: DeadLetterStore;
  index: SearchIndex;
  validate: EventCheck;
  reason?: string;
  id?: string;
}

export interface SearchRedriveResult {
  redriven: DeadLetter[];
  /** Still not a valid event: left in the store, with today's reason. */
  refused: { letter: DeadLetter; message: string }[];
}

export async function redriveSearchDeadLetters(opts: SearchRedriveOptions): Promise<SearchRedriveResult> {
  const candidates = opts.id ? [await opts.store.get(opts.id)].filter((d): d is DeadLetter => d !== undefined && d.redrivenAt === undefined) : await opts.store.list({ source: SEARCH_DLQ_SOURCE });
  const chosen = candidates.filter((d) => d.source === SEARCH_DLQ_SOURCE && (opts.reason === undefined || d.reason === opts.reason));
  const events: StreamEvent[] = [];
  const redriven: DeadLetter[] = [];
  const refused: SearchRedriveResult['refused'] = [];
  for (const d of chosen) {
    const decoded = decodeEvent(d.payload, opts.validate);
    if (decoded.ok) {
      events.push(decoded.event);
      redriven.push(d);
    } else refused.push({ letter: d, message: `${decoded.reason}: ${decoded.message}` });
  }
  if (events.length > 0) await opts.index.apply(indexBatchOf(events));
  // Marked only once applied: a crash in between redrives them again, harmlessly.
  for (const d of redriven) await opts.store.markRedriven(d.id);
  return { redriven, refused };
}
