// LeaseStore on DynamoDB: one table shared by every consumer, key (consumerName, leaseKey), so
// one strongly consistent Query lists a consumer's leases. Every write is conditional on
// leaseCounter; a failed condition answers false. The writes — a checkpoint per processed batch
// and the renewals, the consumer's most frequent requests — are sent directly
// (lib/aws-direct.ts) in the attribute types the document client writes and reads.
import { type AttributeValue, CreateTableCommand, type DynamoDBClient, ResourceInUseException, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { conditionalWrite, DirectAwsJson, DYNAMODB_JSON } from '../../../../lib/aws-direct.js';
import type { LeaseStore } from './lease-store.js';
import type { Lease } from './leases.js';

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
  checkpointState?: string;
  parentShardIds: string[];
  ownerSwitchesSinceCheckpoint: number;
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
          KeyConditionExpression: 'consumerName = :c',
          ExpressionAttributeValues: { ':c': this.consumerName },
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
    return conditionalWrite(
      this.direct,
      'DeleteItem',
      { TableName: this.tableName, Key: { consumerName: { S: this.consumerName }, leaseKey: { S: leaseKey } }, ConditionExpression: condition, ExpressionAttributeValues: { ':expected': { N: String(expectedCounter) } } },
      () => this.doc.send(new DeleteCommand({ TableName: this.tableName, Key: { consumerName: this.consumerName, leaseKey }, ConditionExpression: condition, ExpressionAttributeValues: { ':expected': expectedCounter } })),
    );
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
  if (item.checkpointState !== undefined) lease.checkpointState = item.checkpointState;
  return lease;
}
