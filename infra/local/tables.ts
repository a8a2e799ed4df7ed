// The DynamoDB tables of the pipeline, created by the local stack (dynalite) at start and by
// test helpers under per-test names. Services find a table through the environment
// (stackEnv: DYNAMODB_TABLE_<KEY>), never through this file. Append new tables here.
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { DLQ_TABLE, DLQ_TABLE_SPEC } from '../../lib/dlq.js';
import { MEMBERSHIP_TABLE_KEY } from '../../lib/dynamo-memberships.js';
import { NOTIFICATION_TABLES } from '../../notifications/tables.js';
import { LEASE_TABLE_KEY } from '@taskflow/stream';
import { SUBJECT_KEYS_TABLE_KEY, SUBJECT_KEYS_TABLE_SPEC } from '../../lib/subject-keys.js';
import { GDPR_REQUESTS_TABLE_KEY, GDPR_REQUESTS_TABLE_SPEC } from '../../gdpr/request-store.js';

export interface TableSpec {
  /** Logical name: key of StackInfo.dynamodb.tables, suffix of the env var DYNAMODB_TABLE_<KEY>. */
  key: string;
  /** Attribute that DynamoDB's TTL expires items by (epoch seconds), if any. */
  ttlAttribute?: string;
  /** false: no point-in-time recovery, because a restorable copy would undo an erasure (subject keys). Default true. */
  backups?: false;
  table: Omit<CreateTableCommandInput, 'TableName'> & { TableName: string };
}

export const TABLES: readonly TableSpec[] = [
  {
    // KCL-style shard leases (packages/stream): one item per (consumer name, shard id).
    key: 'leases',
    table: { TableName: 'taskflow-leases', ...LEASE_TABLE_KEY, BillingMode: 'PAY_PER_REQUEST' },
  },
  {
    // Per-consumer progress that is not a shard lease (e.g. per-project sequence counters).
    key: 'checkpoints',
    table: {
      TableName: 'taskflow-checkpoints',
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    },
  },
  {
    // A project's recent changes by sequence number, served by the replay API; expires by TTL.
    key: 'changelog',
    ttlAttribute: 'expiresAt',
    table: {
      TableName: 'taskflow-changelog',
      AttributeDefinitions: [
        { AttributeName: 'projectKey', AttributeType: 'S' },
        { AttributeName: 'seq', AttributeType: 'N' },
      ],
      KeySchema: [
        { AttributeName: 'projectKey', KeyType: 'HASH' },
        { AttributeName: 'seq', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    },
  },
  {
    // Events that failed validation or delivery, with the reason, for inspection and redrive.
    key: 'dlq',
    table: { ...DLQ_TABLE_SPEC, TableName: DLQ_TABLE },
  },
  {
    // Projection of memberships (user -> workspace/project) that topic authorization reads.
    // Deletes leave tombstones (lib/dynamo-memberships.ts) that expire by TTL.
    key: 'memberships',
    ttlAttribute: 'expiresAt',
    table: { TableName: 'taskflow-memberships', ...MEMBERSHIP_TABLE_KEY, AttributeDefinitions: [...MEMBERSHIP_TABLE_KEY.AttributeDefinitions], KeySchema: [...MEMBERSHIP_TABLE_KEY.KeySchema] },
  },
  {
    // Live MQTT subscriptions (client -> topic filters) as the broker's lifecycle events report
    // them, so a (re)started router knows where to publish (router/subscription-store.ts).
    key: 'subscriptions',
    ttlAttribute: 'expiresAt',
    table: {
      TableName: 'taskflow-subscriptions',
      AttributeDefinitions: [
        { AttributeName: 'clientId', AttributeType: 'S' },
        { AttributeName: 'filter', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'clientId', KeyType: 'HASH' },
        { AttributeName: 'filter', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    },
  },
  // The notifications service's inbox, watchers and membership projection (notifications/tables.ts).
  ...NOTIFICATION_TABLES,
  {
    // Per-subject wrapped data keys and erasure tombstones (crypto-shredding, lib/subject-keys.ts).
    key: SUBJECT_KEYS_TABLE_KEY,
    backups: false,
    table: { ...SUBJECT_KEYS_TABLE_SPEC, AttributeDefinitions: [...SUBJECT_KEYS_TABLE_SPEC.AttributeDefinitions], KeySchema: [...SUBJECT_KEYS_TABLE_SPEC.KeySchema] },
  },
  {
    // Erasure requests and their state machine (gdpr/request-store.ts). No PITR: until a request
    // completes it holds the subject's identifiers, which a restorable copy would keep.
    key: GDPR_REQUESTS_TABLE_KEY,
    backups: false,
    table: { ...GDPR_REQUESTS_TABLE_SPEC, AttributeDefinitions: [...GDPR_REQUESTS_TABLE_SPEC.AttributeDefinitions], KeySchema: [...GDPR_REQUESTS_TABLE_SPEC.KeySchema] },
  },
];
