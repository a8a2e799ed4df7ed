// The search index's model, free of any engine: what a change event does to one indexed
// document. Every operation is a max or a last-writer-wins per field keyed by event id, so the
// final state depends only on the SET of events applied — any order, any duplicates (the
// property test says so) — which is what makes redelivery, replays, redrives and a truncate that
// arrives on another shard safe.
//
//   written  highest id of a create/update/snapshot        deleted  highest id of a delete
//   fields   per column: the value and the id of the event that last carried it
//
// A document is visible while written > max(deleted, the table's truncate marker); a column
// counts only if it was set after that cut (a row deleted and re-inserted starts afresh). An
// update's `after` leaves out unchanged TOASTed columns (data.omitted): those keep the value an
// earlier event carried, even when that earlier event is applied after the update.
import type { StreamEvent } from '@taskflow/stream/events';
import { isEntityChange, isTruncate } from '../schemas/types.js';

export const INDEXED_TABLES = ['tasks', 'comments'] as const;
export type IndexedTable = (typeof INDEXED_TABLES)[number];

/** The columns kept per table; text columns are searched, the others filter and display. */
export const INDEXED_COLUMNS: Readonly<Record<IndexedTable, readonly string[]>> = {
  tasks: ['project_id', 'title', 'description', 'status', 'labels', 'due_at'],
  comments: ['project_id', 'task_id', 'body'],
};

export interface FieldValue {
  /** Id of the event that set it. */
  v: string;
  /** null: SQL NULL, or a value that cannot be searched (an encrypted personal field); labels: a list. */
  value: string | readonly string[] | null;
}

export interface DocState {
  workspaceId: string;
  table: IndexedTable;
  id: string;
  written: string;
  deleted: string;
  fields: Record<string, FieldValue>;
}

/** One event's effect on one document. */
export interface DocChange {
  eventId: string;
  workspaceId: string;
  table: IndexedTable;
  id: string;
  op: 'write' | 'delete';
  /** write: the indexed columns `after` carries (omitted TOASTed columns are absent). */
  row: Record<string, FieldValue['value']>;
}

/** `TRUNCATE tables`: everything of these tables written before `eventId` is gone. */
export interface TableTruncate {
  eventId: string;
  tables: IndexedTable[];
}

export function docKey(d: { workspaceId: string; table: string; id: string }): string {
  return `${d.workspaceId}/${d.table}/${d.id}`;
}

const isIndexed = (t: unknown): t is IndexedTable => (INDEXED_TABLES as readonly unknown[]).includes(t);

/**
 * A column's value as the index keeps it: strings as they are, numbers and booleans as text,
 * anything else (an encrypted field) unsearchable. `labels` is a list of strings; `due_at` is
 * rewritten as toISOString() so range filters compare instants as text in both engines
 * (capture writes '+00:00', an upcast v1 due_date 'T00:00:00Z').
 */
function columnValue(column: string, v: unknown): FieldValue['value'] {
  if (column === 'labels') return Array.isArray(v) ? v.filter((l): l is string => typeof l === 'string') : null;
  if (column === 'due_at') return typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? new Date(v).toISOString() : null;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return null;
}

/** What a validated event does to the index: a document change, a truncate, or nothing (other tables, memberships). */
export function indexChangeOf(e: StreamEvent): DocChange | TableTruncate | null {
  const env = e.envelope;
  if (isTruncate(env)) {
    const tables = env.data.tables.filter(isIndexed);
    return tables.length > 0 ? { eventId: e.id, tables } : null;
  }
  if (!isEntityChange(env)) return null;
  const data = env.data;
  if (!isIndexed(data.table)) return null;
  const table = data.table;
  const id = data.key?.id;
  if (typeof id !== 'string') return null;
  if (data.op === 'd') return { eventId: e.id, workspaceId: e.workspaceId, table, id, op: 'delete', row: {} };
  // Columns are read by name: any entity's row image will do.
  const after = (data.after ?? {}) as Readonly<Record<string, unknown>>;
  const omitted = new Set(data.omitted ?? []);
  const row: DocChange['row'] = {};
  for (const column of INDEXED_COLUMNS[table]) {
    if (omitted.has(column) || !(column in after)) continue;
    row[column] = columnValue(column, after[column]);
  }
  return { eventId: e.id, workspaceId: e.workspaceId, table, id, op: 'write', row };
}

const max = (a: string, b: string): string => (a > b ? a : b);

/** Pure: the document after `change` (state may be undefined: never seen). Applying an event again changes nothing. */
export function applyChange(state: DocState | undefined, change: DocChange): DocState {
  const next: DocState = state
    ? { ...state, fields: { ...state.fields } }
    : { workspaceId: change.workspaceId, table: change.table, id: change.id, written: '', deleted: '', fields: {} };
  if (change.op === 'delete') {
    next.deleted = max(next.deleted, change.eventId);
    return next;
  }
  next.written = max(next.written, change.eventId);
  for (const [column, value] of Object.entries(change.row)) {
    const current = next.fields[column];
    if (!current || current.v < change.eventId) next.fields[column] = { v: change.eventId, value };
  }
  return next;
}

/** What a query sees of a document: null when it is deleted or truncated away. */
export interface SearchDocument {
  workspaceId: string;
  table: IndexedTable;
  id: string;
  /** The event id of its latest write: the document's version. */
  version: string;
  projectId: string | null;
  /** tasks: title; comments: '' */
  title: string;
  /** tasks: description; comments: body */
  text: string;
  status: string | null;
  taskId: string | null;
  /** tasks: labels in the order the user gave them (v1 events upcast to []); comments: [] */
  labels: string[];
  /** tasks: due_at as toISOString() (v1 due_date upcast to 00:00 UTC), or null; comments: null */
  dueAt: string | null;
}

export function visibleDocument(state: DocState, truncatedBefore = ''): SearchDocument | null {
  const cut = max(state.deleted, truncatedBefore);
  if (state.written <= cut) return null;
  const value = (c: string): FieldValue['value'] => {
    const f = state.fields[c];
    return f && f.v > cut ? f.value : null;
  };
  const field = (c: string): string | null => {
    const v = value(c);
    return typeof v === 'string' ? v : null;
  };
  const labels = value('labels');
  return {
    workspaceId: state.workspaceId,
    table: state.table,
    id: state.id,
    version: state.written,
    projectId: field('project_id'),
    title: state.table === 'tasks' ? (field('title') ?? '') : '',
    text: (state.table === 'tasks' ? field('description') : field('body')) ?? '',
    status: field('status'),
    taskId: field('task_id'),
    labels: Array.isArray(labels) ? [...labels] : [],
    dueAt: field('due_at'),
  };
}

/** Whether a state can be forgotten after a truncate: nothing of it survives the cut, and a stale event that recreates it stays hidden by the marker. */
export function erasedByTruncate(state: DocState, truncatedBefore: string): boolean {
  return state.written < truncatedBefore && state.deleted < truncatedBefore;
}

const holds = (value: FieldValue['value'], needles: readonly string[]): boolean =>
  typeof value === 'string' ? needles.some((n) => value.includes(n)) : Array.isArray(value) ? value.some((l: string) => needles.some((n) => l.includes(n))) : false;

/** Whether any of the document's kept values, visible or not (a deleted document keeps its last values), contains a needle. */
export function stateHolds(state: DocState, needles: readonly string[]): boolean {
  return Object.values(state.fields).some((f) => holds(f.value, needles));
}

/**
 * Erasure (gdpr/POLICY.md `search-index`): every value holding a needle is emptied, and with
 * `remove` (a comment the subject wrote) every value but the ids, and the document is hidden as if
 * deleted. Each field keeps the id of the event that set it, so a replayed older event cannot
 * bring the value back (applyChange only lets a newer one in); a later edit still can. null:
 * nothing to change (a repeat).
 */
export function erasedState(state: DocState, needles: readonly string[], remove: boolean): DocState | null {
  let changed = false;
  const fields: DocState['fields'] = {};
  for (const [column, f] of Object.entries(state.fields)) {
    const empty = f.value !== null && (holds(f.value, needles) || (remove && !column.endsWith('_id')));
    fields[column] = empty ? { v: f.v, value: null } : f;
    changed ||= empty;
  }
  const deleted = remove && state.deleted < state.written ? state.written : state.deleted;
  changed ||= deleted !== state.deleted;
  return changed ? { ...state, fields, deleted } : null;
}
