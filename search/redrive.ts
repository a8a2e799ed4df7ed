// `taskflow search redrive`: re-applies search's dead letters straight to the index, once the
// cause is fixed (a new upcaster, a validator fix). Not back through the stream as the router's
// redrive does: the index needs no stream position (every write is order-free and idempotent),
// and a record put back on the stream would be read again by every other consumer. A letter is
// prepared as the live path prepares an event (shard-processor.ts): its personal fields decrypted
// and an erased subject's data blanked, so it indexes what the live path would have.
import type { EventCheck } from '@taskflow/stream/events';
import { type EventPreparation, prepareEvents, redriveConsumerDeadLetters, type RedriveResult } from '@taskflow/stream';
import type { DeadLetterStore } from '../lib/dlq.js';
import { indexBatchOf } from './indexer.js';
import type { SearchIndex } from './search-index.js';

export const SEARCH_DLQ_SOURCE = 'search';

export interface SearchRedriveOptions {
  store: DeadLetterStore;
  index: SearchIndex;
  validate: EventCheck;
  reason?: string;
  id?: string;
  /** Decrypt and erased-subjects check, the service's own (lib/consumer-reading.ts); absent: applied as stored. */
  prepare?: EventPreparation;
}

export function redriveSearchDeadLetters(opts: SearchRedriveOptions): Promise<RedriveResult> {
  const { index, prepare = {}, ...rest } = opts;
  return redriveConsumerDeadLetters({ ...rest, source: SEARCH_DLQ_SOURCE, apply: async (events) => index.apply(indexBatchOf(await prepareEvents(events, prepare))) });
}
