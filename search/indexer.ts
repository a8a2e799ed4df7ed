// From validated stream events to what they do to the search index: document changes,
// truncates, and the index's own membership projection (lib/membership-events.ts, the mapping the
// router's projection uses too). Pure.
import type { StreamEvent } from '@taskflow/stream/events';
import { membershipWrites } from '../lib/membership-events.js';
import { type DocChange, indexChangeOf, type TableTruncate } from './documents.js';
import type { IndexBatch } from './search-index.js';

export function indexBatchOf(events: readonly StreamEvent[]): IndexBatch {
  const changes: DocChange[] = [];
  const truncates: TableTruncate[] = [];
  for (const e of events) {
    const c = indexChangeOf(e);
    if (!c) continue;
    if ('tables' in c) truncates.push(c);
    else changes.push(c);
  }
  return { changes, truncates, memberships: membershipWrites(events) };
}
