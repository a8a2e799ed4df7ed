import { afterAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeEvent, type StreamEvent } from '@taskflow/stream/events';
import { sampleEvent, type SampleOverrides } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import { indexBatchOf } from './indexer.js';
import { DatabaseSync } from 'node:sqlite';
import { matchesFilter, parseQueryTerms } from './search-index.js';
import { SqliteSearchIndex } from './sqlite-index.js';
import { arbitraryDelivery, arbitraryFilter, USER, WS } from './test-histories.js';

const dir = mkdtempSync(join(tmpdir(), 'search-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function event(kind: Parameters<typeof sampleEvent>[0], o: SampleOverrides): StreamEvent {
  const d = decodeEvent(Buffer.from(JSON.stringify(sampleEvent(kind, o))), validateEvent);
  if (!d.ok) throw new Error(d.message);
  return d.event;
}

const P1 = '22222222-2222-4222-8222-0000000000b1';
const P2 = '22222222-2222-4222-8222-0000000000b2';
const task = (n: number, o: SampleOverrides) => event('task.created', { workspaceId: WS, projectId: P1, entityId: `33333333-3333-4333-8333-${String(n).padStart(12, '0')}`, commitLsn: BigInt(0x100 * n), ...o });

describe('SqliteSearchIndex', () => {
  it('any delivery of a history ends in the in-order documents and memberships', async () => {
    await fc.assert(
      fc.asyncProperty(arbitraryDelivery, async ({ history, delivered }) => {
        const index = new SqliteSearchIndex(':memory:');
        for (const batch of delivered) await index.apply(indexBatchOf(batch));
        expect(await index.documents(WS)).toEqual(history.documents);
        expect(await index.memberships(USER)).toEqual(history.memberships);
        await index.close();
      }),
      { numRuns: 150 },
    );
  });

  it('filters by labels and due_at: any delivery and filter answer the in-order tasks that match, in document order', async () => {
    await fc.assert(
      fc.asyncProperty(arbitraryDelivery, arbitraryFilter, fc.boolean(), async ({ history, delivered }, filter, withTerm) => {
        const index = new SqliteSearchIndex(':memory:');
        for (const batch of delivered) await index.apply(indexBatchOf(batch));
        // A history's titles and texts are single words; 'alpha' prefixes only itself.
        const terms = withTerm ? ['alpha'] : [];
        const expected = history.documents.filter((d) => matchesFilter(d, filter) && (!withTerm || d.title === 'alpha' || d.text === 'alpha'));
        const hits = await index.search({ workspaceId: WS, terms, filter, projects: 'all', limit: 100 });
        expect(hits.map(({ score: _s, ...d }) => d).sort((a, b) => a.id.localeCompare(b.id))).toEqual(expected.sort((a, b) => a.id.localeCompare(b.id)));
        await index.close();
      }),
      { numRuns: 150 },
    );
  });

  it('adds the filter columns to a file an older release wrote, keeping its documents', async () => {
    const path = join(dir, 'old', 'search.db');
    const old = new SqliteSearchIndex(path);
    await old.apply(indexBatchOf([task(1, { row: { title: 'kept', description: null, labels: ['ops'] } })]));
    await old.close();
    // What the release before labels wrote: docs without the filter columns.
    const raw = new DatabaseSync(path);
    raw.exec('ALTER TABLE docs DROP COLUMN labels; ALTER TABLE docs DROP COLUMN due_at');
    raw.close();
    const reopened = new SqliteSearchIndex(path);
    expect((await reopened.search({ workspaceId: WS, terms: ['kept'], projects: 'all', limit: 5 })).map((h) => h.title)).toEqual(['kept']);
    await reopened.apply(indexBatchOf([task(2, { row: { title: 'new', description: null, labels: ['ops'], due_at: '2026-12-02T09:00:00+00:00' } })]));
    const hits = await reopened.search({ workspaceId: WS, terms: [], filter: { labels: ['ops'], dueBefore: '2026-12-03T00:00:00.000Z' }, projects: 'all', limit: 5 });
    expect(hits.map((h) => [h.title, h.labels, h.dueAt])).toEqual([['new', ['ops'], '2026-12-02T09:00:00.000Z']]);
    await reopened.close();
  });

  it('finds by word prefix, ranks title matches first, filters by project', async () => {
    const index = new SqliteSearchIndex(':memory:');
    await index.apply(
      indexBatchOf([
        task(1, { row: { title: 'Quarterly planning', description: 'numbers' } }),
        task(2, { row: { title: 'Budget', description: 'the quarterly budget review' } }),
        task(3, { projectId: P2, row: { title: 'Quarterly offsite', description: '' } }),
      ]),
    );
    const all = await index.search({ workspaceId: WS, terms: parseQueryTerms('quart'), projects: 'all', limit: 10 });
    expect(all.map((h) => h.title).slice(0, 2).sort()).toEqual(['Quarterly offsite', 'Quarterly planning']);
    expect(all.at(-1)?.title).toBe('Budget');
    expect(all[0]!.score).toBeGreaterThan(all[2]!.score);
    const onlyP1 = await index.search({ workspaceId: WS, terms: ['quarterly'], projects: [P1], limit: 10 });
    expect(onlyP1.map((h) => h.projectId)).toEqual([P1, P1]);
    expect(await index.search({ workspaceId: WS, terms: ['quarterly'], projects: [], limit: 10 })).toEqual([]);
    expect(await index.search({ workspaceId: 'another', terms: ['quarterly'], projects: 'all', limit: 10 })).toEqual([]);
    expect((await index.search({ workspaceId: WS, terms: ['quarterly'], projects: 'all', limit: 1 })).length).toBe(1);
    await index.close();
  });

  it('takes query syntax in q as words: no operator reaches FTS5', async () => {
    const index = new SqliteSearchIndex(':memory:');
    await index.apply(indexBatchOf([task(1, { row: { title: 'alpha beta', description: null } })]));
    for (const q of ['alpha OR', '"alpha', 'alpha*) NOT beta', 'title:alpha', 'NEAR(alpha beta)']) {
      expect((await index.search({ workspaceId: WS, terms: parseQueryTerms(q), projects: 'all', limit: 5 })).length).toBeLessThanOrEqual(1);
    }
    expect(() => parseQueryTerms('()*"')).toThrow(/no word/);
    expect(() => parseQueryTerms('x'.repeat(201))).toThrow(/longer than 200/);
    await index.close();
  });

  it('keeps what it committed across a reopen of its file', async () => {
    const path = join(dir, 'nested', 'search.db');
    const first = new SqliteSearchIndex(path);
    await first.apply(indexBatchOf([task(1, { row: { title: 'durable', description: null } })]));
    await first.close();
    const second = new SqliteSearchIndex(path);
    expect((await second.search({ workspaceId: WS, terms: ['durable'], projects: 'all', limit: 5 })).length).toBe(1);
    await second.close();
  });
});
