// Who may have lost access: pure, read by the shard router to hold a workspace's later changes
// until the revoked members' connections are gone (router/revocation-hold.ts).
import { isChangeOf } from '../schemas/types.js';
import type { RouterEvent } from './event.js';

/** A member who may have lost access at `eventId` (the membership event's id). */
export interface Revocation {
  workspaceId: string;
  userId: string;
  eventId: string;
}

/**
 * Pure: the members whose access a membership event may take away, in stream order. A delete
 * revokes its user. So does every update, for the user the row had before: the WAL's old row
 * carries only the replica identity (id, workspace, user), not the old project, so an update
 * that narrowed the scope looks like one that changed the role. Creates never revoke.
 */
export function revocations(events: readonly RouterEvent[]): Revocation[] {
  const out: Revocation[] = [];
  for (const e of events) {
    if (!isChangeOf(e.envelope, 'membership')) continue;
    const { op, before, after } = e.envelope.data;
    const userId = op === 'd' ? before?.user_id : op === 'u' ? (before?.user_id ?? after?.user_id) : undefined;
    if (typeof userId === 'string') out.push({ workspaceId: e.workspaceId, userId, eventId: e.id });
  }
  return out;
}
