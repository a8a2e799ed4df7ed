// A membership projection in DynamoDB: who belongs where, built from the change stream's
// membership events (docs/ARCHITECTURE.md: memberships come from the stream itself). The router's
// (table `taskflow-memberships`) is read by the broker's hooks, the IoT custom authorizer and the
// replay API; the notifications service keeps its own in its own table, built the same way.
//
// DynamoDB layout (HASH userId, RANGE scope = membership id): one
// item per membership with the id of the event that last wrote it. A delete leaves a tombstone
// instead of removing the item, so reprocessing an older create after a crash cannot bring a
// revoked membership back: every write is conditional on being newer than what is stored.
// `TRUNCATE memberships` leaves a marker item: memberships written before it no longer count.
import { DeleteItemCommand, type DynamoDBClient, GetItemCommand, PutItemCommand, QueryCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { conditionalWrite, DirectAwsJson, DYNAMODB_JSON } from './aws-direct.js';
import type { Membership, Role } from './authz.js';
import type { StreamEvent } from '@taskflow/stream/events';
import { membershipWrites, newestWrites, projectionSteps, type MembershipWrite } from './membership-events.js';

/** The key schema of a membership projection's table (the router's and the notifications service's). */
export const MEMBERSHIP_TABLE_KEY = {
  AttributeDefinitions: [
    { AttributeName: 'userId', AttributeType: 'S' },
    { AttributeName: 'scope', AttributeType: 'S' },
  ],
  KeySchema: [
    { AttributeName: 'userId', KeyType: 'HASH' },
    { AttributeName: 'scope', KeyType: 'RANGE' },
  ],
  BillingMode: 'PAY_PER_REQUEST',
} as const;

export interface MembershipReader {
  memberships(userId: string): Promise<Membership[]>;
}

/** The item that holds the latest `TRUNCATE memberships` (no user id is '*'). */
const TRUNCATE_MARKER = { userId: '*', scope: 'truncated' } as const;

/** Tombstones outlive any replay of the stream (Kinesis keeps at most 365 days; ours 7). */
const TOMBSTONE_TTL_SECONDS = 30 * 24 * 3600;

export class DynamoMembershipProjection implements MembershipReader {
  /** The projection's writes (one per membership event) go out directly (lib/aws-direct.ts). */
  private readonly direct: DirectAwsJson | undefined;

  constructor(
    private readonly client: DynamoDBClient,
    private readonly table = 'taskflow-memberships',
    private readonly now: () => number = Date.now,
  ) {
    this.direct = DirectAwsJson.of(client, DYNAMODB_JSON);
  }

  /** `erased`: user ids on the erased-subjects list, whose memberships are forgotten, never stored (projectionSteps). */
  async apply(events: readonly StreamEvent[], erased: ReadonlySet<string> = new Set()): Promise<void> {
    // One write per membership, its newest (newestWrites); different memberships in parallel. A
    // truncate ends a run: what came before it is written first, then swept.
    let run: MembershipWrite[] = [];
    const writeRun = () =>
      Promise.all(projectionSteps(newestWrites(run), (userId) => erased.has(userId)).map((step) => ('put' in step ? this.write(step.put) : this.forget(step.forget))));
    for (const w of membershipWrites(events)) {
      if ('truncatedBefore' in w) {
        await writeRun();
        run = [];
        await this.truncate(w.truncatedBefore);
        continue;
      }
      run.push(w);
    }
    await writeRun();
  }

  /**
   * Records the truncate as a marker that hides every membership written before it. A marker
   * rather than a sweep of tombstones: a membership event on another shard, older than the
   * truncate but processed after it, must stay hidden too.
   */
  private async truncate(eventId: string): Promise<void> {
    const input = {
      TableName: this.table,
      Item: { userId: { S: TRUNCATE_MARKER.userId }, scope: { S: TRUNCATE_MARKER.scope }, eventId: { S: eventId } },
      ConditionExpression: 'attribute_not_exists(eventId) OR eventId < :id',
      ExpressionAttributeValues: { ':id': { S: eventId } },
    };
    // Refused: a newer truncate is recorded already.
    await conditionalWrite(this.direct, 'PutItem', input, () => this.client.send(new PutItemCommand(input)));
  }

  private async forget(m: { userId: string; membershipId: string }): Promise<void> {
    await this.client.send(new DeleteItemCommand({ TableName: this.table, Key: { userId: { S: m.userId }, scope: { S: m.membershipId } } }));
  }

  private async write(w: MembershipWrite): Promise<void> {
    const item: Record<string, AttributeValue> = { userId: { S: w.userId }, scope: { S: w.membershipId }, eventId: { S: w.eventId } };
    if (w.membership) {
      item.workspaceId = { S: w.membership.workspaceId };
      item.role = { S: w.membership.role };
      if (w.membership.projectId !== null) item.projectId = { S: w.membership.projectId };
    } else {
      item.deleted = { BOOL: true };
      item.expiresAt = { N: String(Math.floor(this.now() / 1000) + TOMBSTONE_TTL_SECONDS) };
    }
    const input = { TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(eventId) OR eventId < :id', ExpressionAttributeValues: { ':id': { S: w.eventId } } };
    // Refused: the item already holds this or a newer event (reprocessing), nothing to do.
    await conditionalWrite(this.direct, 'PutItem', input, () => this.client.send(new PutItemCommand(input)));
  }

  /**
   * The user's memberships. Strongly consistent by default (a SUBSCRIBE must see a revocation the
   * moment it is written); `consistent: false` reads at half the read units, for a check that a
   * read a moment stale cannot mislead for longer than its own interval.
   */
  async memberships(userId: string, { consistent = true }: { consistent?: boolean } = {}): Promise<Membership[]> {
    // The truncate marker is read alongside the user's items, not before them: one round trip.
    const [marker, items] = await Promise.all([
      this.client.send(
        new GetItemCommand({ TableName: this.table, Key: { userId: { S: TRUNCATE_MARKER.userId }, scope: { S: TRUNCATE_MARKER.scope } }, ConsistentRead: consistent }),
      ),
      this.itemsOf(userId, consistent),
    ]);
    const truncatedBefore = marker.Item?.eventId?.S ?? '';
    const out: Membership[] = [];
    for (const item of items) {
      if (item.deleted?.BOOL || !item.workspaceId?.S || (item.eventId?.S ?? '') < truncatedBefore) continue;
      out.push({ workspaceId: item.workspaceId.S, projectId: item.projectId?.S ?? null, role: (item.role?.S ?? 'viewer') as Role });
    }
    return out;
  }

  private async itemsOf(userId: string, consistent: boolean): Promise<Record<string, AttributeValue>[]> {
    const items: Record<string, AttributeValue>[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({ TableName: this.table, KeyConditionExpression: 'userId = :u', ExpressionAttributeValues: { ':u': { S: userId } }, ExclusiveStartKey: start, ConsistentRead: consistent }),
      );
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    return items;
  }
}
