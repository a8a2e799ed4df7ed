// Erase, then replay, for the router's changelog and the audit trail (issue 13 §4, gdpr/POLICY.md
// "Erased subjects"): a subject's history goes through the router (changelog and publish path on
// dynalite) and the audit trail (segments and identity mapping in a file store); the subject is
// erased (key destroyed — the list's tombstone — then each sink purged); then the stream is read
// again from the start by a fresh router and a fresh audit process (a `consumers reset`), with an
// event of theirs that reached neither before the erasure (a lagging reader) and a redriven one.
// Each sink's scan finds 0 and nothing of them is published; without the list the same replay
// brings them back (the control).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErasedSubjects, type StreamEvent, type UserRecord } from '@taskflow/stream';
import { AUDIT_TRAIL_SINK } from '../../audit/erasure-sink.js';
import { resolveIdentity } from '../../audit/identities.js';
import { Pseudonymizer } from '../../audit/record.js';
import { AUDIT_REDRIVE_PREFIX, AuditShardWriter } from '../../audit/shard-writer.js';
import { FileAuditStore } from '../../audit/store.js';
import { DynamoMembershipProjection } from '../../lib/dynamo-memberships.js';
import { holdsAny, identifierStrings, type SubjectIdentifiers } from '../../lib/erasure.js';
import { silentLogger } from '../../lib/logger.js';
import { createSubjectKeyStore, loadSubjectKeyConfig } from '../../lib/subject-keys.js';
import type { FullEntry, ProjectRef } from '../../router/changelog.js';
import { DynamoChangelogStore } from '../../router/dynamo-changelog.js';
import { CHANGELOG_SINK } from '../../router/erasure-sink.js';
import type { SequencedChange } from '../../router/sequencer.js';
import { REDRIVE_PARTITION_PREFIX, ShardRouter } from '../../router/shard-router.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { validateEvent } from '../../schemas/validate.js';
import { createTestTables, dynamoClient, testStackEnv } from '../support/stack.js';

const byActor = <E extends { data: { source: object } }>(e: E, userId: string): E => ({ ...e, data: { ...e.data, source: { ...e.data.source, actor: { userId } } } });

/** A subject, another user, and the history of a workspace they share (each test erases its own subject). */
function scenario() {
  const [S, OTHER, WS, P, TASK, COMMENT, MEMBERSHIP] = Array.from({ length: 7 }, () => randomUUID() as string) as [string, string, string, string, string, string, string];
  const PLAN = `her private plan ${randomUUID()}`;
  const REMARK = `her private remark ${randomUUID()}`;
  const IDS: SubjectIdentifiers = { subject: S, email: null, displayName: null, authored: [{ table: 'tasks', id: TASK, text: PLAN }, { table: 'comments', id: COMMENT, text: REMARK }] };
  const NEEDLES = identifierStrings(IDS);
  const at = (s: number) => `2026-11-26T12:00:${String(s).padStart(2, '0')}.000000Z`;
  const base = { workspaceId: WS, projectId: P };
  const HISTORY = [
    byActor(sampleEvent('membership.created', { ...base, commitLsn: 0x100n, time: at(1), entityId: MEMBERSHIP, userId: S }), OTHER),
    byActor(sampleEvent('task.created', { ...base, commitLsn: 0x200n, time: at(2), entityId: TASK, userId: S, row: { title: 'Launch', description: PLAN } }), S),
    byActor(sampleEvent('comment.created', { ...base, commitLsn: 0x300n, time: at(3), entityId: COMMENT, userId: S, row: { task_id: TASK, body: REMARK } }), S),
    // The other user's comment mentioning them: its text stays, the mention does not.
    byActor(sampleEvent('comment.created', { ...base, commitLsn: 0x400n, time: at(4), entityId: randomUUID(), userId: OTHER, row: { task_id: TASK, body: `@${S} looks good` } }), OTHER),
  ];
  /** Their edit, committed before the erasure, that a lagging reader had not read yet. */
  const LATE = byActor(sampleEvent('task.updated', { ...base, commitLsn: 0x500n, time: at(5), entityId: TASK, userId: S, row: { title: 'Launch v2', description: PLAN } }), S);
  /** Their membership's role changed before the erasure, read late too: an event about them alone. */
  const LATE_ROLE = sampleEvent('membership.updated', { ...base, commitLsn: 0x550n, time: at(6), entityId: MEMBERSHIP, userId: S, row: { role: 'admin' } });
  /** The erasure's own delete of their membership row (the source-db purge), as capture streams it. */
  const GONE = sampleEvent('membership.deleted', { ...base, commitLsn: 0x580n, time: at(7), entityId: MEMBERSHIP, userId: S });
  /** Another edit of theirs from before the erasure, read only by the control. */
  const LATER = byActor(sampleEvent('task.updated', { ...base, commitLsn: 0x600n, time: at(6), entityId: TASK, userId: S, row: { title: 'Launch v3', description: PLAN } }), S);
  return { S, OTHER, WS, P, IDS, NEEDLES, HISTORY, LATE, LATE_ROLE, GONE, LATER };
}

const records = (WS: string, events: readonly object[], redriven: readonly object[] = []): UserRecord[] => [
  ...events.map((e, i) => ({ shardId: 's-1', sequenceNumber: String(i + 1), subSequenceNumber: 0, partitionKey: WS, data: Buffer.from(JSON.stringify(e)) })),
  // Put back from the dead-letter store: its partition key is the redrive's (audit's starts with the router's).
  ...redriven.map((e, i) => ({ shardId: 's-1', sequenceNumber: String(events.length + i + 1), subSequenceNumber: 0, partitionKey: `${AUDIT_REDRIVE_PREFIX}${WS}`, data: Buffer.from(JSON.stringify(e)) })),
];
const checkpointer = { checkpoint: () => Promise.resolve() };

let dir: string;
let dynamo: DynamoDBClient;
let tables: Record<string, string>;
let keys: ReturnType<typeof createSubjectKeyStore>;
const erasedList = () => new ErasedSubjects({ lookup: (s) => keys.isDestroyed(s), ttlMs: 1000 });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gdpr-replay-router-audit-'));
  dynamo = dynamoClient();
  tables = await createTestTables('gdpr-replay-ra', ['changelog', 'memberships', 'subject-keys']);
  const env = { ...testStackEnv(), DYNAMODB_TABLE_SUBJECT_KEYS: tables['subject-keys']!, SUBJECT_KEYS_LOCAL_KEK_FILE: join(dir, 'kek'), TASKFLOW_ENV: 'development' };
  keys = createSubjectKeyStore(loadSubjectKeyConfig(env), dynamo, () => {
    throw new Error('no KMS locally');
  });
});

afterAll(() => {
  dynamo?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('erase, then replay the stream through the router and the audit trail', () => {
  it('the router writes none of the erased subject into the changelog and publishes none of them; without the list it would', async () => {
    const { S, WS, P, IDS, NEEDLES, HISTORY, LATE, LATE_ROLE, GONE, LATER } = scenario();
    const changelog = new DynamoChangelogStore(dynamo, { table: tables.changelog! });
    const table = { client: dynamo, table: tables.changelog! };
    const memberships = new DynamoMembershipProjection(dynamo, tables.memberships!);
    // A fresh router with no checkpoint state: the stream read again from its start (or a redrive).
    const route = async (recs: UserRecord[], withList: boolean) => {
      const published: StreamEvent[] = [];
      const sink = { enqueue: (_p: ProjectRef, changes: readonly SequencedChange[]) => void published.push(...changes.map((c) => c.event)), flush: () => Promise.resolve(), revoke: () => {} };
      const deadLetters = { put: () => Promise.reject(new Error('no dead letter expected')) };
      await new ShardRouter({ shardId: 's-1', consumer: 'router', changelog, sink, deadLetters, memberships, validate: validateEvent, ...(withList ? { erased: erasedList() } : {}) }).process(recs);
      return published;
    };
    const holding = (events: StreamEvent[]) => events.filter((e) => holdsAny(e.envelope, NEEDLES));
    const redrive = (events: readonly object[]): UserRecord[] => events.map((e, i) => ({ shardId: 's-1', sequenceNumber: String(100 + i), subSequenceNumber: 0, partitionKey: `${REDRIVE_PARTITION_PREFIX}${WS}`, data: Buffer.from(JSON.stringify(e)) }));
    const found = async () => (await CHANGELOG_SINK.scan(table, IDS)).found;

    expect(holding(await route(records(WS, HISTORY), true)).length).toBeGreaterThan(0);
    expect(await found()).toBe(4);

    await keys.destroy(S);
    await CHANGELOG_SINK.purge(table, IDS);
    expect(await found()).toBe(0);

    // The reset replay, with their late edit, the purge's membership delete and a redrive of their comment: nothing of them is written or published.
    const published = await route([...records(WS, [...HISTORY, LATE, LATE_ROLE, GONE]), ...redrive([HISTORY[2]!])], true);
    expect(holding(published)).toEqual([]);
    expect(published.map((e) => JSON.stringify(e.envelope.data))).toContainEqual(expect.stringContaining('@[erased] looks good')); // the other user's comment, their mention blanked
    expect(await found()).toBe(0);
    const page = await changelog.read({ workspaceId: WS, projectId: P }, 0, 100);
    expect(page.entries.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]); // every event keeps a seq; their role change in its erased form
    expect((page.entries[4] as FullEntry).event.data).toMatchObject({ after: { title: 'Launch v2', created_by: null, description: null } });
    expect((page.entries[5] as FullEntry).event.data).toMatchObject({ erased: true, before: null, after: null });
    // Authorization took the events as they are: the purge's delete of their membership revoked it.
    expect(await memberships.memberships(S)).toEqual([]);

    // The control: the same replay without the list publishes them and writes their next edit back.
    expect(holding(await route(records(WS, [...HISTORY, LATE, LATE_ROLE, GONE, LATER]), false)).length).toBeGreaterThan(0);
    expect(await found()).toBeGreaterThan(0);
  });

  it('audit gives an erased actor no new identity link; their records keep the pseudonym; without the list it would', async () => {
    const { S, OTHER, WS, IDS, HISTORY, LATE } = scenario();
    const store = new FileAuditStore(join(dir, 'audit'));
    const pseudonyms = new Pseudonymizer(Buffer.from('erase-then-replay-audit-key-0123456789'));
    const trail = { store, pseudonyms };
    let shard = 0;
    // A fresh audit process (its own known identities) on a shard read from its start.
    const record = (recs: UserRecord[], withList: boolean) =>
      new AuditShardWriter(`s-${++shard}`, { consumer: 'audit', store, deadLetters: { put: () => Promise.reject(new Error('no dead letter expected')) }, validate: validateEvent, pseudonyms, knownIdentities: new Set(), logger: silentLogger, ...(withList ? { erased: erasedList() } : {}) }).processRecords({ records: recs, millisBehindLatest: 0 }, checkpointer);
    const found = async () => (await AUDIT_TRAIL_SINK.scan(trail, IDS)).found;

    await record(records(WS, HISTORY), true);
    expect(await found()).toBe(1);
    expect(await resolveIdentity(store, pseudonyms.actor(OTHER))).toBe(OTHER);

    await keys.destroy(S);
    await AUDIT_TRAIL_SINK.purge(trail, IDS);
    expect(await found()).toBe(0);

    await record(records(WS, [...HISTORY, LATE], [HISTORY[2]!]), true);
    expect(await found()).toBe(0);
    expect(await resolveIdentity(store, pseudonyms.actor(OTHER))).toBe(OTHER); // the other actor's link stays
    const segments = await store.list(`segments/s-${shard}/`);
    const recorded = JSON.parse(Buffer.from((await store.get(segments[0]!))!).toString('utf8')) as { records: { actor: string | null }[] };
    expect(recorded.records.filter((r) => r.actor === pseudonyms.actor(S))).toHaveLength(4); // the trail stays complete, under the pseudonym

    // The control: without the list the replay links the pseudonym to them again.
    await record(records(WS, [...HISTORY, LATE]), false);
    expect(await found()).toBe(1);
  });
});
