// The Snowflake versions of the warehouse's history and product-metrics views (DuckDB's are in
// tables.ts), applied by the Snowflake adapter with its DDL. Each view names its columns in its
// header, so Snowflake refuses a body that drifts from them, and snowflake-views.test.ts checks
// the names and columns against the DuckDB views'.
import { columnValue, CURATED, type CuratedColumn, type CuratedEntity, HISTORY_TABLES, lit, q, type SqlDialect } from './tables.js';

/** Snowflake's type of each curated column type. */
export const SNOWFLAKE_TYPES: Record<CuratedColumn['type'], string> = {
  VARCHAR: 'STRING',
  INTEGER: 'NUMBER(38, 0)',
  DOUBLE: 'FLOAT',
  BOOLEAN: 'BOOLEAN',
  TIMESTAMPTZ: 'TIMESTAMP_TZ',
  DATE: 'DATE',
  'VARCHAR[]': 'ARRAY',
};

/** The curated MERGE's dialect on Snowflake (tables.ts mergeSql). */
export const SNOWFLAKE: SqlDialect = {
  name: 'snowflake',
  rowValue: (after, field, type) => `${after}:${q(field)}::${SNOWFLAKE_TYPES[type]}`,
  contains: (list, value) => `ARRAY_CONTAINS(${lit(value)}::VARIANT, ${list})`,
  maxWhere: (of, where) => `MAX(IFF(${where}, ${of}, NULL))`,
  argMaxWhere: (value, by, where) => `MAX_BY(IFF(${where}, ${value}, NULL), IFF(${where}, ${by}, NULL))`,
  greatest: (a, b) => `NULLIF(GREATEST(COALESCE(${a}, ''), COALESCE(${b}, '')), '')`,
  utcMidnight: (date) => `TIMESTAMP_TZ_FROM_PARTS(YEAR(${date}), MONTH(${date}), DAY(${date}), 0, 0, 0, 0, 'UTC')`,
  utcDate: (timestamp) => `CONVERT_TIMEZONE('UTC', ${timestamp})::DATE`,
  emptyList: 'ARRAY_CONSTRUCT()',
};

/** `CREATE OR REPLACE VIEW name (columns) AS body`. */
export const view = (name: string, columns: readonly string[], body: string) => `CREATE OR REPLACE VIEW ${name} (${columns.join(', ')}) AS ${body}`;

/**
 * As DuckDB's historyView: one row per version in id order; a column an update omitted keeps the
 * previous version's value. OBJECT_CONSTRUCT_KEEP_NULL wraps the carried value so a column set
 * to JSON null still counts as carried (LAST_VALUE … IGNORE NULLS skips only the uncarried).
 */
function historyView(e: CuratedEntity): string {
  // An upcast column wraps its typed value (read back with the same cast); the others the raw field.
  const value = (c: CuratedColumn) => (c.derive ? `TO_VARIANT(${columnValue(c, (f, t) => SNOWFLAKE.rowValue('after', f, t), SNOWFLAKE)})` : `after:${q(c.name)}`);
  const carried = (c: CuratedColumn) =>
    `LAST_VALUE(IFF(op <> 'd' AND NOT ARRAY_CONTAINS(${lit(c.name)}::VARIANT, omitted), OBJECT_CONSTRUCT_KEEP_NULL('v', ${value(c)}), NULL)) IGNORE NULLS
      OVER (PARTITION BY id ORDER BY event_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS ${q(c.name)}`;
  return view(
    `${e.table}_history`,
    ['id', 'event_id', 'valid_from', 'valid_to', ...e.columns.map((c) => q(c.name))],
    `WITH ev AS (
      SELECT key_id AS id, id AS event_id, op, time, event:data.after AS after, COALESCE(event:data.omitted::ARRAY, ARRAY_CONSTRUCT()) AS omitted
      FROM raw_events WHERE tbl = ${lit(e.table)} AND op IN ('c', 'u', 'r', 'd') AND key_id IS NOT NULL),
    versions AS (
      SELECT id, event_id, op, time AS valid_from, LEAD(time) OVER (PARTITION BY id ORDER BY event_id) AS valid_to, ${e.columns.map(carried).join(',\n        ')}
      FROM ev)
    SELECT id, event_id, valid_from, valid_to, ${e.columns.map((c) => `${q(c.name)}:v::${SNOWFLAKE_TYPES[c.type]}`).join(', ')} FROM versions WHERE op <> 'd'`,
  );
}

const METRICS = [
  // Completed: a version whose status is done after one whose status was not (as DuckDB's).
  view(
    'metrics_tasks_daily',
    ['day', 'workspace_id', 'tasks_created', 'tasks_completed'],
    `WITH created AS (SELECT day, workspace_id, COUNT(*) AS n FROM raw_events WHERE tbl = 'tasks' AND op = 'c' GROUP BY day, workspace_id),
    completed AS (
      SELECT valid_from::DATE AS day, "workspace_id" AS workspace_id, COUNT(*) AS n FROM (
        SELECT "workspace_id", valid_from, "status", LAG(event_id) OVER (PARTITION BY id ORDER BY event_id) AS prev_id, LAG("status") OVER (PARTITION BY id ORDER BY event_id) AS prev_status
        FROM tasks_history)
      WHERE "status" = 'done' AND prev_id IS NOT NULL AND prev_status IS DISTINCT FROM 'done' GROUP BY 1, 2)
    SELECT COALESCE(c.day, d.day), COALESCE(c.workspace_id, d.workspace_id), COALESCE(c.n, 0), COALESCE(d.n, 0)
    FROM created c FULL OUTER JOIN completed d ON c.day = d.day AND c.workspace_id = d.workspace_id`,
  ),
  view(
    'metrics_comment_activity',
    ['day', 'workspace_id', 'project_id', 'comments_created', 'comments_edited', 'authors'],
    `SELECT day, workspace_id, project_id, COUNT_IF(op = 'c'), COUNT_IF(op = 'u'), COUNT(DISTINCT event:data.after.author_id::STRING)
    FROM raw_events WHERE tbl = 'comments' GROUP BY day, workspace_id, project_id`,
  ),
  view(
    'metrics_time_in_status',
    ['workspace_id', 'status', 'versions', 'seconds'],
    `SELECT "workspace_id", "status", COUNT(*), SUM(DATEDIFF(millisecond, valid_from, COALESCE(valid_to, CURRENT_TIMESTAMP())) / 1000)
    FROM tasks_history GROUP BY "workspace_id", "status"`,
  ),
];

/** The history views, then the metrics views that read them. */
export function snowflakeViews(): string[] {
  return [...CURATED.filter((e) => HISTORY_TABLES.includes(e.table)).map(historyView), ...METRICS];
}
