// The router-memberships erasure sink (router/erasure-sink.ts) on dynalite, with the router's
// membership projection (lib/dynamo-memberships.ts) told who is erased: the erasure's own delete
// of the subject's membership revokes it without leaving a tombstone holding their id, the purge
// removes what the projection held of them (a tombstone of an earlier removal), the scan then finds
// 0, and a replayed older grant of theirs is not stored again. Another user's memberships stay.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomUUID } from 'node:crypto';
import { decodeEvent, type StreamEvent } from '@taskflow/stream/events';
import { DynamoMembershipProjection } from '../../lib/dynamo-memberships.js';
import type { ErasureSink, SubjectIdentifiers } from '../../lib/erasure.js';
import { openErasureSinks } from '../../router/erasure-sink.js';
import { sampleEvent, type SampleOverrides } from '../../schemas/fixtures.js';
import { validateEvent } from '../../schemas/validate.js';
import { createTestTables, dynamoClient, testStackEnv } from '../support/stack.js';

let client: DynamoDBClient;
let table: string;
let sink: ErasureSink;
let close: () => Promise<void>;

beforeAll(async () => {
  client = dynamoClient();
  table = (await createTestTables('gdpr-sink-memberships', ['memberships'])).memberships!;
  const opened = await openErasureSinks({ ...testStackEnv(), DYNAMODB_TABLE_MEMBERSHIPS: table });
  const found = opened.sinks.find((s) => s.sink === 'router-memberships');
  if (!found) throw new Error('router/erasure-sink.ts opens no router-memberships sink');
  sink = found;
  close = opened.close;
});

afterAll(async () => {
  await close?.();
  client?.destroy();
});

function event(kind: 'membership.created' | 'membership.deleted', lsn: number, o: SampleOverrides): StreamEvent {
  const d = decodeEvent(Buffer.from(JSON.stringify(sampleEvent(kind, { commitLsn: BigInt(lsn), ...o }))), validateEvent);
  if (!d.ok) throw new Error(d.message);
  return d.event;
}

describe('router-memberships erasure sink', () => {
  it('nothing of the subject is left in the projection or stored again; the other user keeps theirs', async () => {
    const [subject, other, ws] = [randomUUID(), randomUUID(), randomUUID()];
    const [kept, removedEarlier, otherMembership] = [randomUUID(), randomUUID(), randomUUID()];
    const ids: SubjectIdentifiers = { subject, email: 'ada@example.com', displayName: 'Ada Lovelace', authored: [] };
    const projection = new DynamoMembershipProjection(client, table);
    const grant = event('membership.created', 0x100, { workspaceId: ws, entityId: kept, userId: subject });
    await projection.apply([
      grant,
      event('membership.created', 0x200, { workspaceId: ws, entityId: removedEarlier, userId: subject }),
      event('membership.deleted', 0x300, { workspaceId: ws, entityId: removedEarlier, userId: subject }), // a tombstone with their id
      event('membership.created', 0x400, { workspaceId: ws, entityId: otherMembership, userId: other }),
    ]);
    expect(await sink.scan(ids)).toEqual({ scanned: 2, found: 2 });
    expect(await projection.memberships(subject)).toHaveLength(1);

    // The erasure's own delete of the subject's membership, once the router knows them erased: revoked, no tombstone.
    const erased = new Set([subject]);
    await projection.apply([event('membership.deleted', 0x500, { workspaceId: ws, entityId: kept, userId: subject })], erased);
    expect(await projection.memberships(subject)).toEqual([]);
    expect(await sink.scan(ids)).toEqual({ scanned: 1, found: 1 }); // the earlier removal's tombstone

    expect(await sink.purge(ids)).toEqual({ changed: 1 });
    expect(await sink.scan(ids)).toEqual({ scanned: 0, found: 0 });
    expect(await sink.purge(ids)).toEqual({ changed: 0 });

    // A replay or redrive of the old grant after the purge: not stored (the list refuses it, not a tombstone).
    await projection.apply([grant], erased);
    expect(await sink.scan(ids)).toEqual({ scanned: 0, found: 0 });
    expect(await projection.memberships(subject)).toEqual([]);
    expect(await projection.memberships(other)).toEqual([{ workspaceId: ws, projectId: expect.any(String), role: expect.any(String) }]);
  });
});
