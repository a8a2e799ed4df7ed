// The router-changelog erasure sink (router/erasure-sink.ts) on dynalite: events written through
// the real DynamoChangelogStore, some holding the subject (their id in a row image, as the actor,
// their authored text, their email in someone else's comment), some not. Purge then scan finds 0,
// a repeat purge changes nothing, and the replay API's read still serves every seq in order —
// the subject's events erased in place, the others unchanged; thin entries (a router in thin mode)
// lose the key values that hold the subject.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomUUID } from 'node:crypto';
import { type ChangelogEntry, changelogEntry, entryId, type FullEntry, type ProjectRef } from '../../router/changelog.js';
import type { Envelope } from '../../router/event.js';
import { DynamoChangelogStore } from '../../router/dynamo-changelog.js';
import { openErasureSinks } from '../../router/erasure-sink.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import type { ErasureSink, SubjectIdentifiers } from '../../lib/erasure.js';
import { createTestTables, dynamoClient, testStackEnv } from '../support/stack.js';

let client: DynamoDBClient;
let table: string;
let sink: ErasureSink;
let close: () => Promise<void>;

beforeAll(async () => {
  client = dynamoClient();
  table = (await createTestTables('gdpr-sink-changelog', ['changelog'])).changelog!;
  const opened = await openErasureSinks({ ...testStackEnv(), DYNAMODB_TABLE_CHANGELOG: table });
  [sink] = opened.sinks as [ErasureSink];
  close = opened.close;
});

afterAll(async () => {
  await close?.();
  client?.destroy();
});

describe('router-changelog erasure sink', () => {
  it('erases the events holding the subject in place; scan then finds 0; a repeat changes nothing; replay still serves every seq', async () => {
    const subject = randomUUID();
    const [other, comment, task] = [randomUUID(), randomUUID(), randomUUID()];
    const ids: SubjectIdentifiers = { subject, email: 'ada@example.com', displayName: 'Ada Lovelace', authored: [{ table: 'comments', id: comment, text: 'my private remark' }] };
    const p: ProjectRef = { workspaceId: randomUUID(), projectId: randomUUID() };
    const at = { workspaceId: p.workspaceId, projectId: p.projectId };
    const byActor = sampleEvent('task.updated', { ...at, commitLsn: 0x300n, entityId: task, row: { title: 'renamed', created_by: other } });
    (byActor.data.source as { actor?: { userId: string } }).actor = { userId: subject };
    const events = [
      sampleEvent('task.created', { ...at, commitLsn: 0x100n, entityId: task, row: { created_by: subject, assignee_id: other } }),
      sampleEvent('comment.created', { ...at, commitLsn: 0x200n, entityId: comment, row: { author_id: other, body: 'my private remark' } }),
      byActor,
      sampleEvent('comment.created', { ...at, commitLsn: 0x400n, entityId: randomUUID(), row: { author_id: other, body: 'ask ada@example.com' } }),
      sampleEvent('task.updated', { ...at, commitLsn: 0x500n, entityId: randomUUID(), row: { created_by: other, assignee_id: other } }),
    ];
    const store = new DynamoChangelogStore(client, { table });
    // Two appends: the subject's events sit in more than one item.
    await store.append(p, events.slice(0, 2).map((event, i) => ({ seq: i + 1, event })), { seq: 0, lastId: null }, { seq: 2, lastId: events[1]!.id });
    await store.append(p, events.slice(2).map((event, i) => ({ seq: i + 3, event })), { seq: 2, lastId: events[1]!.id }, { seq: 5, lastId: events[4]!.id });

    expect(await sink.scan(ids)).toEqual({ scanned: 5, found: 4 });
    expect(await sink.purge(ids)).toEqual({ changed: 4 });
    expect(await sink.scan(ids)).toEqual({ scanned: 5, found: 0 });
    expect(await sink.purge(ids)).toEqual({ changed: 0 });

    const page = await store.read(p, 0, 100);
    expect(page.entries.map((e: ChangelogEntry) => [e.seq, entryId(e)])).toEqual(events.map((e, i) => [i + 1, e.id]));
    const erased = page.entries.slice(0, 4).map((e) => (e as FullEntry).event.data as unknown as Record<string, unknown>);
    for (const d of erased) expect(d).toMatchObject({ erased: true, before: null, after: null });
    expect((erased[2]!.source as Record<string, unknown>).actor).toBeUndefined();
    expect((page.entries[4] as FullEntry).event).toEqual(events[4]);
  });

  it("erases thin entries (a router in thin mode) where their key holds the subject, in an item beside full ones; scan then finds 0", async () => {
    const subject = randomUUID();
    const ids: SubjectIdentifiers = { subject, email: 'grace@example.com', displayName: 'Grace Hopper', authored: [] };
    const p: ProjectRef = { workspaceId: randomUUID(), projectId: randomUUID() };
    const at = { workspaceId: p.workspaceId, projectId: p.projectId };
    const membership = sampleEvent('membership.created', { ...at, commitLsn: 0x200n, userId: subject });
    // A key that names the subject (the schema allows any primary-key columns).
    const keyed = { ...membership, data: { ...membership.data, key: { id: membership.data.key.id, user_id: subject } } } as unknown as Envelope;
    const events = [sampleEvent('task.created', { ...at, commitLsn: 0x100n, row: { created_by: subject } }), keyed, sampleEvent('task.updated', { ...at, commitLsn: 0x300n })] as Envelope[];
    const store = new DynamoChangelogStore(client, { table });
    // Across a switch of mode: the first entry full, the others thin, in one item.
    const entries = [changelogEntry(1, events[0]!, 'full'), changelogEntry(2, events[1]!, 'thin'), changelogEntry(3, events[2]!, 'thin')];
    await store.append(p, entries, { seq: 0, lastId: null }, { seq: 3, lastId: events[2]!.id });
    const before = await sink.scan(ids);
    expect(before.found).toBeGreaterThanOrEqual(2);
    await sink.purge(ids);
    expect((await sink.scan(ids)).found).toBe(0);

    const page = await store.read(p, 0, 10);
    expect(JSON.stringify(page.entries)).not.toContain(subject);
    expect(page.entries.map((e) => [e.seq, entryId(e)])).toEqual(events.map((e, i) => [i + 1, e.id]));
    expect(page.entries[1]).toEqual({ ...entries[1], key: { id: membership.data.key.id, user_id: null } });
    expect(page.entries[2]).toEqual(entries[2]);
  });
});
