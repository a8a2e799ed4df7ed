// The search-index erasure sink on the real engine (node:sqlite FTS5, a file): a subject's task
// description, comment, membership and their email in another user's comment are found, purged,
// then found nowhere — not in the documents, not in the file's bytes; a repeat changes nothing,
// and no redelivery of the old events (any order, any subset, duplicates) brings them back. The
// OpenSearch engine (production) against the recording fake: the same purge, scan and documents.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeEvent, type StreamEvent } from '@taskflow/stream/events';
import type { ErasureSink, SubjectIdentifiers } from '../lib/erasure.js';
import { sampleEvent, type SampleOverrides } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import { openErasureSinks } from './erasure-sink.js';
import { indexBatchOf } from './indexer.js';
import { SqliteSearchIndex } from './sqlite-index.js';
import { OpenSearchIndex } from './opensearch-index.js';
import { startOpenSearchFake, type OpenSearchFake } from '../test/support/opensearch-fake.js';

const dir = mkdtempSync(join(tmpdir(), 'search-erasure-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const WS = '11111111-1111-4111-8111-0000000000e1';
const P = '22222222-2222-4222-8222-0000000000e1';
const SUBJECT = '66666666-6666-4666-8666-0000000000e1';
const OTHER = '66666666-6666-4666-8666-0000000000e2';
const id = (n: number) => `33333333-3333-4333-8333-${String(n).padStart(12, '0')}`;
const [TASK, OTHER_TASK, COMMENT, OTHER_COMMENT] = [id(1), id(2), id(3), id(4)];
const REMARK = 'my private remark about the launch';
const IDS: SubjectIdentifiers = {
  subject: SUBJECT,
  email: 'ada@example.com',
  displayName: 'Ada Lovelace',
  authored: [
    { table: 'tasks', id: TASK, text: 'the plan only I know' },
    { table: 'comments', id: COMMENT, text: REMARK },
  ],
};

function event(kind: Parameters<typeof sampleEvent>[0], lsn: number, o: SampleOverrides): StreamEvent {
  const d = decodeEvent(Buffer.from(JSON.stringify(sampleEvent(kind, { workspaceId: WS, projectId: P, commitLsn: BigInt(lsn), ...o }))), validateEvent);
  if (!d.ok) throw new Error(d.message);
  return d.event;
}

const EVENTS = [
  event('task.created', 0x100, { entityId: TASK, row: { title: 'Launch', description: 'the plan only I know', created_by: SUBJECT } }),
  event('task.created', 0x200, { entityId: OTHER_TASK, row: { title: 'Other', description: 'nothing personal', created_by: OTHER } }),
  event('comment.created', 0x300, { entityId: COMMENT, row: { task_id: TASK, author_id: SUBJECT, body: REMARK } }),
  event('comment.created', 0x400, { entityId: OTHER_COMMENT, row: { task_id: TASK, author_id: OTHER, body: 'ask ada@example.com' } }),
  event('membership.created', 0x500, { userId: SUBJECT }),
];

async function indexed(name: string): Promise<{ index: SqliteSearchIndex; sink: ErasureSink; close(): Promise<void>; path: string }> {
  const path = join(dir, name, 'search.db');
  const index = new SqliteSearchIndex(path);
  await index.apply(indexBatchOf(EVENTS));
  const opened = await openErasureSinks({ SEARCH_DB_PATH: path });
  return { index, sink: opened.sinks[0]!, close: opened.close, path };
}

const fileBytes = (path: string) => Buffer.concat([readFileSync(path), ...(existsSync(`${path}-wal`) ? [readFileSync(`${path}-wal`)] : [])]);

describe('search-index erasure sink', () => {
  it('purge then scan finds 0, in the documents and in the file; a repeat changes nothing; the rest stays searchable', async () => {
    const { index, sink, close, path } = await indexed('once');
    const before = await sink.scan(IDS);
    expect(before).toEqual({ scanned: 5, found: 4 }); // 4 documents + 1 membership read; the task, both comments, the membership
    expect(fileBytes(path).includes(REMARK)).toBe(true);

    expect(await sink.purge(IDS)).toEqual({ changed: 4 });
    expect(await sink.scan(IDS)).toEqual({ scanned: 4, found: 0 }); // the membership row is gone
    expect(await sink.purge(IDS)).toEqual({ changed: 0 });

    const docs = await index.documents(WS);
    // By key: the other user's comment (its email mention emptied), the subject's task (description emptied, title kept), the other task.
    expect(docs.map((d) => [d.id, d.title, d.text])).toEqual([
      [OTHER_COMMENT, '', ''],
      [TASK, 'Launch', ''],
      [OTHER_TASK, 'Other', 'nothing personal'],
    ]);
    expect(await index.memberships(SUBJECT)).toEqual([]);
    expect(await index.search({ workspaceId: WS, projects: 'all', terms: ['remark'], limit: 10 })).toEqual([]);
    expect((await index.search({ workspaceId: WS, projects: 'all', terms: ['launch'], limit: 10 })).map((h) => h.id)).toEqual([TASK]);
    await close();
    await index.close();
    // secure_delete, the merged FTS segments and the checkpointed WAL leave no copy in the file.
    expect(fileBytes(path).includes(REMARK)).toBe(false);
    expect(fileBytes(path).includes('ada@example.com')).toBe(false);
  });

  it('no redelivery of the old events brings the data back; a newer edit still lands', async () => {
    const { index, sink, close } = await indexed('replay');
    await sink.purge(IDS);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...EVENTS), { maxLength: 12 }), async (again) => {
        await index.apply(indexBatchOf(again));
        expect((await sink.scan(IDS)).found).toBe(EVENTS.filter((e) => e.envelope.type === 'taskflow.membership.created').some((e) => again.includes(e)) ? 1 : 0);
        await sink.purge(IDS); // the membership projection takes a redelivered membership back in; the processor purges until the scan is clean
      }),
      { numRuns: 30 },
    );
    await index.apply(indexBatchOf([event('task.updated', 0x900, { entityId: TASK, row: { title: 'Launch', description: 'rewritten by the team' } })]));
    expect((await index.documents(WS)).find((d) => d.id === TASK)?.text).toBe('rewritten by the team');
    await close();
    await index.close();
  });
});

describe('search-index erasure sink on OpenSearch (the recording fake)', () => {
  let fake: OpenSearchFake;
  beforeAll(async () => {
    fake = await startOpenSearchFake();
  });
  afterAll(() => fake.stop());
  let n = 0;

  async function indexedOpenSearch() {
    const env = { SEARCH_ENGINE: 'opensearch', OPENSEARCH_URL: fake.url, OPENSEARCH_ALIAS: `erasure-${++n}` };
    const index = await OpenSearchIndex.open({ node: fake.url, alias: env.OPENSEARCH_ALIAS, refresh: true });
    await index.apply(indexBatchOf(EVENTS));
    const opened = await openErasureSinks(env);
    return { index, sink: opened.sinks[0]!, close: opened.close };
  }

  it('purge then scan finds 0; a repeat changes nothing; the documents are those the SQLite engine keeps', async () => {
    const { index, sink, close } = await indexedOpenSearch();
    expect(await sink.scan(IDS)).toEqual({ scanned: 5, found: 4 });
    expect(await sink.purge(IDS)).toEqual({ changed: 4 });
    expect(await sink.scan(IDS)).toEqual({ scanned: 4, found: 0 });
    expect(await sink.purge(IDS)).toEqual({ changed: 0 });
    expect((await index.documents(WS)).map((d) => [d.id, d.title, d.text])).toEqual([
      [OTHER_COMMENT, '', ''],
      [TASK, 'Launch', ''],
      [OTHER_TASK, 'Other', 'nothing personal'],
    ]);
    expect(await index.memberships(SUBJECT)).toEqual([]);
    expect(await index.search({ workspaceId: WS, projects: 'all', terms: ['remark'], limit: 10 })).toEqual([]);
    // What went over the wire: the subject's documents written back at their own versions.
    const writes = fake.requests.filter((r) => r.path === '/_bulk').at(-1);
    expect(JSON.stringify(writes?.body)).toContain('external_gte');
    await close();
    await index.close();
  });

  it('no redelivery of the old events brings the data back; a newer edit still lands', async () => {
    const { index, sink, close } = await indexedOpenSearch();
    await sink.purge(IDS);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...EVENTS), { maxLength: 12 }), async (again) => {
        await index.apply(indexBatchOf(again));
        expect((await sink.scan(IDS)).found).toBe(EVENTS.filter((e) => e.envelope.type === 'taskflow.membership.created').some((e) => again.includes(e)) ? 1 : 0);
        await sink.purge(IDS);
      }),
      { numRuns: 20 },
    );
    await index.apply(indexBatchOf([event('task.updated', 0x900, { entityId: TASK, row: { title: 'Launch', description: 'rewritten by the team' } })]));
    expect((await index.documents(WS)).find((d) => d.id === TASK)?.text).toBe('rewritten by the team');
    await close();
    await index.close();
  });
});
