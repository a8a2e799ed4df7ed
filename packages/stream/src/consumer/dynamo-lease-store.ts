// LeaseStore on DynamoDB: one table shared by every consumer, key (consumerName, leaseKey), so
// one strongly consistent Query lists a consumer's leases. Every write is conditional on
// leaseCounter; a failed condition answers false. The writes — a checkpoint per processed batch
// and the renewals, the consumer's most frequent requests — are sent directly
// (lib/aws-direct.ts) in the attribute types the document client writes and reads.
//
// A lease's checkpoint state (tens of KB of marks for the router and audit) is not in its lease
// item but in one of two slot items in the same partition, sort key `~state#<leaseKey>#a|b`
// (leases.ts planState): '~' sorts after every character of a Kinesis shard id (shardId-<digits>),
// so the list's key condition `leaseKey < '~'` reads the lease items alone, and a renewal rewrites
// only the small lease item. A lease key starting with '~' is refused.
import { type AttributeValue, CreateTableCommand, type DynamoDBClient, ResourceInUseException, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { conditionalWrite, DirectAwsJson, DYNAMODB_JSON } from '../../../../lib/aws-direct.js';
import { TaskflowError } from '../../../../lib/errors.js';
import type { LeaseStore } from './lease-store.js';
import type { Lease, StateRef, StateSlot } from './leases.js';

/** Sort keys from here on are state slots, not leases (see the top of this file). */
export const STATE_KEY_PREFIX = '~';

/** The sort key of a lease's state slot. */
export function stateSlotKey(leaseKey: string, slot: StateSlot): string {
  return `${STATE_KEY_PREFIX}state#${leaseKey}#${slot}`;
}

/** The table's key schema (infra/local/tables.ts builds the local `leases` table from it). */
export const LEASE_TABLE_KEY = {
  AttributeDefinitions: [
    { AttributeName: 'consumerName', AttributeType: 'S' as const },
    { AttributeName: 'leaseKey', AttributeType: 'S' as const },
  ],
  KeySchema: [
    { AttributeName: 'consumerName', KeyType: 'HASH' as const },
    { AttributeName: 'leaseKey', KeyType: 'RANGE' as const },
  ],
};

/** Creates the lease table unless it exists (local stacks and tests; production declares it). */
export async function ensureLeaseTable(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    await client.send(new CreateTableCommand({ TableName: tableName, BillingMode: 'PAY_PER_REQUEST', ...LEASE_TABLE_KEY }));
  } catch (err) {
    if (!(err instanceof ResourceInUseException)) throw err;
  }
  // The waiter's default first delay is 20 s whenever its first look finds the table CREATING; a
  // new on-demand table is usually ACTIVE within seconds.
  await waitUntilTableExists({ client, maxWaitTime: 60, minDelay: 1, maxDelay: 5 }, { TableName: tableName });
}

interface LeaseItem {
  consumerName: string;
  leaseKey: string;
  leaseOwner?: string;
  leaseCounter: number;
  checkpoint: string;
  checkpointSubSequence: number;
  /** The slot holding the state for `checkpoint`, and its writer's counter (leases.ts StateRef). */
  stateSlot?: string;
  stateWriterCounter?: number;
  /** The previous version's inline state (read when there is no slot). */
  checkpointState?: string;
  parentShardIds: string[];
  ownerSwitchesSinceCheckpoint: number;
}

interface StateItem {
  consumerName: string;
  leaseKey: string;
  writerCounter: number;
  state: string;
}

export class DynamoLeaseStore implements LeaseStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly direct: DirectAwsJson | undefined;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
    private readonly consumerName: string,
  ) {
    this.doc = DynamoDBDocumentClient.from(client);
    this.direct = DirectAwsJson.of(client, DYNAMODB_JSON);
  }

  async list(): Promise<Lease[]> {
    const leases: Lease[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'consumerName = :c AND leaseKey < :states',
          ExpressionAttributeValues: { ':c': this.consumerName, ':states': STATE_KEY_PREFIX },
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) leases.push(fromItem(item as LeaseItem));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return leases;
  }

  async create(lease: Lease): Promise<boolean> {
    if (lease.leaseKey.startsWith(STATE_KEY_PREFIX)) throw new TaskflowError('BAD_LEASE_KEY', `lease key ${lease.leaseKey} starts with ${STATE_KEY_PREFIX}, which is reserved for state slots`);
    const item = this.toItem(lease);
    const condition = 'attribute_not_exists(leaseKey)';
    return conditionalWrite(this.direct, 'PutItem', { TableName: this.tableName, Item: attributes(item), ConditionExpression: condition }, () =>
      this.doc.send(new PutCommand({ TableName: this.tableName, Item: item, ConditionExpression: condition })),
    );
  }

  async replace(next: Lease, expectedCounter: number): Promise<boolean> {
    const item = this.toItem(next);
    const condition = 'leaseCounter = :expected';
    return conditionalWrite(this.direct, 'PutItem', { TableName: this.tableName, Item: attributes(item), ConditionExpression: condition, ExpressionAttributeValues: { ':expected': { N: String(expectedCounter) } } }, () =>
      this.doc.send(new PutCommand({ TableName: this.tableName, Item: item, ConditionExpression: condition, ExpressionAttributeValues: { ':expected': expectedCounter } })),
    );
  }

  async delete(leaseKey: string, expectedCounter: number): Promise<boolean> {
    const condition = 'leaseCounter = :expected';
    const deleted = await conditionalWrite(
      this.direct,
      'DeleteItem',
      { TableName: this.tableName, Key: { consumerName: { S: this.consumerName }, leaseKey: { S: leaseKey } }, ConditionExpression: condition, ExpressionAttributeValues: { ':expected': { N: String(expectedCounter) } } },
      () => this.doc.send(new DeleteCommand({ TableName: this.tableName, Key: { consumerName: this.consumerName, leaseKey }, ConditionExpression: condition, ExpressionAttributeValues: { ':expected': expectedCounter } })),
    );
    // The lease is gone for good (finished, its shard trimmed): so are its states.
    if (deleted) {
      for (const slot of ['a', 'b'] as const) {
        const key = { consumerName: this.consumerName, leaseKey: stateSlotKey(leaseKey, slot) };
        await conditionalWrite(this.direct, 'DeleteItem', { TableName: this.tableName, Key: { consumerName: { S: key.consumerName }, leaseKey: { S: key.leaseKey } } }, () => this.doc.send(new DeleteCommand({ TableName: this.tableName, Key: key })));
      }
    }
    return deleted;
  }

  async writeState(leaseKey: string, ref: StateRef, state: string): Promise<boolean> {
    const item: StateItem = { consumerName: this.consumerName, leaseKey: stateSlotKey(leaseKey, ref.slot), writerCounter: ref.writerCounter, state };
    const condition = 'attribute_not_exists(writerCounter) OR writerCounter < :writer';
    return conditionalWrite(
      this.direct,
      'PutItem',
      { TableName: this.tableName, Item: { consumerName: { S: item.consumerName }, leaseKey: { S: item.leaseKey }, writerCounter: { N: String(item.writerCounter) }, state: { S: state } }, ConditionExpression: condition, ExpressionAttributeValues: { ':writer': { N: String(ref.writerCounter) } } },
      () => this.doc.send(new PutCommand({ TableName: this.tableName, Item: item, ConditionExpression: condition, ExpressionAttributeValues: { ':writer': ref.writerCounter } })),
    );
  }

  async readState(leaseKey: string, ref: StateRef): Promise<string | undefined> {
    // A Query of the one key rather than a GetItem: the readers' roles hold Query, PutItem and
    // DeleteItem on their own partition of the lease table (infra/aws/stacks/services.ts LEASES).
    const { Items } = await this.doc.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'consumerName = :c AND leaseKey = :k',
        ExpressionAttributeValues: { ':c': this.consumerName, ':k': stateSlotKey(leaseKey, ref.slot) },
        ConsistentRead: true,
      }),
    );
    const item = Items?.[0] as StateItem | undefined;
    return item && Number(item.writerCounter) === ref.writerCounter ? item.state : undefined;
  }

  private toItem(lease: Lease): LeaseItem {
    const item: LeaseItem = {
      consumerName: this.consumerName,
      leaseKey: lease.leaseKey,
      leaseCounter: lease.leaseCounter,
      checkpoint: lease.checkpoint,
      checkpointSubSequence: lease.checkpointSubSequence,
      parentShardIds: lease.parentShardIds,
      ownerSwitchesSinceCheckpoint: lease.ownerSwitchesSinceCheckpoint,
    };
    if (lease.leaseOwner !== null) item.leaseOwner = lease.leaseOwner;
    if (lease.stateRef) {
      item.stateSlot = lease.stateRef.slot;
      item.stateWriterCounter = lease.stateRef.writerCounter;
    }
    if (lease.checkpointState !== undefined) item.checkpointState = lease.checkpointState;
    return item;
  }
}

/** The item in DynamoDB JSON, typed as the document client marshals it (strings S, numbers N, the parents a list of S). */
function attributes(item: LeaseItem): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const [name, value] of Object.entries(item) as [string, LeaseItem[keyof LeaseItem]][]) {
    if (value === undefined) continue;
    out[name] = typeof value === 'number' ? { N: String(value) } : typeof value === 'string' ? { S: value } : { L: value.map((v) => ({ S: v })) };
  }
  return out;
}

function fromItem(item: LeaseItem): Lease {
  const lease: Lease = {
    leaseKey: item.leaseKey,
    leaseOwner: item.leaseOwner ?? null,
    leaseCounter: Number(item.leaseCounter),
    checkpoint: item.checkpoint,
    checkpointSubSequence: Number(item.checkpointSubSequence ?? 0),
    parentShardIds: item.parentShardIds ?? [],
    ownerSwitchesSinceCheckpoint: Number(item.ownerSwitchesSinceCheckpoint ?? 0),
  };
  if ((item.stateSlot === 'a' || item.stateSlot === 'b') && item.stateWriterCounter !== undefined) lease.stateRef = { slot: item.stateSlot, writerCounter: Number(item.stateWriterCounter) };
  // An item of the previous version: its state inline (the next checkpoint moves it into a slot).
  if (item.checkpointState !== undefined) lease.checkpointState = item.checkpointState;
  return lease;
}
