// Event types come from the JSON Schemas (schemas/generated, made by `npm run gen:types`); none
// are written by hand here. The imports are type-only, so nothing of schemas/ reaches the
// JavaScript bundles; the package build (scripts/build.mjs) ships their declarations inside
// dist/types/generated.
import type { ChangeData, ChangeSource, Envelope } from '../../../schemas/generated/envelope.v1.js';
import type { CommentRow } from '../../../schemas/generated/comment.v2.js';
import type { MembershipRow } from '../../../schemas/generated/membership.v1.js';
import type { ProjectRow } from '../../../schemas/generated/project.v1.js';
import type { TaskRow } from '../../../schemas/generated/task.v2.js';

export type { ChangeData, ChangeSource, CommentRow, Envelope, MembershipRow, ProjectRow, TaskRow };

/** A change event as published on a project topic: the envelope with entity change data. */
export type ChangeEvent = Omit<Envelope, 'data'> & { data: ChangeData };

/** Row image type per captured table. */
export interface RowsByTable {
  tasks: TaskRow;
  comments: CommentRow;
  memberships: MembershipRow;
  projects: ProjectRow;
}

/**
 * A change of one table with typed row images (an update's `after` may lack unchanged TOASTed
 * columns, a delete's `before` holds only the replica identity: hence Partial).
 * Narrow with `isTableChange(event, 'tasks')`.
 */
export type TableChangeEvent<T extends keyof RowsByTable> = ChangeEvent & {
  data: ChangeData & { table: T; before: Partial<RowsByTable[T]> | null; after: Partial<RowsByTable[T]> | null };
};

export function isTableChange<T extends keyof RowsByTable>(event: ChangeEvent, table: T): event is TableChangeEvent<T> {
  return event.data.table === table;
}
