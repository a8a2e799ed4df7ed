// The OpenSearch adapter against a recording HTTP fake (test/support/opensearch-fake.ts): the same
// model property as the SQLite adapter, and what goes over the wire — external versions derived
// from the event id, workspace routing, a rebuild's atomic alias swap.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client } from '@opensearch-project/opensearch';
import fc from 'fast-check';
import { decodeEvent, type StreamEvent } from '@taskflow/stream/events';
import { sampleEvent, type SampleOverrides } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import { startOpenSearchFake, type OpenSearchFake } from '../test/support/opensearch-fake.js';
import { indexBatchOf } from './indexer.js';
import { INDEX_BODY, OpenSearchIndex, versionOf } from './opensearch-index.js';
import { matchesFilter } from './search-index.js';
import { arbitraryDelivery, arbitraryFilter, USER, WS } from './test-histories.js';

let fake: OpenSearchFake;
beforeAll(async () => {
  fake = await startOpenSearchFake();
});
afterAll(() => fake.stop());

let aliases = 0;
const open = () => OpenSearchIndex.open({ node: fake.url, alias: `search-test-${++aliases}` });

function event(kind: Parameters<typeof sampleEvent>[0], o: SampleOverrides): StreamEvent {
  const d = decodeEvent(Buffer.from(JSON.stringify(sampleEvent(kind, o))), validateEvent);
  if (!d.ok) throw new Error(d.message);
  return d.event;
}
const TASK = '33333333-3333-4333-8333-0000000000c1';
const task = (kind: 'task.created' | 'task.updated', lsn: number, title: string, o: SampleOverrides = {}) =>
  event(kind, { workspaceId: WS, entityId: TASK, commitLsn: BigInt(lsn), row: { title, description: 'body text' }, ...o });

describe('OpenSearchIndex', () => {
  it('any delivery of a history ends in the in-order documents and memberships', async () => {
    await fc.assert(
      fc.asyncProperty(arbitraryDelivery, async ({ history, delivered }) => {
        const index = await open();
        for (const batch of delivered) await index.apply(indexBatchOf(batch));
        expect(await index.documents(WS)).toEqual(history.documents);
        expect(await index.memberships(USER)).toEqual(history.memberships);
        await index.close();
      }),
      { numRuns: 40 },
    );
  });

  it('filters by labels and due_at: any delivery and filter answer the in-order tasks that match, in document order', async () => {
    await fc.assert(
      fc.asyncProperty(arbitraryDelivery, arbitraryFilter, async ({ history, delivered }, filter) => {
        const index = await open();
        for (const batch of delivered) await index.apply(indexBatchOf(batch));
        const hits = await index.search({ workspaceId: WS, terms: [], filter, projects: 'all', limit: 100 });
        expect(hits.map(({ score: _s, ...d }) => d)).toEqual(history.documents.filter((d) => matchesFilter(d, filter)));
        await index.close();
      }),
      { numRuns: 40 },
    );
  });

  it('puts the labels and due_at fields on an index an older release created (strict mappings)', async () => {
    const alias = `search-test-${++aliases}`;
    const { labels: _l, due_at: _d, ...oldFields } = INDEX_BODY.mappings.properties;
    const client = new Client({ node: fake.url });
    await client.indices.create({ index: `${alias}-old`, body: { ...INDEX_BODY, mappings: { ...INDEX_BODY.mappings, properties: oldFields }, aliases: { [alias]: {} } } });
    await client.close();
    const index = await OpenSearchIndex.open({ node: fake.url, alias });
    expect(fake.requests.at(-1)).toMatchObject({ method: 'POST', path: `/${alias}/_mapping`, body: { properties: { labels: { type: 'keyword' }, due_at: { type: 'date' } } } });
    await index.apply(indexBatchOf([task('task.created', 0x100, 'labelled', { row: { title: 'labelled', labels: ['ops'], due_at: '2026-12-02T09:00:00+00:00' } })]));
    expect((await index.search({ workspaceId: WS, terms: [], filter: { labels: ['ops'] }, projects: 'all', limit: 5 })).map((h) => [h.title, h.dueAt])).toEqual([['labelled', '2026-12-02T09:00:00.000Z']]);
    await index.close();
  });

  it('writes with external versions from the event id, routed by workspace; a stale write changes nothing', async () => {
    const index = await open();
    await index.apply(indexBatchOf([task('task.created', 0x100, 'first'), task('task.updated', 0x300, 'third')]));
    const since = fake.requests.length;
    await index.apply(indexBatchOf([task('task.updated', 0x200, 'second')]));
    const bulk = fake.requests.slice(since).find((r) => r.path === '/_bulk');
    const action = (bulk?.body as Record<string, Record<string, unknown>>[])[0]!.index!;
    expect(action).toMatchObject({ version_type: 'external_gte', version: 0x300, routing: WS });
    expect(versionOf('0000000000000300-00000007')).toBe(0x300);
    const hits = await index.search({ workspaceId: WS, terms: ['thi'], projects: 'all', limit: 5 });
    expect(hits.map((h) => [h.title, h.version])).toEqual([['third', '0000000000000300-00000000']]);
    expect(await index.search({ workspaceId: WS, terms: ['second'], projects: 'all', limit: 5 })).toEqual([]);
    await index.close();
  });

  it('merges again when a newer version lands between its read and its write (409)', async () => {
    const index = await open();
    await index.apply(indexBatchOf([task('task.created', 0x100, 'first')]));
    // Another writer's newer state arrives while this batch is in flight: its bulk item gets a 409.
    const docs = [...fake.indices.entries()].find(([name]) => name.startsWith(`search-test-${aliases}-`))![1];
    const id = `doc/${WS}/tasks/${TASK}`;
    const original = docs.get.bind(docs);
    let raced = false;
    docs.get = (key: string) => {
      const d = original(key);
      if (key === id && d && !raced && fake.requests.at(-1)?.path === '/_bulk') {
        raced = true;
        return { ...d, version: 0x500 };
      }
      return d;
    };
    await index.apply(indexBatchOf([task('task.updated', 0x200, 'second')]));
    docs.get = original;
    expect(raced).toBe(true);
    expect(fake.requests.filter((r) => r.path.endsWith('/_mget')).length).toBeGreaterThan(1);
    await index.close();
  });

  it('rebuilds into a new index and moves the alias in one atomic request', async () => {
    const live = await open();
    const alias = `search-test-${aliases}`;
    await live.apply(indexBatchOf([task('task.created', 0x100, 'old')]));
    const [before] = fake.aliases.get(alias)!;
    const rebuild = await live.beginRebuild();
    await rebuild.apply(indexBatchOf([task('task.created', 0x100, 'rebuilt')]));
    expect((await live.search({ workspaceId: WS, terms: ['old'], projects: 'all', limit: 5 })).length).toBe(1);
    const since = fake.requests.length;
    await rebuild.promote();
    const swap = fake.requests.slice(since).filter((r) => r.path === '/_aliases');
    expect(swap).toHaveLength(1);
    const [after] = fake.aliases.get(alias)!;
    expect(swap[0]!.body).toEqual({ actions: [{ remove: { index: before, alias } }, { add: { index: after, alias } }] });
    expect(fake.indices.has(before!)).toBe(false);
    expect((await live.search({ workspaceId: WS, terms: ['rebuilt'], projects: 'all', limit: 5 })).map((h) => h.title)).toEqual(['rebuilt']);
    await live.close();
  });

  it('a rebuild resumed by name writes into the same new index; promoted keeping the old one, it deletes nothing; promoting again changes nothing', async () => {
    const live = await open();
    const alias = `search-test-${aliases}`;
    await live.apply(indexBatchOf([task('task.created', 0x100, 'old')]));
    const [before] = fake.aliases.get(alias)!;
    const started = await live.beginRebuild();
    await started.apply(indexBatchOf([task('task.created', 0x100, 'first part')]));
    // the replay process stopped here and ran again: the same index, by name
    const since = fake.requests.length;
    const resumed = await live.resumeRebuild(started.writesTo);
    expect(resumed.writesTo).toBe(started.writesTo);
    await resumed.apply(indexBatchOf([task('task.updated', 0x200, 'second part')]));
    // meanwhile the live consumer keeps writing the alias (the old index)
    await live.apply(indexBatchOf([task('task.updated', 0x300, 'live meanwhile')]));
    expect(await resumed.promote({ keepPrevious: true })).toEqual([before]);
    const wire = fake.requests.slice(since).map((r) => `${r.method} ${r.path}`);
    expect(wire.filter((w) => !w.endsWith('/_mget'))).toEqual([
      `HEAD /${started.writesTo}`,
      'POST /_bulk',
      'POST /_bulk',
      `GET /_alias/${alias}`,
      'POST /_aliases',
    ]);
    const bulks = fake.requests.slice(since).filter((r) => r.path === '/_bulk').map((r) => (r.body as { index?: { _index: string } }[])[0]!.index!._index);
    expect(bulks).toEqual([started.writesTo, alias]);
    expect(fake.indices.has(before!)).toBe(true);
    expect([...fake.aliases.get(alias)!]).toEqual([started.writesTo]);
    expect((await live.search({ workspaceId: WS, terms: ['second'], projects: 'all', limit: 5 })).map((h) => h.title)).toEqual(['second part']);
    const again = fake.requests.length;
    expect(await resumed.promote({ keepPrevious: false })).toEqual([]);
    expect(fake.requests.slice(again).map((r) => r.path)).toEqual([`/_alias/${alias}`]);
    await expect(live.resumeRebuild('another-alias-1')).rejects.toThrow(/not an index of alias/);
    await expect(live.resumeRebuild(`${alias}-00000000000000000`)).rejects.toThrow(/no longer exists/);
    await live.close();
  });
});
