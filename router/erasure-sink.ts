// The router's erasure sink (gdpr/POLICY.md `router-changelog`): the replay API serves each
// project's recent events from the changelog (dynamo-changelog.ts), so the subject's events there
// are erased in place. An item is a run of seqs, and a replaying client needs every seq, so an
// event that holds any of the subject's identifiers (their id in a row image or as the actor,
// their email, name or authored text anywhere in it) keeps its seq, id, type and routing and
// loses its row images and actor (`data.erased: true`, like `truncated` for an oversized event:
// a reader fetches the row, which the source-db purge has deleted or anonymised). A thin entry
// (a router in thin mode) holds nothing personal but its key: the key values holding an
// identifier become null. Expired items are erased too: DynamoDB's TTL deletes them late.
//
// A whole-table Scan: the subject's events can be in any project. Rewrites are conditional on the
// item's run of ids, so a router rewriting the item meanwhile wins and the next scan looks again.
//
// And the membership projection the authorization reads (`router-memberships`,
// lib/dynamo-memberships.ts, HASH userId): the subject's items — memberships and the tombstones of
// removed ones, which would hold their id for 30 days — are deleted by key. The router stores
// nothing of an erased subject's memberships again (lib/membership-events.ts projectionSteps).
import { ConditionalCheckFailedException, DeleteItemCommand, type DynamoDBClient, QueryCommand, ScanCommand, UpdateItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { createDynamoClient, loadAwsConfig } from '../lib/aws.js';
import { type Env, readSettings } from '../lib/config.js';
import { type ErasureSink, type PurgeResult, type ScanResult, type SinkSteps, type SubjectIdentifiers, bindSink, holdsAny, identifierStrings } from '../lib/erasure.js';
import { type ChangelogEntry, erasedEnvelope, isThinEntry, scrubThin } from './changelog.js';
import { decodeBody, encodeBody } from './changelog-body.js';
import { ROUTER_SETTINGS } from './config.js';

export interface ChangelogTable {
  client: DynamoDBClient;
  table: string;
}

interface StoredItem {
  key: Record<string, AttributeValue>;
  ids: string;
  entries: ChangelogEntry[];
}

/** Every changelog item with entries (the heads, seq 0, hold none), expired or not. */
async function* items(t: ChangelogTable): AsyncGenerator<StoredItem> {
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await t.client.send(
      new ScanCommand({ TableName: t.table, FilterExpression: 'attribute_exists(body)', ProjectionExpression: 'projectKey, #seq, ids, body', ExpressionAttributeNames: { '#seq': 'seq' }, ConsistentRead: true, ExclusiveStartKey: start }),
    );
    for (const raw of page.Items ?? []) {
      yield { key: { projectKey: raw.projectKey!, seq: raw.seq! }, ids: raw.ids?.S ?? '', entries: decodeBody(raw.body!.B!) };
    }
    start = page.LastEvaluatedKey;
  } while (start);
}

/** Whether the entry holds any identifier: a full entry anywhere in its envelope, a thin one in its key (the rest is ids, type, time and column names). */
function holds(e: ChangelogEntry, needles: readonly string[]): boolean {
  return holdsAny(isThinEntry(e) ? e.key : e.event, needles);
}

/** The entry erased: a full one in the changelog's erased form, a thin one with the key values holding an identifier null. */
function erased(e: ChangelogEntry, needles: readonly string[]): ChangelogEntry {
  return isThinEntry(e) ? scrubThin(e, (v) => holdsAny(v, needles)) : { seq: e.seq, event: erasedEnvelope(e.event) };
}

export async function purgeChangelog(t: ChangelogTable, ids: SubjectIdentifiers, onProgress?: (done: number) => void): Promise<PurgeResult> {
  const needles = identifierStrings(ids);
  let changed = 0;
  for await (const item of items(t)) {
    const hits = item.entries.filter((e) => holds(e, needles)).length;
    if (hits === 0) continue;
    const entries = item.entries.map((e) => (holds(e, needles) ? erased(e, needles) : e));
    try {
      await t.client.send(
        new UpdateItemCommand({
          TableName: t.table,
          Key: item.key,
          UpdateExpression: 'SET body = :body',
          ConditionExpression: 'ids = :ids',
          ExpressionAttributeValues: { ':body': { B: encodeBody(entries) }, ':ids': { S: item.ids } },
        }),
      );
      changed += hits;
      onProgress?.(changed);
    } catch (err) {
      // Rewritten or expired meanwhile: the scan after this purge looks at what is there now.
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
    }
  }
  return { changed };
}

/** Reads every changelog entry (`scanned`) and counts those holding any of the identifiers. */
export async function scanChangelog(t: ChangelogTable, ids: SubjectIdentifiers): Promise<ScanResult> {
  const needles = identifierStrings(ids);
  let scanned = 0;
  let found = 0;
  for await (const item of items(t)) {
    scanned += item.entries.length;
    found += item.entries.filter((e) => holds(e, needles)).length;
  }
  return { scanned, found };
}

export const CHANGELOG_SINK: SinkSteps<ChangelogTable> = { sink: 'router-changelog', purge: purgeChangelog, scan: scanChangelog };

/** The subject's items of the membership projection, every page (one partition: HASH userId). */
async function membershipItems(t: ChangelogTable, subject: string): Promise<Record<string, AttributeValue>[]> {
  const items: Record<string, AttributeValue>[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const out = await t.client.send(
      new QueryCommand({ TableName: t.table, KeyConditionExpression: 'userId = :u', ExpressionAttributeValues: { ':u': { S: subject } }, ProjectionExpression: 'userId, #s', ExpressionAttributeNames: { '#s': 'scope' }, ConsistentRead: true, ...(start ? { ExclusiveStartKey: start } : {}) }),
    );
    items.push(...(out.Items ?? []));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

export const MEMBERSHIPS_SINK: SinkSteps<ChangelogTable> = {
  sink: 'router-memberships',
  async purge(t, ids, onProgress) {
    let changed = 0;
    for (const key of await membershipItems(t, ids.subject)) {
      await t.client.send(new DeleteItemCommand({ TableName: t.table, Key: { userId: key.userId!, scope: key.scope! } }));
      changed += 1;
      onProgress?.(changed);
    }
    return { changed };
  },
  async scan(t, ids) {
    const found = (await membershipItems(t, ids.subject)).length;
    return { scanned: found, found };
  },
};

export const ERASURE_SINKS = [CHANGELOG_SINK, MEMBERSHIPS_SINK] as const;

export function openErasureSinks(env: Env): Promise<{ sinks: ErasureSink[]; close(): Promise<void> }> {
  const { changelogTable, membershipsTable } = readSettings(env, { changelogTable: ROUTER_SETTINGS.changelogTable, membershipsTable: ROUTER_SETTINGS.membershipsTable });
  const client = createDynamoClient(loadAwsConfig(env));
  return Promise.resolve({
    sinks: [bindSink(CHANGELOG_SINK, { client, table: changelogTable }), bindSink(MEMBERSHIPS_SINK, { client, table: membershipsTable })],
    close: () => Promise.resolve(client.destroy()),
  });
}
