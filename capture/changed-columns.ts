// Which columns an UPDATE changed. pgoutput's update carries the new row and, with the captured
// tables' replica identity, the old key only when it changed — not which columns differ. On a
// table opted in (db/migrations/0005: taskflow_capture_changed_columns), the trigger of
// db/migrations/0003_changed_columns.sql emits, after every row update, a transactional logical
// message `taskflow.changed` {table, id, columns}; the decoder pairs the
// n-th message of a row with the n-th update of that row in the same transaction (an AFTER ROW
// trigger fires once per updated row, in update order, even when it fires after the statement).
import type pg from 'pg';

export const CHANGED_COLUMNS_PREFIX = 'taskflow.changed';
export const CHANGED_COLUMNS_TRIGGER = 'taskflow_changed_columns';

const rowKey = (table: string, id: string) => `${table}\u0000${id}`;

/** One transaction's changed-columns messages, handed out per row in order. */
export class ChangedColumnsIndex {
  private readonly byRow = new Map<string, Set<string>[]>();

  /** Adds one message; returns false for content that is not {table, id, columns}. */
  add(content: Uint8Array): boolean {
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(content).toString('utf8'));
    } catch {
      return false;
    }
    const m = parsed as { table?: unknown; id?: unknown; columns?: unknown };
    if (typeof m.table !== 'string' || m.id === undefined || m.id === null || !Array.isArray(m.columns) || !m.columns.every((c) => typeof c === 'string')) return false;
    const key = rowKey(m.table, String(m.id));
    const list = this.byRow.get(key) ?? [];
    list.push(new Set(m.columns as string[]));
    this.byRow.set(key, list);
    return true;
  }

  /** The columns the next update of this row changed, or undefined when no message is left for it. */
  take(table: string, id: string): ReadonlySet<string> | undefined {
    return this.byRow.get(rowKey(table, id))?.shift();
  }
}

/**
 * `data.changed` of an update: the columns of `after` that the update changed, in `after`'s order;
 * without a message (the table not opted in — the default —, a session with
 * session_replication_role = replica) every column of `after`, the most that can have changed.
 */
export function changedOf(afterColumns: readonly string[], changed: ReadonlySet<string> | undefined): string[] {
  return changed ? afterColumns.filter((c) => changed.has(c)) : [...afterColumns];
}

/** The tables of `tables` opted in to changed-column capture (the trigger present and enabled). */
export async function changedColumnsTables(db: Pick<pg.Client, 'query'>, tables: readonly string[]): Promise<string[]> {
  const { rows } = await db.query<{ table: string }>(
    `SELECT c.relname AS table FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
      WHERE t.tgname = $1 AND t.tgenabled IN ('O', 'A') AND c.relname = ANY($2::text[]) AND pg_table_is_visible(c.oid) ORDER BY 1`,
    [CHANGED_COLUMNS_TRIGGER, tables],
  );
  return rows.map((r) => r.table);
}
