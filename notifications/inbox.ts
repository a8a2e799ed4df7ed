// The inbox in DynamoDB (notifications/tables.ts): one item per notification under
// `<workspace>/<user>`, sorted by id (= event id, so by commit order). A notification is written
// only if its item does not exist: a replay neither doubles it nor marks a read one unread.
// `unread` (the inbox key) exists only while unread: the sparse index of that name is the
// unread set, so a count reads only unread items.
import { ConditionalCheckFailedException, type AttributeValue, type DynamoDBClient, PutItemCommand, QueryCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { Inbox } from './pipeline.js';
import type { Notification, NotificationKind } from './rules.js';
import { INBOX_INDEX_UNREAD } from './tables.js';

export interface StoredNotification extends Notification {
  read: boolean;
}

export interface InboxPage {
  notifications: StoredNotification[];
  /** Pass as `before` for the next (older) page; absent at the end. */
  next?: string;
}

/** Which projects' notifications a reader may see: 'all' of the workspace, or the listed ones. */
export type Visible = 'all' | readonly string[];

const inboxKey = (workspaceId: string, userId: string) => `${workspaceId}/${userId}`;
const visible = (projects: Visible, projectId: string | undefined) => projects === 'all' || (projectId !== undefined && projects.includes(projectId));

/** Writes in flight at once for one batch. */
const WRITE_CONCURRENCY = 16;

function toItem(n: Notification): Record<string, AttributeValue> {
  const key = inboxKey(n.workspaceId, n.userId);
  const item: Record<string, AttributeValue> = {
    inbox: { S: key },
    id: { S: n.id },
    unread: { S: key },
    userId: { S: n.userId },
    kind: { S: n.kind },
    workspaceId: { S: n.workspaceId },
    projectId: { S: n.projectId },
    taskId: { S: n.taskId },
    time: { S: n.time },
  };
  if (n.commentId) item.commentId = { S: n.commentId };
  if (n.actorId) item.actorId = { S: n.actorId };
  if (n.text !== undefined) item.text = { S: n.text };
  return item;
}

function fromItem(item: Record<string, AttributeValue>): StoredNotification {
  const n: StoredNotification = {
    id: item.id!.S!,
    userId: item.userId!.S!,
    kind: item.kind!.S! as NotificationKind,
    workspaceId: item.workspaceId!.S!,
    projectId: item.projectId!.S!,
    taskId: item.taskId!.S!,
    time: item.time!.S!,
    read: item.unread === undefined,
  };
  if (item.commentId?.S) n.commentId = item.commentId.S;
  if (item.actorId?.S) n.actorId = item.actorId.S;
  if (item.text?.S !== undefined) n.text = item.text.S;
  return n;
}

export class DynamoInbox implements Inbox {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly table = 'taskflow-notifications',
  ) {}

  async add(notifications: readonly Notification[]): Promise<void> {
    const queue = [...notifications];
    const worker = async () => {
      for (let n = queue.shift(); n; n = queue.shift()) {
        try {
          await this.client.send(new PutItemCommand({ TableName: this.table, Item: toItem(n), ConditionExpression: 'attribute_not_exists(id)' }));
        } catch (err) {
          // Already there (a re-read batch): keep it as it is, read or not.
          if (!(err instanceof ConditionalCheckFailedException)) throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, queue.length) }, worker));
  }

  /** Newest first, only notifications of visible projects; `before` = the previous page's `next`. */
  async list(workspaceId: string, userId: string, projects: Visible, opts: { limit: number; before?: string }): Promise<InboxPage> {
    const out: StoredNotification[] = [];
    let start: Record<string, AttributeValue> | undefined = opts.before ? { inbox: { S: inboxKey(workspaceId, userId) }, id: { S: opts.before } } : undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'inbox = :k',
          ExpressionAttributeValues: { ':k': { S: inboxKey(workspaceId, userId) } },
          ScanIndexForward: false,
          ConsistentRead: true,
          Limit: opts.limit,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) {
        if (out.length === opts.limit) return { notifications: out, next: out[out.length - 1]!.id };
        if (visible(projects, item.projectId?.S)) out.push(fromItem(item));
      }
      start = page.LastEvaluatedKey;
    } while (start && out.length < opts.limit);
    // Still more to read only when the page filled up.
    return start && out.length > 0 ? { notifications: out, next: out[out.length - 1]!.id } : { notifications: out };
  }

  /** Unread notifications of visible projects. */
  async unreadCount(workspaceId: string, userId: string, projects: Visible): Promise<number> {
    let count = 0;
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: INBOX_INDEX_UNREAD,
          KeyConditionExpression: 'unread = :k',
          ExpressionAttributeValues: { ':k': { S: inboxKey(workspaceId, userId) } },
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) if (visible(projects, item.projectId?.S)) count += 1;
      start = page.LastEvaluatedKey;
    } while (start);
    return count;
  }

  /** Marks the given notifications read; returns the ids that exist in this inbox. */
  async markRead(workspaceId: string, userId: string, ids: readonly string[]): Promise<string[]> {
    const marked = await Promise.all(
      ids.map(async (id) => {
        try {
          await this.client.send(
            new UpdateItemCommand({
              TableName: this.table,
              Key: { inbox: { S: inboxKey(workspaceId, userId) }, id: { S: id } },
              UpdateExpression: 'REMOVE unread',
              ConditionExpression: 'attribute_exists(id)',
            }),
          );
          return id;
        } catch (err) {
          if (err instanceof ConditionalCheckFailedException) return undefined;
          throw err;
        }
      }),
    );
    return marked.filter((id): id is string => id !== undefined);
  }
}
