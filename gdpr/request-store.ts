// The erasure requests' durable store: DynamoDB (dynalite locally), behind the processor's
// RequestStore port (processor.ts). One table, declared here by its owner (GDPR_REQUESTS_TABLE_SPEC;
// infra/local/tables.ts creates it locally, the CDK state stack in AWS), three kinds of item:
//   subject/<subject id>      { requestId }                          one per subject: idempotency
//   request/<request id>      { doc (JSON), version, step, subject } the state machine, compare-and-set on version
//   ids/<request id>/<n>      { part }                               the captured identifiers, in parts
// The identifiers (a subject's authored plaintext, for the verification scans) can pass
// DynamoDB's 400 KB item limit, so they live beside the request in parts; the request names how
// many. They are deleted once the request is complete — after the save that completes it, so a
// crash in between leaves parts that the next read of the request deletes.
// Without transactions (dynalite has none), create is ordered so a crash at any point leaves
// something the next create for the same subject finishes: the subject item first, then the
// parts, then the request item (conditional).
import {
  ConditionalCheckFailedException,
  type AttributeValue,
  type CreateTableCommandInput,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
import type { SubjectIdentifiers } from '../lib/erasure.js';
import { TaskflowError } from '../lib/errors.js';
import type { ErasureRequest, RequestStore } from './processor.js';

export const GDPR_REQUESTS_TABLE_KEY = 'gdpr-requests';
export const GDPR_REQUESTS_TABLE = 'taskflow-gdpr-requests';

/** CreateTable input for the local stack and the state stack (no PITR: a backup would keep the captured identifiers after erasure). */
export const GDPR_REQUESTS_TABLE_SPEC = {
  TableName: GDPR_REQUESTS_TABLE,
  AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' as const }],
  KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' as const }],
  BillingMode: 'PAY_PER_REQUEST' as const,
} satisfies CreateTableCommandInput;

/** UTF-16 units of identifier JSON per item: at most 3 UTF-8 bytes each, so under 400 KB with the attribute names. */
export const IDENTIFIER_PART_CHARS = 120_000;

type StoredRequest = Omit<ErasureRequest, 'identifiers'>;

export class DynamoRequestStore implements RequestStore {
  constructor(
    private readonly dynamo: DynamoDBClient,
    private readonly table: string,
  ) {}

  async get(requestId: string): Promise<ErasureRequest | null> {
    const item = await this.item(`request/${requestId}`);
    return item ? this.load(item) : null;
  }

  async create(request: ErasureRequest): Promise<ErasureRequest> {
    let r = request;
    if (!(await this.putIfAbsent({ id: { S: `subject/${r.subject}` }, requestId: { S: r.requestId } }))) {
      const owner = (await this.item(`subject/${r.subject}`))?.requestId?.S;
      if (!owner) throw new TaskflowError('GDPR_STORE_INCONSISTENT', `subject item of ${r.subject} has no request id`);
      const existing = await this.get(owner);
      if (existing) return existing;
      // An earlier create stopped after claiming the subject: finish it under the claimed id.
      r = { ...r, requestId: owner };
    }
    const parts = r.identifiers ? splitParts(JSON.stringify(r.identifiers)) : [];
    for (const [n, part] of parts.entries()) {
      await this.dynamo.send(new PutItemCommand({ TableName: this.table, Item: { id: { S: `ids/${r.requestId}/${n}` }, part: { S: part } } }));
    }
    await this.putIfAbsent(requestItem(r, parts.length));
    return (await this.get(r.requestId))!;
  }

  async save(next: ErasureRequest): Promise<boolean> {
    const prev = await this.item(`request/${next.requestId}`);
    if (!prev) return false;
    const parts = Number(prev.idParts?.N ?? '0');
    // The parts are written once, at create; a save only ever drops them (at complete).
    try {
      await this.dynamo.send(
        new PutItemCommand({
          TableName: this.table,
          Item: requestItem(next, parts),
          ConditionExpression: 'version = :prev',
          ExpressionAttributeValues: { ':prev': { N: String(next.version - 1) } },
        }),
      );
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
    if (!next.identifiers && parts > 0) await this.dropParts(next, parts);
    return true;
  }

  async open(): Promise<ErasureRequest[]> {
    return (await this.all()).filter((r) => r.step !== 'complete');
  }

  /** Every request, complete ones included (`taskflow gdpr list`). A scan: the table holds one request per erased person. */
  async all(): Promise<ErasureRequest[]> {
    const out: ErasureRequest[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.dynamo.send(
        new ScanCommand({ TableName: this.table, ConsistentRead: true, FilterExpression: 'begins_with(id, :p)', ExpressionAttributeValues: { ':p': { S: 'request/' } }, ...(start ? { ExclusiveStartKey: start } : {}) }),
      );
      for (const item of page.Items ?? []) out.push(await this.load(item));
      start = page.LastEvaluatedKey;
    } while (start);
    return out.sort((a, b) => a.requestedAt.localeCompare(b.requestedAt) || a.requestId.localeCompare(b.requestId));
  }

  /** The subject's request, if one was ever recorded. */
  async forSubject(subject: string): Promise<ErasureRequest | null> {
    const owner = (await this.item(`subject/${subject}`))?.requestId?.S;
    return owner ? this.get(owner) : null;
  }

  private async load(item: Record<string, AttributeValue>): Promise<ErasureRequest> {
    const stored = JSON.parse(item.doc?.S ?? '{}') as StoredRequest;
    const parts = Number(item.idParts?.N ?? '0');
    if (parts === 0) return stored;
    if (stored.step === 'complete') {
      await this.dropParts(stored, parts);
      return stored;
    }
    let json = '';
    for (let n = 0; n < parts; n += 1) {
      const part = (await this.item(`ids/${stored.requestId}/${n}`))?.part?.S;
      if (part === undefined) throw new TaskflowError('GDPR_STORE_INCONSISTENT', `request ${stored.requestId} lost part ${n} of its identifiers`);
      json += part;
    }
    return { ...stored, identifiers: JSON.parse(json) as SubjectIdentifiers };
  }

  /** Deletes the identifier parts, then clears the count; repeated after a crash, it does the same. */
  private async dropParts(r: StoredRequest, parts: number): Promise<void> {
    for (let n = 0; n < parts; n += 1) await this.dynamo.send(new DeleteItemCommand({ TableName: this.table, Key: { id: { S: `ids/${r.requestId}/${n}` } } }));
    try {
      await this.dynamo.send(
        new PutItemCommand({ TableName: this.table, Item: requestItem(r, 0), ConditionExpression: 'version = :v', ExpressionAttributeValues: { ':v': { N: String(r.version) } } }),
      );
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
    }
  }

  private async item(id: string): Promise<Record<string, AttributeValue> | undefined> {
    return (await this.dynamo.send(new GetItemCommand({ TableName: this.table, Key: { id: { S: id } }, ConsistentRead: true }))).Item;
  }

  private async putIfAbsent(item: Record<string, AttributeValue>): Promise<boolean> {
    try {
      await this.dynamo.send(new PutItemCommand({ TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(id)' }));
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }
}

function requestItem(r: StoredRequest | ErasureRequest, idParts: number): Record<string, AttributeValue> {
  const { identifiers: _kept, ...stored } = r as ErasureRequest;
  return {
    id: { S: `request/${r.requestId}` },
    subject: { S: r.subject },
    step: { S: r.step },
    version: { N: String(r.version) },
    idParts: { N: String(idParts) },
    doc: { S: JSON.stringify(stored) },
  };
}

/** `text` in parts of at most `size` units, never splitting a surrogate pair (DynamoDB stores UTF-8). */
export function splitParts(text: string, size = IDENTIFIER_PART_CHARS): string[] {
  const parts: string[] = [];
  for (let i = 0; i < text.length; ) {
    let end = Math.min(i + size, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && end - i > 1 && last >= 0xd800 && last <= 0xdbff) end -= 1;
    parts.push(text.slice(i, end));
    i = end;
  }
  return parts;
}
