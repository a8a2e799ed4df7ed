// Erasure over whole DynamoDB tables, for the sinks whose items can hold a subject under any key
// (an inbox of theirs, a notification about them, a dead letter carrying their row): a paged
// Scan that reads every item and looks for the identifiers in every attribute — strings, sets,
// lists, maps, and binary payloads as UTF-8 (gunzipped when gzipped) — and a purge that deletes
// the items holding any. A Scan reads the whole table: an erasure is rare and has 72 h.
import { type AttributeValue, DeleteItemCommand, type DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { gunzipSync } from 'node:zlib';
import type { PurgeResult, ScanResult } from './erasure.js';

export interface ErasableTable {
  client: DynamoDBClient;
  table: string;
  /** The table's key attributes (HASH, then RANGE if any). */
  key: readonly string[];
}

const GZIP = [0x1f, 0x8b];

function binaryText(b: Uint8Array): string {
  if (b[0] === GZIP[0] && b[1] === GZIP[1]) {
    try {
      return gunzipSync(b).toString('utf8');
    } catch {
      // Not gzip after all: read it as it is.
    }
  }
  return Buffer.from(b).toString('utf8');
}

/** Whether any attribute of the item holds any of the needles. */
export function attributeHolds(v: AttributeValue | undefined, needles: readonly string[]): boolean {
  if (!v) return false;
  const has = (s: string) => needles.some((n) => s.includes(n));
  if (v.S !== undefined) return has(v.S);
  if (v.SS) return v.SS.some(has);
  if (v.B) return has(binaryText(v.B));
  if (v.BS) return v.BS.some((b) => has(binaryText(b)));
  if (v.L) return v.L.some((x) => attributeHolds(x, needles));
  if (v.M) return Object.entries(v.M).some(([k, x]) => has(k) || attributeHolds(x, needles));
  return false;
}

export const itemHolds = (item: Record<string, AttributeValue>, needles: readonly string[]): boolean => Object.values(item).some((v) => attributeHolds(v, needles));

async function* allItems(t: ErasableTable): AsyncGenerator<Record<string, AttributeValue>> {
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await t.client.send(new ScanCommand({ TableName: t.table, ConsistentRead: true, ExclusiveStartKey: start }));
    yield* page.Items ?? [];
    start = page.LastEvaluatedKey;
  } while (start);
}

/** Deletes every item holding a needle; a repeat finds none left. */
export async function purgeHolding(t: ErasableTable, needles: readonly string[], onProgress?: (done: number) => void): Promise<PurgeResult> {
  let changed = 0;
  for await (const item of allItems(t)) {
    if (!itemHolds(item, needles)) continue;
    await t.client.send(new DeleteItemCommand({ TableName: t.table, Key: Object.fromEntries(t.key.map((k) => [k, item[k]!])) }));
    changed += 1;
    onProgress?.(changed);
  }
  return { changed };
}

export async function scanHolding(t: ErasableTable, needles: readonly string[]): Promise<ScanResult> {
  let scanned = 0;
  let found = 0;
  for await (const item of allItems(t)) {
    scanned += 1;
    if (itemHolds(item, needles)) found += 1;
  }
  return { scanned, found };
}
