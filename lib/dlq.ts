// Dead-letter store: where a service puts what it cannot deliver (an event too large for
// Kinesis, a row without its workspace id, an envelope that fails validation …) with the reason,
// so nothing is dropped silently and an operator can inspect and redrive it. Generic: capture and
// the router share it, told apart by `source`.
//
// DynamoDB layout (table `taskflow-dlq`, HASH key `id`: DLQ_TABLE_SPEC, which the local stack uses): the
// head item `id` holds the metadata (listing sorts by its `createdAt`) and the first
// payload chunk; a payload larger than one item allows (DynamoDB's 400 KB item limit — an
// oversized Kinesis event is > 1 MiB) continues in items `<id>#1`, `<id>#2` … so even those are
// kept whole.
//
// A dead letter with a `dedupeKey` (where the bad input came from: a Kinesis record's shard and
// sequence number, a capture event id) gets an id derived from it and is written only if absent:
// reprocessing the same input after a crash finds its entry instead of adding a second one.
import { createHash, randomBytes } from 'node:crypto';
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  ConditionalCheckFailedException,
  type CreateTableCommandInput,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
  UpdateItemCommand,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import { TaskflowError } from './errors.js';
import { retry } from './retry.js';

export interface DeadLetterInput {
  /** Which service/stage wrote it, e.g. "capture", "router". */
  source: string;
  /** Stable machine-readable reason, e.g. "RECORD_TOO_LARGE", "MISSING_WORKSPACE_ID". */
  reason: string;
  /** Human-readable detail. */
  message: string;
  payload: Uint8Array;
  /** Where it came from (event id, LSN, table, shard, sequence number …). */
  origin: Record<string, string>;
  /** Identity of the bad input: the same key again is the same dead letter (stored once). */
  dedupeKey?: string;
}

export interface DeadLetter extends Omit<DeadLetterInput, 'dedupeKey'> {
  id: string;
  createdAt: string;
  redrivenAt?: string;
}

export interface DeadLetterStore {
  put(entry: DeadLetterInput): Promise<string>;
  list(filter?: { source?: string; includeRedriven?: boolean; limit?: number }): Promise<DeadLetter[]>;
  get(id: string): Promise<DeadLetter | undefined>;
  markRedriven(id: string): Promise<void>;
}

export const DLQ_TABLE = 'taskflow-dlq';

/** Between resends of the parts a BatchWriteItem left unprocessed: 20 ms doubling, at most 10 attempts (≈10 s). */
const UNPROCESSED_RETRY = { baseMs: 20, maxMs: 5_000 };

/** CreateTable input for the local stack and deployments. */
export const DLQ_TABLE_SPEC: CreateTableCommandInput = {
  TableName: DLQ_TABLE,
  AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
  KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
  BillingMode: 'PAY_PER_REQUEST',
};

/** Time-ordered unique id: ISO time plus randomness. */
export function deadLetterId(now: Date, random: Uint8Array = randomBytes(6)): string {
  return `${now.toISOString()}-${Buffer.from(random).toString('hex')}`;
}

/** The id of a dead letter: derived from its dedupeKey when it has one, else time-ordered and unique. */
export function idFor(entry: Pick<DeadLetterInput, 'source' | 'dedupeKey'>, now: Date): string {
  if (entry.dedupeKey === undefined) return deadLetterId(now);
  return `${entry.source}-${createHash('sha256').update(entry.dedupeKey).digest('hex').slice(0, 32)}`;
}

/** Listing order: arrival, then id. */
function byArrival(a: DeadLetter, b: DeadLetter): number {
  return a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id);
}

function matches(e: DeadLetter, filter: { source?: string; includeRedriven?: boolean }): boolean {
  return (filter.source === undefined || e.source === filter.source) && (filter.includeRedriven === true || e.redrivenAt === undefined);
}

/** In-process store: for unit tests and tools that run without DynamoDB. */
export class MemoryDeadLetterStore implements DeadLetterStore {
  readonly entries: DeadLetter[] = [];
  constructor(private readonly now: () => Date = () => new Date()) {}

  put(entry: DeadLetterInput): Promise<string> {
    const id = idFor(entry, this.now());
    if (this.entries.some((e) => e.id === id)) return Promise.resolve(id);
    const { dedupeKey: _key, ...rest } = entry;
    this.entries.push({ ...rest, payload: Uint8Array.from(entry.payload), origin: { ...entry.origin }, id, createdAt: this.now().toISOString() });
    return Promise.resolve(id);
  }
  list(filter: { source?: string; includeRedriven?: boolean; limit?: number } = {}): Promise<DeadLetter[]> {
    return Promise.resolve(this.entries.filter((e) => matches(e, filter)).sort(byArrival).slice(0, filter.limit ?? Infinity));
  }
  get(id: string): Promise<DeadLetter | undefined> {
    return Promise.resolve(this.entries.find((e) => e.id === id));
  }
  markRedriven(id: string): Promise<void> {
    const e = this.entries.find((x) => x.id === id);
    if (!e) return Promise.reject(new TaskflowError('DLQ_NOT_FOUND', `no dead letter ${id}`));
    e.redrivenAt = this.now().toISOString();
    return Promise.resolve();
  }
}

/** Payload bytes per item: under the 400 KB item limit with room for the metadata. */
const CHUNK_BYTES = 300 * 1024;

export class DynamoDeadLetterStore implements DeadLetterStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly table = DLQ_TABLE,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async put(entry: DeadLetterInput): Promise<string> {
    const createdAt = this.now();
    const id = idFor(entry, createdAt);
    const payload = Buffer.from(entry.payload);
    const parts = Math.max(1, Math.ceil(payload.length / CHUNK_BYTES));
    const items: Record<string, AttributeValue>[] = [];
    for (let part = 0; part < parts; part++) {
      const chunk = payload.subarray(part * CHUNK_BYTES, (part + 1) * CHUNK_BYTES);
      const item: Record<string, AttributeValue> = { id: { S: partId(id, part) }, chunk: { B: chunk } };
      if (part === 0) {
        Object.assign(item, {
          source: { S: entry.source },
          reason: { S: entry.reason },
          message: { S: entry.message },
          origin: { M: Object.fromEntries(Object.entries(entry.origin).map(([k, v]) => [k, { S: v }])) },
          createdAt: { S: createdAt.toISOString() },
          parts: { N: String(parts) },
          size: { N: String(payload.length) },
        });
      }
      items.push(item);
    }
    // Continuation parts first, the head last: a listed entry is always complete.
    const rest = items.slice(1);
    for (let i = 0; i < rest.length; i += 2) {
      await this.writeAll(rest.slice(i, i + 2));
    }
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: items[0]!,
          // A keyed dead letter already stored (maybe redriven since) stays as it is.
          ...(entry.dedupeKey === undefined ? {} : { ConditionExpression: 'attribute_not_exists(id)' }),
        }),
      );
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
    }
    return id;
  }

  private async writeAll(items: Record<string, AttributeValue>[]): Promise<void> {
    let pending = items.map((Item) => ({ PutRequest: { Item } }));
    // BatchWriteItem may leave items unprocessed (throttling): resend those, with backoff.
    await retry(
      async () => {
        const out = await this.client.send(new BatchWriteItemCommand({ RequestItems: { [this.table]: pending } }));
        pending = (out.UnprocessedItems?.[this.table] ?? []).flatMap((r) => (r.PutRequest?.Item ? [{ PutRequest: { Item: r.PutRequest.Item } }] : []));
        if (pending.length > 0) throw new TaskflowError('DLQ_WRITE_FAILED', `could not write ${pending.length} dead-letter parts`, { retriable: true });
      },
      { policy: UNPROCESSED_RETRY, maxAttempts: 10 },
    );
  }

  async list(filter: { source?: string; includeRedriven?: boolean; limit?: number } = {}): Promise<DeadLetter[]> {
    const heads: Record<string, AttributeValue>[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const out = await this.client.send(
        new ScanCommand({ TableName: this.table, FilterExpression: 'attribute_exists(parts)', ExclusiveStartKey: start }),
      );
      heads.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
    } while (start);
    const entries: DeadLetter[] = [];
    const listed = heads.map((head) => ({ head, withoutPayload: fromHead(head, new Uint8Array()) }));
    for (const { head, withoutPayload } of listed.sort((a, b) => byArrival(a.withoutPayload, b.withoutPayload))) {
      if (entries.length >= (filter.limit ?? Infinity)) break;
      if (!matches(withoutPayload, filter)) continue;
      entries.push(fromHead(head, await this.payload(head)));
    }
    return entries;
  }

  async get(id: string): Promise<DeadLetter | undefined> {
    const out = await this.client.send(new GetItemCommand({ TableName: this.table, Key: { id: { S: id } }, ConsistentRead: true }));
    return out.Item ? fromHead(out.Item, await this.payload(out.Item)) : undefined;
  }

  async markRedriven(id: string): Promise<void> {
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { id: { S: id } },
          UpdateExpression: 'SET redrivenAt = :t',
          ConditionExpression: 'attribute_exists(parts)',
          ExpressionAttributeValues: { ':t': { S: this.now().toISOString() } },
        }),
      );
    } catch (err) {
      if ((err as Error).name === 'ConditionalCheckFailedException') throw new TaskflowError('DLQ_NOT_FOUND', `no dead letter ${id}`, { cause: err });
      throw err;
    }
  }

  /**
   * Deletes a dead letter for good (erasure, lib/erasure-sink.ts): the head first, so it is no
   * longer listed, then its continuation parts; a part a crash left behind holds no head and is
   * found by a scan of the raw items.
   */
  async remove(id: string): Promise<boolean> {
    const out = await this.client.send(new DeleteItemCommand({ TableName: this.table, Key: { id: { S: id } }, ReturnValues: 'ALL_OLD' }));
    const parts = Number(out.Attributes?.parts?.N ?? '1');
    for (let part = 1; part < parts; part++) await this.client.send(new DeleteItemCommand({ TableName: this.table, Key: { id: { S: partId(id, part) } } }));
    return out.Attributes !== undefined;
  }

  /** Continuation parts whose head is gone (a remove stopped midway), as raw items. */
  async *orphanParts(): AsyncGenerator<{ id: string; chunk: Uint8Array }> {
    let start: Record<string, AttributeValue> | undefined;
    do {
      const out = await this.client.send(new ScanCommand({ TableName: this.table, FilterExpression: 'attribute_not_exists(parts)', ExclusiveStartKey: start, ConsistentRead: true }));
      for (const item of out.Items ?? []) {
        const id = item.id?.S ?? '';
        const head = id.slice(0, id.lastIndexOf('#'));
        const exists = await this.client.send(new GetItemCommand({ TableName: this.table, Key: { id: { S: head } }, ProjectionExpression: 'id', ConsistentRead: true }));
        if (!exists.Item) yield { id, chunk: item.chunk?.B ?? new Uint8Array() };
      }
      start = out.LastEvaluatedKey;
    } while (start);
  }

  /** Deletes one raw item (an orphan part). */
  async removePart(id: string): Promise<void> {
    await this.client.send(new DeleteItemCommand({ TableName: this.table, Key: { id: { S: id } } }));
  }

  private async payload(head: Record<string, AttributeValue>): Promise<Uint8Array> {
    const parts = Number(head.parts?.N ?? '1');
    const first = head.chunk?.B ?? new Uint8Array();
    if (parts === 1) return first;
    const id = head.id?.S ?? '';
    const found = new Map<string, Uint8Array>();
    let keys = Array.from({ length: parts - 1 }, (_, i) => ({ id: { S: partId(id, i + 1) } }));
    for (let round = 0; keys.length > 0 && round < parts + 8; round++) {
      // BatchGet returns at most 16 MB; 2 parts per call keep each response small.
      const batch = keys.slice(0, 2);
      const out = await this.client.send(new BatchGetItemCommand({ RequestItems: { [this.table]: { Keys: batch, ConsistentRead: true } } }));
      for (const item of out.Responses?.[this.table] ?? []) found.set(item.id?.S ?? '', item.chunk?.B ?? new Uint8Array());
      keys = keys.filter((k) => !found.has(k.id.S));
    }
    const rest = Array.from({ length: parts - 1 }, (_, i) => found.get(partId(id, i + 1))).filter((c): c is Uint8Array => c !== undefined);
    if (rest.length !== parts - 1) throw new TaskflowError('DLQ_INCOMPLETE', `dead letter ${head.id?.S} has ${rest.length + 1} of ${parts} parts`);
    return Buffer.concat([first, ...rest]);
  }
}

function partId(id: string, part: number): string {
  return part === 0 ? id : `${id}#${part}`;
}

function fromHead(item: Record<string, AttributeValue>, payload: Uint8Array): DeadLetter {
  const e: DeadLetter = {
    id: item.id?.S ?? '',
    source: item.source?.S ?? '',
    reason: item.reason?.S ?? '',
    message: item.message?.S ?? '',
    origin: Object.fromEntries(Object.entries(item.origin?.M ?? {}).map(([k, v]) => [k, v.S ?? ''])),
    createdAt: item.createdAt?.S ?? '',
    payload,
  };
  if (item.redrivenAt?.S) e.redrivenAt = item.redrivenAt.S;
  return e;
}

// C0 controls but newline and tab, DEL, C1 controls (U+0080–U+009F: a terminal may read U+009B as
// CSI) and the bidirectional overrides that reorder what is shown.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNPRINTABLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * A dead letter's text made safe for a terminal: its bytes are whatever a writer put on the
 * stream, and an escape sequence printed raw could rewrite the screen or hide a line. Controls
 * become visible escapes (ESC → \x1b, U+202E → \u202e); a backslash stays as it is.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
