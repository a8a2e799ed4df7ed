// The notifications-inbox erasure sink (notifications/erasure-sink.ts) on dynalite, over the
// service's own stores: the subject's inbox, a notification about them in another user's inbox
// (they are the actor), one quoting the start of their long comment, their watches and their
// membership in the service's projection. Purge then scan finds 0, a repeat purge changes
// nothing, the other user's unrelated notification stays.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomUUID } from 'node:crypto';
import { decodeEvent } from '@taskflow/stream/events';
import { DynamoMembershipProjection } from '../../lib/dynamo-memberships.js';
import type { ErasureSink, SubjectIdentifiers } from '../../lib/erasure.js';
import { openErasureSinks } from '../../notifications/erasure-sink.js';
import { DynamoInbox } from '../../notifications/inbox.js';
import type { Notification } from '../../notifications/rules.js';
import { DynamoWatcherStore } from '../../notifications/watchers.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { validateEvent } from '../../schemas/validate.js';
import { createTestTables, dynamoClient, testStackEnv } from '../support/stack.js';

let client: DynamoDBClient;
let tables: Record<string, string>;
let sink: ErasureSink;
let close: () => Promise<void>;

beforeAll(async () => {
  client = dynamoClient();
  tables = await createTestTables('gdpr-sink-notif', ['notifications', 'notification-watchers', 'notification-memberships']);
  const opened = await openErasureSinks({
    ...testStackEnv(),
    DYNAMODB_TABLE_NOTIFICATIONS: tables.notifications!,
    DYNAMODB_TABLE_NOTIFICATION_WATCHERS: tables['notification-watchers']!,
    DYNAMODB_TABLE_NOTIFICATION_MEMBERSHIPS: tables['notification-memberships']!,
  });
  [sink] = opened.sinks as [ErasureSink];
  close = opened.close;
});

afterAll(async () => {
  await close?.();
  client?.destroy();
});

describe('notifications-inbox erasure sink', () => {
  it('deletes notifications to and about the subject, their watches and projected memberships; scan then finds 0; a repeat changes nothing', async () => {
    const [subject, other, ws, project, task, comment] = [randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const longComment = `${'a long remark '.repeat(20)}ending privately`;
    const ids: SubjectIdentifiers = { subject, email: 'ada@example.com', displayName: 'Ada Lovelace', authored: [{ table: 'comments', id: comment, text: longComment }] };
    const n = (id: string, o: Partial<Notification>): Notification => ({ id, userId: other, kind: 'assigned', workspaceId: ws, projectId: project, taskId: task, time: '2026-12-03T07:00:00.000Z', ...o }) as Notification;
    const inbox = new DynamoInbox(client, tables.notifications!);
    await inbox.add([
      n('0000000000000100-00000000', { userId: subject, text: 'Launch' }), // to them
      n('0000000000000200-00000000', { actorId: subject, text: 'Launch' }), // about them
      n('0000000000000300-00000000', { kind: 'commented', commentId: comment, text: longComment.slice(0, 140) }), // their comment's excerpt
      n('0000000000000400-00000000', { actorId: other, text: 'Other task' }), // not theirs
    ]);
    await new DynamoWatcherStore(client, tables['notification-watchers']!).record([
      { taskId: task, userId: subject, since: '0000000000000100-00000000' },
      { taskId: task, userId: other, since: '0000000000000100-00000000' },
    ]);
    const membership = decodeEvent(Buffer.from(JSON.stringify(sampleEvent('membership.created', { workspaceId: ws, projectId: project, userId: subject }))), validateEvent);
    if (!membership.ok) throw new Error(membership.message);
    const projection = new DynamoMembershipProjection(client, tables['notification-memberships']!);
    await projection.apply([membership.event]);
    expect(await projection.memberships(subject)).toHaveLength(1);

    const before = await sink.scan(ids);
    expect(before.found).toBe(5); // 3 notifications, 1 watch, the projected membership
    expect(await sink.purge(ids)).toEqual({ changed: 5 });
    expect(await sink.scan(ids)).toEqual({ scanned: before.scanned - 5, found: 0 });
    expect(await sink.purge(ids)).toEqual({ changed: 0 });

    expect((await inbox.list(ws, other, 'all', { limit: 10 })).notifications.map((x) => x.id)).toEqual(['0000000000000400-00000000']);
    expect(await inbox.list(ws, subject, 'all', { limit: 10 })).toEqual({ notifications: [] });
    expect(await projection.memberships(subject)).toEqual([]);
    expect([...((await new DynamoWatcherStore(client, tables['notification-watchers']!).watchers([task])).get(task)?.keys() ?? [])]).toEqual([other]);
  });
});
