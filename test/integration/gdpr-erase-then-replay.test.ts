// Erase, then replay (issue 13 §4): a subject's history is applied by search's and notifications'
// shard processors (the path a Kinesis replay takes) and loaded into the warehouse from the
// archive; the subject is erased (key destroyed — the erased-subjects list is its tombstone — and
// each sink purged); then the same history is fed again to fresh processors and the warehouse is
// rebuilt from the archive, which still holds it verbatim. Every sink's scan finds 0. Without the
// erased-subjects check the same replay brings the data back (the control).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ErasedSubjects, type UserRecord } from '@taskflow/stream';
import { Loader } from '../../analytics/loader.js';
import { DuckDbWarehouse } from '../../analytics/warehouse/duckdb.js';
import { DynamoMembershipProjection } from '../../lib/dynamo-memberships.js';
import type { ErasureSink, SubjectIdentifiers } from '../../lib/erasure.js';
import { silentLogger } from '../../lib/logger.js';
import { FsObjectStore } from '../../lib/object-store.js';
import { createSubjectKeyStore, loadSubjectKeyConfig } from '../../lib/subject-keys.js';
import { openErasureSinks as openNotificationSinks } from '../../notifications/erasure-sink.js';
import { DynamoInbox } from '../../notifications/inbox.js';
import { NotificationShardProcessor } from '../../notifications/shard-processor.js';
import { DynamoWatcherStore } from '../../notifications/watchers.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { validateEvent } from '../../schemas/validate.js';
import { openErasureSinks as openSearchSinks } from '../../search/erasure-sink.js';
import { SearchShardProcessor } from '../../search/shard-processor.js';
import { SqliteSearchIndex } from '../../search/sqlite-index.js';
import { createTestTables, dynamoClient, testStackEnv } from '../support/stack.js';

const [S, OTHER, WS, P, TASK, COMMENT, OTHER_COMMENT] = Array.from({ length: 7 }, () => randomUUID());
const PLAN = `her private plan ${randomUUID()}`;
const REMARK = `her private remark ${randomUUID()}`;
const IDS: SubjectIdentifiers = { subject: S!, email: null, displayName: null, authored: [{ table: 'tasks', id: TASK!, text: PLAN }, { table: 'comments', id: COMMENT!, text: REMARK }] };
const at = (s: number) => `2026-11-26T12:00:${String(s).padStart(2, '0')}.000000Z`;
const base = { workspaceId: WS!, projectId: P! };
const HISTORY = [
  sampleEvent('membership.created', { ...base, commitLsn: 0x100n, time: at(1), entityId: randomUUID(), userId: S }),
  sampleEvent('membership.created', { ...base, commitLsn: 0x110n, time: at(2), entityId: randomUUID(), userId: OTHER }),
  sampleEvent('task.created', { ...base, commitLsn: 0x200n, time: at(3), entityId: TASK, userId: S, row: { title: 'Launch', description: PLAN } }),
  sampleEvent('comment.created', { ...base, commitLsn: 0x300n, time: at(4), entityId: COMMENT, userId: S, row: { task_id: TASK!, body: REMARK } }),
  // The other user's comment on their task, mentioning them: notifies them (watcher, mention).
  sampleEvent('comment.created', { ...base, commitLsn: 0x400n, time: at(5), entityId: OTHER_COMMENT, userId: OTHER, row: { task_id: TASK!, body: `@${S} looks good` } }),
];
const records = (): UserRecord[] => HISTORY.map((e, i) => ({ shardId: 's-1', sequenceNumber: String(i + 1), subSequenceNumber: 0, partitionKey: WS!, data: Buffer.from(JSON.stringify(e)) }));
const checkpointer = { checkpoint: () => Promise.resolve() };
const noLetters = { put: () => Promise.reject(new Error('no dead letter expected')) };

let dir: string;
let dynamo: DynamoDBClient;
let env: Record<string, string>;
let keys: ReturnType<typeof createSubjectKeyStore>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gdpr-replay-'));
  dynamo = dynamoClient();
  const tables = await createTestTables('gdpr-replay', ['notifications', 'notification-watchers', 'notification-memberships', 'subject-keys']);
  env = {
    ...testStackEnv(),
    DYNAMODB_TABLE_NOTIFICATIONS: tables.notifications!,
    DYNAMODB_TABLE_NOTIFICATION_WATCHERS: tables['notification-watchers']!,
    DYNAMODB_TABLE_NOTIFICATION_MEMBERSHIPS: tables['notification-memberships']!,
    DYNAMODB_TABLE_SUBJECT_KEYS: tables['subject-keys']!,
    SUBJECT_KEYS_LOCAL_KEK_FILE: join(dir, 'kek'),
    TASKFLOW_ENV: 'development',
    SEARCH_DB_PATH: join(dir, 'search.db'),
  };
  keys = createSubjectKeyStore(loadSubjectKeyConfig(env), dynamo, () => {
    throw new Error('no KMS locally');
  });
  const folder = join(dir, 'archive', 'raw', '2026', '11', '26', '12');
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'archive-1-2026-11-26-12-00-01-00000001-aaaa-bbbb-cccc-dddddddddddd.gz'), gzipSync(HISTORY.map((e) => `${JSON.stringify(e)}\n`).join('')));
});

afterAll(() => {
  dynamo?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('erase, then replay the history', () => {
  it('search, notifications and the warehouse take none of the erased subject back; without the list they would', async () => {
    const erased = () => new ErasedSubjects({ lookup: (s) => keys.isDestroyed(s), ttlMs: 1000 });
    const index = new SqliteSearchIndex(env.SEARCH_DB_PATH!);
    const memberships = new DynamoMembershipProjection(dynamo, env.DYNAMODB_TABLE_NOTIFICATION_MEMBERSHIPS!);
    const notificationDeps = {
      inbox: new DynamoInbox(dynamo, env.DYNAMODB_TABLE_NOTIFICATIONS!),
      watchers: new DynamoWatcherStore(dynamo, env.DYNAMODB_TABLE_NOTIFICATION_WATCHERS!),
      memberships,
      delivery: { deliver: (n: readonly unknown[]) => Promise.resolve(n.length) },
      deadLetters: noLetters,
      validate: validateEvent,
    };
    const apply = async (withList: boolean) => {
      const list = withList ? { erased: erased() } : {};
      await new SearchShardProcessor('s-1', { consumer: 'search', index, deadLetters: noLetters, validate: validateEvent, ...list }).processRecords({ records: records(), millisBehindLatest: 0 }, checkpointer);
      await new NotificationShardProcessor('s-1', { consumer: 'notifications', ...notificationDeps, ...list }).processRecords({ records: records(), millisBehindLatest: 0 }, checkpointer);
    };
    const warehouse = await DuckDbWarehouse.open(':memory:');
    const archive = new FsObjectStore(join(dir, 'archive'));
    const load = async (withList: boolean) => {
      await warehouse.resetCurated(''); // a rebuild: forget every object, load the archive again
      await new Loader(archive, 'raw/', warehouse, silentLogger, { fullListEveryMs: 0, ...(withList ? { erased: erased() } : {}) }).loadNew();
    };
    const search = (await openSearchSinks(env)).sinks;
    const notifications = (await openNotificationSinks(env)).sinks;
    const sinks: ErasureSink[] = [
      ...search,
      ...notifications,
      ...(['warehouse-raw', 'warehouse-curated'] as const).map((sink) => ({ sink, purge: (ids: SubjectIdentifiers) => warehouse.erase(sink, ids), scan: (ids: SubjectIdentifiers) => warehouse.holding(sink, ids) })),
    ];
    const found = async () => Object.fromEntries(await Promise.all(sinks.map(async (s) => [s.sink, (await s.scan(IDS)).found] as const)));
    const none = Object.fromEntries(sinks.map((s) => [s.sink, 0]));

    // The history, as the services applied it before the request.
    await apply(true);
    await load(true);
    const before = await found();
    expect(Object.values(before).every((n) => n > 0)).toBe(true);

    // Erasure: the key (and with it the list's tombstone), then every sink.
    await keys.destroy(S!);
    for (const s of sinks) await s.purge(IDS);
    expect(await found()).toEqual(none);

    // A replay of the stream and a rebuild of the warehouse from the archive bring nothing back.
    await apply(true);
    await load(true);
    expect(await found()).toEqual(none);
    // The other user's data came through (the check is per subject, not per event).
    expect((await index.documents(WS!)).map((d) => d.id)).toContain(OTHER_COMMENT); // its text stays as the purge left it
    expect(await memberships.memberships(OTHER!)).toHaveLength(1);
    expect(await warehouse.query(`SELECT count(*)::INTEGER AS n FROM raw_events`)).toEqual([{ n: HISTORY.length - 1 }]); // their membership left out

    // The control: the same replay without the list re-inserts them.
    await apply(false);
    await load(false);
    const again = await found();
    expect(Object.values(again).some((n) => n > 0)).toBe(true);

    await warehouse.close();
    await index.close();
  });
});
