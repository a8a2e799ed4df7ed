// The notifications service's DynamoDB tables, declared by their owner: the local stack creates
// them from here (infra/local/tables.ts), the service finds them through DYNAMODB_TABLE_<KEY>.
import { MEMBERSHIP_TABLE_KEY } from '../lib/dynamo-memberships.js';

/** A user's inbox in one workspace: `inbox` = `<workspace id>/<user id>`, sorted by notification (= event) id. */
export const INBOX_INDEX_UNREAD = 'unread';

export const NOTIFICATION_TABLES = [
  {
    // One item per notification; `unread` (= the inbox key) exists only while unread, so the
    // sparse index `unread` holds exactly the unread ones and a count reads only those.
    key: 'notifications',
    table: {
      TableName: 'taskflow-notifications',
      AttributeDefinitions: [
        { AttributeName: 'inbox', AttributeType: 'S' as const },
        { AttributeName: 'id', AttributeType: 'S' as const },
        { AttributeName: 'unread', AttributeType: 'S' as const },
      ],
      KeySchema: [
        { AttributeName: 'inbox', KeyType: 'HASH' as const },
        { AttributeName: 'id', KeyType: 'RANGE' as const },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: INBOX_INDEX_UNREAD,
          KeySchema: [
            { AttributeName: 'unread', KeyType: 'HASH' as const },
            { AttributeName: 'id', KeyType: 'RANGE' as const },
          ],
          Projection: { ProjectionType: 'INCLUDE' as const, NonKeyAttributes: ['projectId'] },
        },
      ],
      BillingMode: 'PAY_PER_REQUEST' as const,
    },
  },
  {
    // Who watches which task from which event on (rules.ts): HASH taskId, RANGE userId.
    key: 'notification-watchers',
    table: {
      TableName: 'taskflow-notification-watchers',
      AttributeDefinitions: [
        { AttributeName: 'taskId', AttributeType: 'S' as const },
        { AttributeName: 'userId', AttributeType: 'S' as const },
      ],
      KeySchema: [
        { AttributeName: 'taskId', KeyType: 'HASH' as const },
        { AttributeName: 'userId', KeyType: 'RANGE' as const },
      ],
      BillingMode: 'PAY_PER_REQUEST' as const,
    },
  },
  {
    // The service's own membership projection (lib/dynamo-memberships.ts), from the stream: who
    // may still read a notification's project. Tombstones expire by TTL.
    key: 'notification-memberships',
    ttlAttribute: 'expiresAt',
    table: { TableName: 'taskflow-notification-memberships', ...MEMBERSHIP_TABLE_KEY, AttributeDefinitions: [...MEMBERSHIP_TABLE_KEY.AttributeDefinitions], KeySchema: [...MEMBERSHIP_TABLE_KEY.KeySchema] },
  },
];
