// What a membership event does to a membership projection, as pure data: every reader that
// keeps one (the router's DynamoDB projection, the search index's own) maps events the same way.
import type { Membership, Role } from './authz.js';
import type { StreamEvent } from '@taskflow/stream/events';
import { isChangeOf, isTruncate } from '../schemas/types.js';

/** What one membership event does to the projection. */
export interface MembershipWrite {
  userId: string;
  membershipId: string;
  eventId: string;
  /** null: the membership is gone (tombstone). */
  membership: Membership | null;
}

/** `TRUNCATE memberships`: every membership written before `eventId` is gone. */
export interface MembershipsTruncated {
  truncatedBefore: string;
}

/** Whether the projection must see this event: a membership row, or a truncate that includes the table. */
export function affectsMemberships(e: StreamEvent): boolean {
  return isTruncate(e.envelope) ? e.envelope.data.tables.includes('memberships') : isChangeOf(e.envelope, 'membership');
}

const ROLES: readonly Role[] = ['owner', 'admin', 'member', 'viewer'];

/** Pure: membership events (stream order) → projection writes. Rows without a user are skipped. */
export function membershipWrites(events: readonly StreamEvent[]): (MembershipWrite | MembershipsTruncated)[] {
  const writes: (MembershipWrite | MembershipsTruncated)[] = [];
  for (const e of events) {
    const env = e.envelope;
    if (isTruncate(env)) {
      if (env.data.tables.includes('memberships')) writes.push({ truncatedBefore: e.id });
      continue;
    }
    if (!isChangeOf(env, 'membership')) continue;
    const { op, before, after } = env.data;
    const row = op === 'd' ? before : after;
    const id = row?.id;
    const userId = row?.user_id;
    if (typeof id !== 'string' || typeof userId !== 'string') continue;
    // An update that moved the membership to another user revokes the old user's access.
    if (op === 'u' && before && typeof before.user_id === 'string' && before.user_id !== userId) {
      writes.push({ userId: before.user_id, membershipId: id, eventId: e.id, membership: null });
    }
    if (op === 'd') {
      writes.push({ userId, membershipId: id, eventId: e.id, membership: null });
      continue;
    }
    const role = ROLES.includes(after?.role as Role) ? (after?.role as Role) : 'viewer';
    const projectId = typeof after?.project_id === 'string' ? after.project_id : null;
    writes.push({ userId, membershipId: id, eventId: e.id, membership: { workspaceId: e.workspaceId, projectId, role } });
  }
  return writes;
}

/**
 * Pure: of the writes to each membership (user id + membership id), the newest only. Every write
 * to the projection is conditional on being newer than the item stored, so the newest alone
 * leaves the same item as all of them in turn; a backlog replayed after a restart (thousands of
 * membership events in one batch, bench:recovery) then costs one write per membership.
 * Writes on either side of a truncate must not be merged: pass the runs between them.
 */
export function newestWrites(writes: readonly MembershipWrite[]): MembershipWrite[] {
  const newest = new Map<string, MembershipWrite>();
  for (const w of writes) {
    const key = `${w.userId}/${w.membershipId}`;
    const seen = newest.get(key);
    if (!seen || w.eventId > seen.eventId) newest.set(key, w);
  }
  return [...newest.values()];
}

/** What the projection does for an erased subject's membership: nothing of theirs is stored again. */
export type ProjectionStep = { put: MembershipWrite } | { forget: { userId: string; membershipId: string } };

/**
 * Pure: the projection's steps for `writes` (gdpr/POLICY.md `router-memberships`). An erased
 * subject's grant is not written, and a removal of theirs deletes the item outright instead of
 * leaving a tombstone that would hold their id for its 30 days: the erased-subjects list is what
 * refuses an older grant replayed for them. Everyone else's writes are as they were.
 */
export function projectionSteps(writes: readonly MembershipWrite[], isErased: (userId: string) => boolean): ProjectionStep[] {
  const steps: ProjectionStep[] = [];
  for (const w of writes) {
    if (!isErased(w.userId)) steps.push({ put: w });
    else if (w.membership === null) steps.push({ forget: { userId: w.userId, membershipId: w.membershipId } });
  }
  return steps;
}

