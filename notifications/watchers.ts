// The watcher facts in DynamoDB (notifications/tables.ts): one item per (task, user) holding the
// earliest event that made the user a watcher (rules.ts). A write only ever moves `since`
// earlier, so facts from any re-read, in any order, end the same.
import { ConditionalCheckFailedException, type AttributeValue, type DynamoDBClient, PutItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import type { WatcherStore } from './pipeline.js';
import type { Watch, Watchers } from './rules.js';

export class DynamoWatcherStore implements WatcherStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly table = 'taskflow-notification-watchers',
  ) {}

  async watchers(taskIds: readonly string[]): Promise<Map<string, Watchers>> {
    const entries = await Promise.all(
      taskIds.map(async (taskId) => {
        const watchers = new Map<string, string>();
        let start: Record<string, AttributeValue> | undefined;
        do {
          const page = await this.client.send(
            new QueryCommand({ TableName: this.table, KeyConditionExpression: 'taskId = :t', ExpressionAttributeValues: { ':t': { S: taskId } }, ConsistentRead: true, ExclusiveStartKey: start }),
          );
          for (const item of page.Items ?? []) if (item.userId?.S && item.since?.S) watchers.set(item.userId.S, item.since.S);
          start = page.LastEvaluatedKey;
        } while (start);
        return [taskId, watchers] as const;
      }),
    );
    return new Map(entries);
  }

  async record(watches: readonly Watch[]): Promise<void> {
    // The earliest fact per (task, user) is the only one that can change anything.
    const earliest = new Map<string, Watch>();
    for (const w of watches) {
      const key = `${w.taskId}/${w.userId}`;
      const known = earliest.get(key);
      if (!known || w.since < known.since) earliest.set(key, w);
    }
    await Promise.all(
      [...earliest.values()].map(async (w) => {
        try {
          await this.client.send(
            new PutItemCommand({
              TableName: this.table,
              Item: { taskId: { S: w.taskId }, userId: { S: w.userId }, since: { S: w.since } },
              ConditionExpression: 'attribute_not_exists(since) OR since > :s',
              ExpressionAttributeValues: { ':s': { S: w.since } },
            }),
          );
        } catch (err) {
          if (!(err instanceof ConditionalCheckFailedException)) throw err;
        }
      }),
    );
  }
}
