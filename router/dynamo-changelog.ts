// The changelog in DynamoDB (table `taskflow-changelog`: HASH projectKey "<ws>/<project>",
// RANGE seq). Item seq=0 is the project's head (headSeq, lastId). Every other item is a run of
// consecutive seqs keyed by its first seq: toSeq, hwm (see createIdSearch), the event ids, and the
// entries as gzipped JSON (each item under DynamoDB's 400 KB limit), expiring by TTL.
// Items expire at `expiresAt`; reads treat an expired item as gone (DynamoDB deletes late).
import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type AttributeValue,
  type QueryCommandInput,
} from '@aws-sdk/client-dynamodb';
import { gunzipSync, gzipSync } from 'node:zlib';
import { buildItem, type ChangelogEntry, type ChangelogItem, type ChangelogPage, type ChangelogStore, projectKey, type ProjectRef, createIdSearch, entriesOnce, itemWriteDecision, StaleHeadError } from './changelog.js';
import { EMPTY_HEAD, type ProjectHead } from './sequencer.js';

export const CHANGELOG_TABLE = 'taskflow-changelog';
const HEAD_SEQ = 0;
/** Compressed entry bytes per item, leaving room for ids and attributes under 400 KB. */
const MAX_ITEM_BODY_BYTES = 300 * 1024;

export interface DynamoChangelogOptions {
  table?: string;
  ttlSeconds?: number;
  now?: () => number;
}

export class DynamoChangelogStore implements ChangelogStore {
  private readonly table: string;
  private readonly ttlSeconds: number;
  private readonly now: () => number;

  constructor(
    private readonly client: DynamoDBClient,
    options: DynamoChangelogOptions = {},
  ) {
    this.table = options.table ?? CHANGELOG_TABLE;
    this.ttlSeconds = options.ttlSeconds ?? 7 * 24 * 3600;
    this.now = options.now ?? Date.now;
  }

  async readHead(project: ProjectRef): Promise<ProjectHead> {
    const out = await this.client.send(
      new GetItemCommand({ TableName: this.table, Key: { projectKey: { S: projectKey(project) }, seq: { N: String(HEAD_SEQ) } }, ConsistentRead: true }),
    );
    if (!out.Item?.headSeq?.N) return EMPTY_HEAD;
    return { seq: Number(out.Item.headSeq.N), lastId: out.Item.lastId?.S ?? null };
  }

  async findSeqs(project: ProjectRef, head: ProjectHead, ids: readonly string[]): Promise<Map<string, number>> {
    if (ids.length === 0 || head.seq === 0) return new Map();
    const search = createIdSearch(ids);
    for await (const item of this.items(project, { from: 1, to: head.seq, newestFirst: true, withBody: false })) {
      if (search.offer(item)) break;
    }
    return search.found;
  }

  async append(project: ProjectRef, entries: readonly ChangelogEntry[], expected: ProjectHead, next: ProjectHead): Promise<void> {
    const key = projectKey(project);
    const expiresAt = Math.floor(this.now() / 1000) + this.ttlSeconds;
    for (const part of splitBySize(entries)) {
      const item = buildItem(part.entries, next);
      try {
        await this.client.send(
          new PutItemCommand({
            TableName: this.table,
            Item: {
              projectKey: { S: key },
              seq: { N: String(item.fromSeq) },
              toSeq: { N: String(item.toSeq) },
              hwm: { S: item.hwm },
              ids: { S: item.ids.join(',') },
              body: { B: part.body },
              expiresAt: { N: String(expiresAt) },
            },
            ConditionExpression: 'attribute_not_exists(toSeq) OR toSeq <= :to',
            ExpressionAttributeValues: { ':to': { N: String(item.toSeq) } },
          }),
        );
      } catch (err) {
        if (!(err instanceof ConditionalCheckFailedException)) throw err;
        const existing = await this.client.send(
          new GetItemCommand({ TableName: this.table, Key: { projectKey: { S: key }, seq: { N: String(item.fromSeq) } }, ProjectionExpression: 'toSeq, ids', ConsistentRead: true }),
        );
        const stored = existing.Item ? { toSeq: Number(existing.Item.toSeq?.N), ids: (existing.Item.ids?.S ?? '').split(',') } : undefined;
        if (itemWriteDecision(stored, item) !== 'skip') throw new StaleHeadError(project, expected.seq);
      }
    }
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: { projectKey: { S: key }, seq: { N: String(HEAD_SEQ) }, headSeq: { N: String(next.seq) }, ...(next.lastId ? { lastId: { S: next.lastId } } : {}) },
          ConditionExpression: expected.seq === 0 ? 'attribute_not_exists(headSeq) OR headSeq = :zero' : 'headSeq = :expected',
          ExpressionAttributeValues: expected.seq === 0 ? { ':zero': { N: '0' } } : { ':expected': { N: String(expected.seq) } },
        }),
      );
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) throw new StaleHeadError(project, expected.seq);
      throw err;
    }
  }

  async read(project: ProjectRef, after: number, limit: number): Promise<ChangelogPage> {
    const head = await this.readHead(project);
    let oldestSeq: number | null = null;
    for await (const item of this.items(project, { from: 1, to: head.seq, newestFirst: false, withBody: false, limit: 1 })) {
      oldestSeq = item.fromSeq;
      break;
    }
    const entries: ChangelogEntry[] = [];
    if (after < head.seq && oldestSeq !== null) {
      // Start at the item holding after+1: the last item whose first seq is ≤ after+1.
      let start = Math.max(oldestSeq, 1);
      for await (const item of this.items(project, { from: start, to: after + 1, newestFirst: true, withBody: false, limit: 1 })) {
        start = item.fromSeq;
        break;
      }
      let last = after;
      for await (const item of this.items(project, { from: start, to: head.seq, newestFirst: false, withBody: true })) {
        const more = entriesOnce([item], last, head.seq, limit - entries.length);
        entries.push(...more);
        last = entries[entries.length - 1]?.seq ?? last;
        if (entries.length >= limit) break;
      }
    }
    return { head, oldestSeq, entries };
  }

  /** Unexpired changelog items with first seq in [from, to]. */
  private async *items(project: ProjectRef, q: { from: number; to: number; newestFirst: boolean; withBody: boolean; limit?: number }): AsyncGenerator<ChangelogItem> {
    if (q.to < q.from) return;
    const nowSeconds = Math.floor(this.now() / 1000);
    let start: Record<string, AttributeValue> | undefined;
    do {
      const input: QueryCommandInput = {
        TableName: this.table,
        KeyConditionExpression: 'projectKey = :p AND seq BETWEEN :from AND :to',
        FilterExpression: 'expiresAt > :now',
        ExpressionAttributeValues: { ':p': { S: projectKey(project) }, ':from': { N: String(q.from) }, ':to': { N: String(q.to) }, ':now': { N: String(nowSeconds) } },
        ExpressionAttributeNames: { '#seq': 'seq' },
        ProjectionExpression: q.withBody ? '#seq, toSeq, hwm, ids, body' : '#seq, toSeq, hwm, ids',
        ScanIndexForward: !q.newestFirst,
        ConsistentRead: true,
        ExclusiveStartKey: start,
        ...(q.limit ? { Limit: q.limit } : {}),
      };
      const page = await this.client.send(new QueryCommand(input));
      for (const raw of page.Items ?? []) {
        const fromSeq = Number(raw.seq?.N);
        const entries = q.withBody && raw.body?.B ? (JSON.parse(gunzipSync(raw.body.B).toString('utf8')) as ChangelogEntry[]) : [];
        yield { fromSeq, toSeq: Number(raw.toSeq?.N), hwm: raw.hwm?.S ?? '', ids: (raw.ids?.S ?? '').split(','), entries };
      }
      start = page.LastEvaluatedKey;
    } while (start);
  }
}

/** Splits entries into runs whose gzipped JSON fits one item. */
function splitBySize(entries: readonly ChangelogEntry[]): { entries: ChangelogEntry[]; body: Buffer }[] {
  const body = gzipSync(JSON.stringify(entries));
  if (body.length <= MAX_ITEM_BODY_BYTES) return [{ entries: [...entries], body }];
  if (entries.length === 1) {
    // One event too large even compressed: keep its identity and routing, drop the row images.
    const [only] = entries as [ChangelogEntry];
    const data = { ...only.event.data, before: null, after: null, truncated: true };
    // No longer a valid envelope (an update without row images): readers see `truncated` and fetch the row.
    const slim: ChangelogEntry = { seq: only.seq, event: { ...only.event, data } as unknown as ChangelogEntry['event'] };
    return [{ entries: [slim], body: gzipSync(JSON.stringify([slim])) }];
  }
  const mid = Math.ceil(entries.length / 2);
  return [...splitBySize(entries.slice(0, mid)), ...splitBySize(entries.slice(mid))];
}
