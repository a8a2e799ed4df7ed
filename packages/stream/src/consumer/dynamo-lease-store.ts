// LeaseStore on DynamoDB: one table shared by every consumer, key (consumerName, leaseKey), so
// one strongly consistent Query lists a consumer's leases. Every write is conditional on
// leaseCounter; a failed condition answers false.
import { ConditionalCheckFailedException, CreateTableCommand, type DynamoDBClient, ResourceInUseException, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
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

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
    private readonly consumerName: string,
  ) {
    this.doc = DynamoDBDocumentClient.from(client);
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
    return this.conditional(
      new PutCommand({ TableName: this.tableName, Item: this.toItem(lease), ConditionExpression: 'attribute_not_exists(leaseKey)' }),
    );
  }

  async replace(next: Lease, expectedCounter: number): Promise<boolean> {
    return this.conditional(
      new PutCommand({
        TableName: this.tableName,
        Item: this.toItem(next),
        ConditionExpression: 'leaseCounter = :expected',
        ExpressionAttributeValues: { ':expected': expectedCounter },
      }),
    );
  }

  async delete(leaseKey: string, expectedCounter: number): Promise<boolean> {
    return this.conditional(
      new DeleteCommand({
        TableName: this.tableName,
        Key: { consumerName: this.consumerName, leaseKey },
        ConditionExpression: 'leaseCounter = :expected',
        ExpressionAttributeValues: { ':expected': expectedCounter },
      }),
    );
  }

  private async conditional(command: PutCommand | DeleteCommand): Promise<boolean> {
    try {
      await this.doc.send(command as PutCommand);
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
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
