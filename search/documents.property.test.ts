// The index model's promise: any delivery of a history — every event at least once, in any
// order, in any batches — ends in the state in-order application gives, which is what the
// database shows (deletes, truncates on their own shard, TOAST-omitted columns included).
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { applyChange, type DocState, docKey, type IndexedTable, type SearchDocument, visibleDocument } from './documents.js';
import { indexBatchOf } from './indexer.js';
import { arbitraryDelivery, arbitraryHistory } from './test-histories.js';
import type { StreamEvent } from '@taskflow/stream/events';

/** The model alone, folded over events (no engine). */
function fold(batches: readonly (readonly StreamEvent[])[]): SearchDocument[] {
  const states = new Map<string, DocState>();
  const markers = new Map<IndexedTable, string>();
  for (const batch of batches) {
    const { changes, truncates } = indexBatchOf(batch);
    for (const t of truncates) for (const table of t.tables) if ((markers.get(table) ?? '') < t.eventId) markers.set(table, t.eventId);
    for (const c of changes) states.set(docKey(c), applyChange(states.get(docKey(c)), c));
  }
  return [...states.values()]
    .map((s) => visibleDocument(s, markers.get(s.table)))
    .filter((d): d is SearchDocument => d !== null)
    .sort((a, b) => `${a.table}/${a.id}`.localeCompare(`${b.table}/${b.id}`));
}

describe('the search document model', () => {
  it('in order, ends where the database does', () => {
    fc.assert(fc.property(arbitraryHistory, (h) => expect(fold([h.events])).toEqual(h.documents)));
  });

  it('any permutation and duplication of the events ends in the same documents', () => {
    fc.assert(fc.property(arbitraryDelivery, ({ history, delivered }) => expect(fold(delivered)).toEqual(history.documents)), { numRuns: 300 });
  });
});
