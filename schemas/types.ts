// Typed events, composed from the types generated out of the current schema versions.
// When a schema gets a new version, point the import here at the new generated module.
import type { ChangeData, ChangeSource, Envelope } from './generated/envelope.v1.js';
import type { TaskRow, Encrypted } from './generated/task.v2.js';
import type { CommentRow } from './generated/comment.v2.js';
import type { MembershipRow } from './generated/membership.v1.js';
import type { ProjectRow } from './generated/project.v1.js';
import type { TruncateData } from './generated/truncate.v1.js';
import type { GdprErasureData } from './generated/gdpr-erasure.v1.js';
import type { EntityName, Verb } from './kinds.js';

export type { ChangeData, ChangeSource, Envelope, TaskRow, Encrypted, CommentRow, MembershipRow, ProjectRow, TruncateData, GdprErasureData };
export type { EntityName, Verb, Op } from './kinds.js';

export interface RowOf {
  task: TaskRow;
  comment: CommentRow;
  membership: MembershipRow;
  project: ProjectRow;
}

/**
 * `target`: the one consumer (by name) a snapshot event is aimed at (`taskflow capture snapshot
 * --for`); every other consumer skips it. A CloudEvents extension attribute the open envelope v1
 * admits; validate.ts allows it on snapshot (`r`) events only (schemas/CONTRACTS.md).
 */
type EnvelopeAttributes = Omit<Envelope, 'type' | 'data'> & { target?: string };

/** A change of one row of an entity table (task, comment, membership, project). */
export type EntityChangeEvent<E extends EntityName = EntityName> = E extends EntityName
  ? EnvelopeAttributes & {
      type: `taskflow.${E}.${Verb}`;
      data: Omit<ChangeData, 'before' | 'after'> & { before: RowOf[E] | null; after: RowOf[E] | null };
    }
  : never;

export type TruncateEvent = EnvelopeAttributes & { type: 'taskflow.table.truncated'; data: TruncateData };

export type GdprErasureEvent = EnvelopeAttributes & { type: 'taskflow.gdpr.erasure_requested'; data: GdprErasureData };

/** Any event on the change stream, as accepted by validateEvent. */
export type ChangeEvent = EntityChangeEvent | TruncateEvent | GdprErasureEvent;

export function isEntityChange(event: ChangeEvent): event is EntityChangeEvent {
  return event.type !== 'taskflow.table.truncated' && event.type !== 'taskflow.gdpr.erasure_requested';
}

/** Narrows to one entity's changes, with that entity's row images. */
export function isChangeOf<E extends EntityName>(event: ChangeEvent, entity: E): event is EntityChangeEvent<E> {
  return event.type.startsWith(`taskflow.${entity}.`);
}

export function isTruncate(event: ChangeEvent): event is TruncateEvent {
  return event.type === 'taskflow.table.truncated';
}
