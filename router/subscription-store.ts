// Live subscriptions outlive a router process: every instance writes the lifecycle events it
// sees to DynamoDB (idempotently: all instances see the same events) and a starting instance
// loads them, so subscribers that subscribed before it started still get their messages.
// A stale entry (a client gone while no router ran) only costs extra publishes, never a loss;
// entries expire after a day (IoT Core connections last at most 24 h): `expiresAt` is the table's
// TTL attribute, and `sweep` deletes expired entries itself because the local DynamoDB
// (dynalite) ignores TTL and real TTL deletes only within days. Entries are kept per
// session (`clientId#sessionId`, see lib/subscriptions.ts) so a stale disconnect removes only its own.
import { BatchWriteItemCommand, type DynamoDBClient, PutItemCommand, QueryCommand, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { sessionKey, type SubscriptionEvent } from '../lib/subscriptions.js';

const ENTRY_TTL_SECONDS = 24 * 3600;

export class DynamoSubscriptionStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly table = 'taskflow-subscriptions',
    private readonly now: () => number = Date.now,
  ) {}

  /** Everything recorded, as `subscribed` events to replay into a LiveSubscriptions. */
  async load(): Promise<SubscriptionEvent[]> {
    const bySession = new Map<string, string[]>();
    const nowSeconds = Math.floor(this.now() / 1000);
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(new ScanCommand({ TableName: this.table, ExclusiveStartKey: start, ConsistentRead: true }));
      for (const item of page.Items ?? []) {
        const clientId = item.clientId?.S;
        const filter = item.filter?.S;
        if (!clientId || !filter || Number(item.expiresAt?.N ?? 0) <= nowSeconds) continue;
        bySession.set(clientId, [...(bySession.get(clientId) ?? []), filter]);
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return [...bySession].map(([key, filters]) => {
      const at = key.lastIndexOf('#');
      return at < 0 ? { kind: 'subscribed', clientId: key, filters } : { kind: 'subscribed', clientId: key.slice(0, at), sessionId: key.slice(at + 1), filters };
    });
  }

  /** Deletes the entries whose `expiresAt` has passed (a dead router's clients); returns how many. */
  async sweep(): Promise<number> {
    const nowSeconds = String(Math.floor(this.now() / 1000));
    let deleted = 0;
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(
        new ScanCommand({
          TableName: this.table,
          ExclusiveStartKey: start,
          ProjectionExpression: 'clientId, #f',
          FilterExpression: 'expiresAt <= :now',
          ExpressionAttributeNames: { '#f': 'filter' },
          ExpressionAttributeValues: { ':now': { N: nowSeconds } },
        }),
      );
      const keys = (page.Items ?? []).flatMap((i) => (i.clientId?.S && i.filter?.S ? [{ clientId: { S: i.clientId.S }, filter: { S: i.filter.S } }] : []));
      for (let i = 0; i < keys.length; i += 25) {
        await this.client.send(new BatchWriteItemCommand({ RequestItems: { [this.table]: keys.slice(i, i + 25).map((Key) => ({ DeleteRequest: { Key } })) } }));
      }
      deleted += keys.length;
      start = page.LastEvaluatedKey;
    } while (start);
    return deleted;
  }

  async record(event: SubscriptionEvent): Promise<void> {
    if (event.kind === 'subscribed') {
      const expiresAt = { N: String(Math.floor(this.now() / 1000) + ENTRY_TTL_SECONDS) };
      await Promise.all(
        event.filters.map((filter) => this.client.send(new PutItemCommand({ TableName: this.table, Item: { clientId: { S: sessionKey(event) }, filter: { S: filter }, expiresAt } }))),
      );
      return;
    }
    const key = sessionKey(event);
    const filters = event.kind === 'unsubscribed' ? event.filters : await this.filtersOf(key);
    for (let i = 0; i < filters.length; i += 25) {
      const chunk = filters.slice(i, i + 25);
      await this.client.send(
        new BatchWriteItemCommand({ RequestItems: { [this.table]: chunk.map((filter) => ({ DeleteRequest: { Key: { clientId: { S: key }, filter: { S: filter } } } })) } }),
      );
    }
  }

  private async filtersOf(clientId: string): Promise<string[]> {
    const out = await this.client.send(
      new QueryCommand({ TableName: this.table, KeyConditionExpression: 'clientId = :c', ExpressionAttributeValues: { ':c': { S: clientId } }, ConsistentRead: true }),
    );
    return (out.Items ?? []).flatMap((i) => (i.filter?.S ? [i.filter.S] : []));
  }
}
