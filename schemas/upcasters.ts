// Upcasters: pure functions that turn an event written against an older schema version into the
// next version, so readers only ever handle the current one. Register one per (schema,
// fromVersion) when a schema gets a new version; the chain v1 → v2 → … runs in order.
// `taskflow schemas check` refuses a version step that removes a property (a rename, a retype)
// or that old events would fail, unless its upcaster is registered here; schemas/upcasters.test.ts
// proves each one turns events generated from the old schema into valid events of the new one.

export type EventObject = Record<string, unknown>;

export interface Upcaster {
  /** Schema name, e.g. "task". */
  schema: string;
  /** The version this upcaster reads; it returns the event at fromVersion + 1. */
  fromVersion: number;
  /** Must not mutate its input: readers may hold on to the original (DLQ, logs). */
  upcast(event: Readonly<EventObject>): EventObject;
}

type Row = Record<string, unknown>;
type RowMapper = (row: Readonly<Row>, image: 'before' | 'after') => Row;

/**
 * v1 `due_date` (a date) as v2 `due_at` (a timestamp): the day at 00:00 UTC, exactly what
 * migration 0006 backfills (`due_date::timestamp AT TIME ZONE 'UTC'`) and capture renders.
 */
export function dueAtOfDueDate(dueDate: unknown): string | null {
  if (dueDate === null || dueDate === undefined) return null;
  if (typeof dueDate !== 'string' || !/^\d{4}-\d\d-\d\d$/.test(dueDate)) throw new Error(`due_date ${JSON.stringify(dueDate)} is not a date`);
  return `${dueDate}T00:00:00Z`;
}

/**
 * An upcaster that maps each row image and, in `changed`/`omitted`, adds for each listed column
 * the new columns it became (appended: new columns come last in the table's column order).
 */
function rowUpcaster(schema: string, fromVersion: number, mapRow: RowMapper, becomes: Readonly<Record<string, string>>): Upcaster {
  const columns = (list: unknown) => {
    if (!Array.isArray(list)) return list;
    const added = list.flatMap((c) => (typeof c === 'string' && becomes[c] !== undefined && !list.includes(becomes[c]) ? [becomes[c]] : []));
    return [...list, ...added];
  };
  return {
    schema,
    fromVersion,
    upcast(event) {
      const data = event.data as Row;
      const image = (row: unknown, which: 'before' | 'after') => (row !== null && typeof row === 'object' ? mapRow(row as Row, which) : row);
      const next: Row = { ...data, before: image(data.before, 'before'), after: image(data.after, 'after') };
      if ('changed' in data) next.changed = columns(data.changed);
      if ('omitted' in data) next.omitted = columns(data.omitted);
      return { ...event, data: next };
    },
  };
}

/**
 * task v1 → v2: `due_date` becomes `due_at` (renamed and retyped); `labels` did not exist, so a
 * full row (`after` of a create, update or snapshot) has none: [] (the column's default, which
 * every row had when it appeared). `due_date` stays beside `due_at`, as it does on the events
 * capture writes through the deprecation window (0006 → 0007): a v1 event upcast is the event
 * the window would have carried, so a reader that still reads `due_date` — a web SDK release
 * before v2 behind an upgraded router, a service pinned to v1 — keeps its due dates for the v1
 * history too (schemas/CONTRACTS.md, rule 3). A `before` is the replica identity only and
 * stays as it is. An `after` that left a TOASTed column out keeps it out: v1 only omits
 * description or title.
 */
const taskV1: Upcaster = rowUpcaster(
  'task',
  1,
  (row, image) => {
    const next: Row = { ...row };
    if ('due_date' in row) next.due_at = dueAtOfDueDate(row.due_date);
    if (image === 'after' && !('labels' in row)) next.labels = [];
    return next;
  },
  { due_date: 'due_at' },
);

/** comment v1 → v2: `edited_at` did not exist; a full row says null (not known to be edited). */
const commentV1: Upcaster = rowUpcaster(
  'comment',
  1,
  (row, image) => (image === 'after' && !('edited_at' in row) ? { ...row, edited_at: null } : { ...row }),
  {},
);

/** The upcasters in use. */
export const UPCASTERS: readonly Upcaster[] = [taskV1, commentV1];
