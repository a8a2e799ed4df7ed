// The changelog in DynamoDB (table `taskflow-changelog`: HASH projectKey "<ws>/<project>",
// RANGE seq). Item seq=0 is the project's head: reservedSeq, floorSeq, lastId (changelog-claims.ts;
// headSeq, the exact last seq, on heads written before reservations). Every other item is a run of
// consecutive seqs keyed by its first seq, written only if absent (the fence): toSeq, hwm (see
// createIdSearch), the event ids, and the entries as compressed JSON (changelog-body.ts: zstd;
// gzip in older items; each item under DynamoDB's 400 KB limit; full envelopes or, from a router
// in thin mode, thin entries: changelog.ts ChangelogEntry), expiring by TTL. The newest one holds the last seq.
// Items expire at `expiresAt`; reads treat an expired item as gone (DynamoDB deletes late).
import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type AttributeValue,
  type QueryCommandInput,
} from '@aws-sdk/client-dynamodb';
import { conditionalWrite, DirectAwsJson, DYNAMODB_JSON } from '../lib/aws-direct.js';
import { buildItem, type ChangelogEntry, type ChangelogItem, type FullEntry, isThinEntry, type ChangelogPage, type ChangelogStore, projectKey, type ProjectRef, createIdSearch, entriesOnce } from './changelog.js';
import { decodeBody, encodeBody } from './changelog-body.js';
import { ChangelogClaims, type ChangelogTable, currentHead, type HeadRecord, type NewestItem, type Reservation } from './changelog-claims.js';
import type { ProjectHead } from './sequencer.js';

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
  private readonly claimsTable: DynamoClaimsTable;
  private readonly claims: ChangelogClaims<BodyItem>;

  constructor(
    private readonly client: DynamoDBClient,
    options: DynamoChangelogOptions = {},
  ) {
    this.table = options.table ?? CHANGELOG_TABLE;
    this.ttlSeconds = options.ttlSeconds ?? 7 * 24 * 3600;
    this.now = options.now ?? Date.now;
    this.claimsTable = new DynamoClaimsTable(client, this.table);
    this.claims = new ChangelogClaims(this.claimsTable, this.now, this.ttlSeconds * 1000);
  }

  readHead(project: ProjectRef): Promise<ProjectHead> {
    return this.claims.readHead(project);
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
    const parts = splitBySize(entries).map((part) => ({ ...buildItem(part.entries, next), body: part.body }));
    await this.claims.append(project, parts, expected, next);
  }

  async read(project: ProjectRef, after: number, limit: number): Promise<ChangelogPage> {
    const { head } = await currentHead(this.claimsTable, project, this.now(), this.ttlSeconds * 1000);
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
        const entries = q.withBody && raw.body?.B ? decodeBody(raw.body.B) : [];
        yield { fromSeq, toSeq: Number(raw.toSeq?.N), hwm: raw.hwm?.S ?? '', ids: (raw.ids?.S ?? '').split(','), entries };
      }
      start = page.LastEvaluatedKey;
    } while (start);
  }
}

type BodyItem = ChangelogItem & { body: Buffer };

/** The claims' table operations (changelog-claims.ts) as DynamoDB requests; the head is item seq 0. */
class DynamoClaimsTable implements ChangelogTable<BodyItem> {
  private readonly direct: DirectAwsJson | undefined;

  constructor(
    private readonly client: DynamoDBClient,
    private readonly table: string,
  ) {
    this.direct = DirectAwsJson.of(client, DYNAMODB_JSON);
  }

  private key(project: ProjectRef, seq: number): Record<string, AttributeValue> {
    return { projectKey: { S: projectKey(project) }, seq: { N: String(seq) } };
  }

  async newestItem(project: ProjectRef): Promise<NewestItem | undefined> {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'projectKey = :p AND #seq > :head',
        ExpressionAttributeNames: { '#seq': 'seq' },
        ExpressionAttributeValues: { ':p': { S: projectKey(project) }, ':head': { N: String(HEAD_SEQ) } },
        ProjectionExpression: '#seq, toSeq, hwm, expiresAt',
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    const raw = out.Items?.[0];
    if (!raw) return undefined;
    return { fromSeq: Number(raw.seq?.N), toSeq: Number(raw.toSeq?.N), hwm: raw.hwm?.S ?? '', expiresAtMs: Number(raw.expiresAt?.N) * 1000 };
  }

  async head(project: ProjectRef): Promise<HeadRecord | undefined> {
    const out = await this.client.send(new GetItemCommand({ TableName: this.table, Key: this.key(project, HEAD_SEQ), ConsistentRead: true }));
    const item = out.Item;
    if (!item) return undefined;
    const num = (v: AttributeValue | undefined) => (v?.N === undefined ? null : Number(v.N));
    return { reserved: num(item.reservedSeq), legacySeq: num(item.headSeq), floor: num(item.floorSeq) ?? 0, runKey: num(item.runKey), reservedAtMs: num(item.reservedAt), lastId: item.lastId?.S ?? null };
  }

  extendReservation(project: ProjectRef, reservation: Reservation): Promise<boolean> {
    return this.updateHead(project, reservation, {
      condition: '(attribute_not_exists(reservedSeq) OR reservedSeq < :r) AND (attribute_not_exists(floorSeq) OR floorSeq < :runKey)',
      values: {},
    });
  }

  restart(project: ProjectRef, seen: number | null, reservation: Reservation): Promise<boolean> {
    return this.updateHead(project, reservation, {
      floor: reservation.runKey - 1,
      condition: seen === null ? 'attribute_not_exists(reservedSeq)' : 'reservedSeq = :seen',
      values: seen === null ? {} : { ':seen': { N: String(seen) } },
    });
  }

  private async updateHead(project: ProjectRef, reservation: Reservation, u: { floor?: number; condition: string; values: Record<string, AttributeValue> }): Promise<boolean> {
    const { r, runKey, lastId, atMs } = reservation;
    const sets = ['reservedSeq = :r', 'runKey = :runKey', 'reservedAt = :at', ...(u.floor === undefined ? [] : ['floorSeq = :floor']), ...(lastId === null ? [] : ['lastId = :lastId'])];
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: this.key(project, HEAD_SEQ),
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: u.condition,
          ExpressionAttributeValues: {
            ':r': { N: String(r) },
            ':runKey': { N: String(runKey) },
            ':at': { N: String(atMs) },
            ...(u.floor === undefined ? {} : { ':floor': { N: String(u.floor) } }),
            ...(lastId === null ? {} : { ':lastId': { S: lastId } }),
            ...u.values,
          },
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }

  async putItemIfAbsent(project: ProjectRef, item: BodyItem, expiresAtMs: number): Promise<boolean> {
    const attributes = {
      ...this.key(project, item.fromSeq),
      toSeq: { N: String(item.toSeq) },
      hwm: { S: item.hwm },
      ids: { S: item.ids.join(',') },
      expiresAt: { N: String(Math.floor(expiresAtMs / 1000)) },
    };
    const condition = 'attribute_not_exists(toSeq)';
    // The write of every project batch: sent directly (lib/aws-direct.ts, a third of the SDK's
    // CPU). A direct attempt that did write before the SDK sent it again is refused, and append
    // finds the item its own.
    return conditionalWrite(this.direct, 'PutItem', { TableName: this.table, Item: { ...attributes, body: { B: item.body.toString('base64') } }, ConditionExpression: condition }, () =>
      this.client.send(new PutItemCommand({ TableName: this.table, Item: { ...attributes, body: { B: item.body } }, ConditionExpression: condition })),
    );
  }

  async itemAt(project: ProjectRef, fromSeq: number): Promise<Pick<ChangelogItem, 'toSeq' | 'ids'> | undefined> {
    const out = await this.client.send(new GetItemCommand({ TableName: this.table, Key: this.key(project, fromSeq), ProjectionExpression: 'toSeq, ids', ConsistentRead: true }));
    return out.Item ? { toSeq: Number(out.Item.toSeq?.N), ids: (out.Item.ids?.S ?? '').split(',') } : undefined;
  }
}

/** Splits entries into runs whose compressed JSON (changelog-body.ts) fits one item. */
function splitBySize(entries: readonly ChangelogEntry[]): { entries: ChangelogEntry[]; body: Buffer }[] {
  const body = encodeBody(entries);
  if (body.length <= MAX_ITEM_BODY_BYTES) return [{ entries: [...entries], body }];
  if (entries.length === 1) {
    const [only] = entries as [ChangelogEntry];
    // A thin entry is a few hundred bytes (its key is a row's primary key).
    if (isThinEntry(only)) return [{ entries: [only], body }];
    // One event too large even compressed: keep its identity and routing, drop the row images.
    const data = { ...only.event.data, before: null, after: null, truncated: true };
    // No longer a valid envelope (an update without row images): readers see `truncated` and fetch the row.
    const slim: FullEntry = { seq: only.seq, event: { ...only.event, data } as unknown as FullEntry['event'] };
    return [{ entries: [slim], body: encodeBody([slim]) }];
  }
  const mid = Math.ceil(entries.length / 2);
  return [...splitBySize(entries.slice(0, mid)), ...splitBySize(entries.slice(mid))];
}
