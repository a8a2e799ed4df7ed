// The warehouse's tables and the SQL that fills them, generated from one description of the
// curated entities so the schema and the MERGE cannot drift apart (DuckDB dialect; the same
// MERGE runs on Snowflake through the dialect of snowflake.ts, whose DDL and load statements sit there).
//
// Curated current state is a per-column last-writer-wins register keyed by event id: every
// column keeps the id of the event that last set it (`_v_<column>`), the row keeps the highest
// live (create/update/snapshot) and delete ids. A MERGE takes, per key and column, the value of
// the batch's newest event that carries that column (an update's `omitted` — unchanged TOASTed —
// columns carry nothing, so they are never overwritten with NULL) and applies it only where it
// is newer than the target's (`s._v_c > t._v_c`: the guard, per column). Merging is therefore
// commutative and idempotent: late, replayed or duplicated events change nothing they should
// not, and the result equals applying every event once in id order (analytics/warehouse/curated.property.test.ts).
// A row is live when its newest event is not a delete (nor older than a truncate of its table);
// columns set before the row's last delete read as NULL.

export interface CuratedColumn {
  name: string;
  /** DuckDB type the JSON value is cast to. */
  type: 'VARCHAR' | 'INTEGER' | 'DOUBLE' | 'BOOLEAN' | 'TIMESTAMPTZ' | 'DATE' | 'VARCHAR[]';
  /**
   * The value from a row image of any schema version (the upcast in SQL: the loader reads the
   * archive's v1 and v2 events as they were written). `get(field, type)` reads one field of the
   * image. Without it the column is the field of its name.
   */
  derive?: (get: (field: string, type: CuratedColumn['type']) => string, d: SqlDialect) => string;
  /** Added after the warehouse's first release: existing state tables gain it by ALTER TABLE. */
  added?: boolean;
}

export interface CuratedEntity {
  /** Source table = curated view name. */
  table: 'tasks' | 'comments' | 'projects' | 'memberships';
  /** Row-image columns besides `id` (the key). */
  columns: readonly CuratedColumn[];
}

const col = (name: string, type: CuratedColumn['type'] = 'VARCHAR', more: Pick<CuratedColumn, 'derive' | 'added'> = {}): CuratedColumn => ({ name, type, ...more });

/** The column's value in a row image, upcast when the column says how. */
export const columnValue = (c: CuratedColumn, get: (field: string, type: CuratedColumn['type']) => string, d: SqlDialect): string =>
  c.derive ? c.derive(get, d) : get(c.name, c.type);

export const CURATED: readonly CuratedEntity[] = [
  {
    table: 'tasks',
    columns: [
      col('workspace_id'), col('project_id'), col('title'), col('description'), col('status'), col('priority', 'INTEGER'), col('assignee_id'),
      // task v2 (migration 0006): due_at replaces due_date, labels are new. Both due columns are
      // kept for every version, each from the other when an event has only one (schemas/upcasters.ts:
      // a date d is d 00:00 UTC; a timestamp's date is its UTC date); a v1 row has labels [].
      col('due_date', 'DATE', { derive: (get, d) => `coalesce(${get('due_date', 'DATE')}, ${d.utcDate(get('due_at', 'TIMESTAMPTZ'))})` }),
      col('position', 'DOUBLE'), col('created_by'), col('created_at', 'TIMESTAMPTZ'), col('updated_at', 'TIMESTAMPTZ'),
      col('due_at', 'TIMESTAMPTZ', { added: true, derive: (get, d) => `coalesce(${get('due_at', 'TIMESTAMPTZ')}, ${d.utcMidnight(get('due_date', 'DATE'))})` }),
      col('labels', 'VARCHAR[]', { added: true, derive: (get, d) => `coalesce(${get('labels', 'VARCHAR[]')}, ${d.emptyList})` }),
    ],
  },
  {
    table: 'comments',
    columns: [
      col('workspace_id'), col('project_id'), col('task_id'), col('author_id'), col('body'), col('created_at', 'TIMESTAMPTZ'), col('updated_at', 'TIMESTAMPTZ'),
      col('edited_at', 'TIMESTAMPTZ', { added: true }),
    ],
  },
  {
    table: 'projects',
    columns: [col('workspace_id'), col('name'), col('description'), col('archived', 'BOOLEAN'), col('created_by'), col('created_at', 'TIMESTAMPTZ'), col('updated_at', 'TIMESTAMPTZ')],
  },
  { table: 'memberships', columns: [col('workspace_id'), col('user_id'), col('project_id'), col('role'), col('created_at', 'TIMESTAMPTZ')] },
];

export const q = (name: string): string => `"${name.replace(/"/g, '""')}"`;
export const lit = (s: string): string => `'${s.replace(/'/g, "''")}'`;
export const v = (c: string): string => q(`_v_${c}`);
export const stateTable = (e: CuratedEntity): string => `${e.table}_state`;

export function schemaDdl(): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS load_log (object_key VARCHAR PRIMARY KEY, loaded_at TIMESTAMPTZ NOT NULL, events INTEGER NOT NULL, new_events INTEGER NOT NULL)`,
    // `day` is the partition column (Snowflake: CLUSTER BY (day)); retention drops whole days.
    `CREATE TABLE IF NOT EXISTS raw_events (id VARCHAR NOT NULL, day DATE NOT NULL, time TIMESTAMPTZ NOT NULL, type VARCHAR NOT NULL, workspace_id VARCHAR NOT NULL,
      project_id VARCHAR, tbl VARCHAR, op VARCHAR, key_id VARCHAR, event JSON NOT NULL, object_key VARCHAR NOT NULL, loaded_at TIMESTAMPTZ NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS truncations (tbl VARCHAR NOT NULL, id VARCHAR NOT NULL, PRIMARY KEY (tbl, id))`,
    ...CURATED.flatMap((e) => [
      `CREATE TABLE IF NOT EXISTS ${stateTable(e)} (id VARCHAR PRIMARY KEY, ${e.columns.map((c) => `${q(c.name)} ${c.type}, ${v(c.name)} VARCHAR`).join(', ')},
        _live_id VARCHAR, _deleted_id VARCHAR, _event_id VARCHAR NOT NULL, _merged_at TIMESTAMPTZ NOT NULL)`,
      ...addedColumnsDdl(e, (c) => c.type),
      currentView(e),
    ]),
    ...CURATED.filter((e) => HISTORY_TABLES.includes(e.table)).map(historyView),
    ...METRICS_VIEWS,
  ];
}

/**
 * A state table created before a column was added gains it (and its guard); its rows read NULL
 * there until `taskflow analytics rebuild` re-merges the raw events, which upcasts them.
 */
export function addedColumnsDdl(e: CuratedEntity, typeOf: (c: CuratedColumn) => string): string[] {
  return e.columns
    .filter((c) => c.added)
    .flatMap((c) => [`ALTER TABLE ${stateTable(e)} ADD COLUMN IF NOT EXISTS ${q(c.name)} ${typeOf(c)}`, `ALTER TABLE ${stateTable(e)} ADD COLUMN IF NOT EXISTS ${v(c.name)} VARCHAR`]);
}

/** Entities with a version history (one row per version, valid_from/valid_to). */
export const HISTORY_TABLES: readonly CuratedEntity['table'][] = ['tasks', 'projects'];

/**
 * `<table>_history`: one row per version of each row, from raw_events in id order, so it is right
 * whatever order the events arrived in. valid_from is the version's commit time, valid_to the next
 * version's (or the delete's), NULL for the current one. A column an update omitted keeps the
 * previous version's value: each column is the last value carried by an event up to this one.
 */
function historyView(e: CuratedEntity): string {
  const get = (field: string, type: CuratedColumn['type']) =>
    type === 'VARCHAR[]' ? `CAST(json_extract(after, ${lit(`$.${field}`)}) AS VARCHAR[])` : `CAST(json_extract_string(after, ${lit(`$.${field}`)}) AS ${type})`;
  const carried = (c: CuratedColumn) =>
    `last_value(CASE WHEN op <> 'd' AND NOT list_contains(omitted, ${lit(c.name)}) THEN struct_pack(v := ${columnValue(c, get, DUCKDB)}) END IGNORE NULLS)
      OVER (PARTITION BY id ORDER BY event_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS ${q(c.name)}`;
  return `CREATE OR REPLACE VIEW ${e.table}_history AS
    WITH ev AS (
      SELECT key_id AS id, id AS event_id, op, time, json_extract(event, '$.data.after') AS after,
        coalesce(CAST(json_extract(event, '$.data.omitted') AS VARCHAR[]), []) AS omitted
      FROM raw_events WHERE tbl = ${lit(e.table)} AND op IN ('c', 'u', 'r', 'd') AND key_id IS NOT NULL),
    versions AS (
      SELECT id, event_id, op, time AS valid_from, lead(time) OVER (PARTITION BY id ORDER BY event_id) AS valid_to, ${e.columns.map(carried).join(',\n        ')}
      FROM ev)
    SELECT id, event_id, valid_from, valid_to, ${e.columns.map((c) => `${q(c.name)}.v AS ${q(c.name)}`).join(', ')} FROM versions WHERE op <> 'd'`;
}

/** Product metrics, computed from raw_events and the history (views: always current). */
export const METRICS_VIEWS: readonly string[] = [
  // Completed: a version whose status is done after one whose status was not. Not data.changed,
  // which lists every column unless changed-column capture is opted in (an upper bound): any
  // edit of a done task would count again.
  `CREATE OR REPLACE VIEW metrics_tasks_daily AS
    WITH created AS (SELECT day, workspace_id, count(*) AS n FROM raw_events WHERE tbl = 'tasks' AND op = 'c' GROUP BY day, workspace_id),
    completed AS (
      SELECT CAST(valid_from AS DATE) AS day, workspace_id, count(*) AS n FROM (
        SELECT workspace_id, valid_from, status, lag(event_id) OVER w AS prev_id, lag(status) OVER w AS prev_status
        FROM tasks_history WINDOW w AS (PARTITION BY id ORDER BY event_id))
      WHERE status = 'done' AND prev_id IS NOT NULL AND prev_status IS DISTINCT FROM 'done' GROUP BY 1, 2)
    SELECT coalesce(c.day, d.day) AS day, coalesce(c.workspace_id, d.workspace_id) AS workspace_id, coalesce(c.n, 0) AS tasks_created, coalesce(d.n, 0) AS tasks_completed
    FROM created c FULL OUTER JOIN completed d ON c.day = d.day AND c.workspace_id = d.workspace_id`,
  `CREATE OR REPLACE VIEW metrics_comment_activity AS
    SELECT day, workspace_id, project_id, count(*) FILTER (WHERE op = 'c') AS comments_created, count(*) FILTER (WHERE op = 'u') AS comments_edited,
      count(DISTINCT json_extract_string(event, '$.data.after.author_id')) AS authors
    FROM raw_events WHERE tbl = 'comments' GROUP BY day, workspace_id, project_id`,
  `CREATE OR REPLACE VIEW metrics_time_in_status AS
    SELECT workspace_id, status, count(*) AS versions, sum(epoch(coalesce(valid_to, now()) - valid_from)) AS seconds
    FROM tasks_history GROUP BY workspace_id, status`,
];

function currentView(e: CuratedEntity): string {
  const cut = `greatest(coalesce(s._deleted_id, ''), tr.cut)`;
  return `CREATE OR REPLACE VIEW ${e.table} AS SELECT s.id, ${e.columns.map((c) => `CASE WHEN s.${v(c.name)} > ${cut} THEN s.${q(c.name)} END AS ${q(c.name)}`).join(', ')}, s._event_id AS last_event_id
    FROM ${stateTable(e)} s CROSS JOIN (SELECT coalesce(max(id), '') AS cut FROM truncations WHERE tbl = ${lit(e.table)}) tr
    WHERE s._live_id > ${cut}`;
}

/** Every row-image column of the curated entities, with its type (a column shared by entities has one type). */
function rowImageColumns(): CuratedColumn[] {
  const columns = new Map<string, CuratedColumn>([['id', col('id')]]);
  for (const c of CURATED.flatMap((e) => e.columns)) {
    const seen = columns.get(c.name);
    if (seen && seen.type !== c.type) throw new Error(`column ${c.name} has two types (${seen.type}, ${c.type})`);
    columns.set(c.name, c);
  }
  return [...columns.values()];
}

/**
 * The envelope fields the warehouse reads, as a json_transform structure: each line is parsed
 * once into typed columns (the row image a STRUCT of every curated column), not once per field
 * extracted. A value of the wrong type becomes NULL instead of failing the load (the archiver
 * validated every event; keys_not_null and accepted_values would name such rows).
 */
const ENVELOPE_SHAPE = JSON.stringify({
  id: 'VARCHAR', time: 'TIMESTAMPTZ', type: 'VARCHAR', workspaceid: 'VARCHAR', projectid: 'VARCHAR',
  data: { op: 'VARCHAR', table: 'VARCHAR', key: { id: 'VARCHAR' }, after: Object.fromEntries(rowImageColumns().map((c) => [c.name, c.type])), omitted: 'VARCHAR[]', tables: 'VARCHAR[]' },
});

/** A batch's lines from archive files (GZIP NDJSON), each with its object's key: the stageLinesSql source. */
export function filesSource(files: ReadonlyArray<{ path: string; key: string }>): string {
  const keyOf = `CASE filename ${files.map((f) => `WHEN ${lit(f.path)} THEN ${lit(f.key)}`).join(' ')} END`;
  return `SELECT json, ${keyOf} AS object_key FROM read_json_objects([${files.map((f) => lit(f.path)).join(', ')}], format = 'newline_delimited', compression = 'gzip', filename = true)`;
}

/** The events the warehouse keeps as the stageLinesSql source (a rebuild merges them again). */
export const RAW_EVENTS_SOURCE = 'SELECT event AS json, object_key FROM raw_events';

/**
 * `staged_lines`: every line of the batch's objects with its object key (columns id, time, type,
 * workspace_id, project_id, tbl, op, key_id, after (a STRUCT of the row image's typed columns),
 * omitted (VARCHAR[]), tables (VARCHAR[]), event (JSON), object_key). `source`: a relation of
 * (json, object_key), as filesSource and RAW_EVENTS_SOURCE make.
 */
export function stageLinesSql(source: string): string {
  return `CREATE OR REPLACE TEMP TABLE staged_lines AS
      SELECT e.id, e.time, e.type, e.workspaceid AS workspace_id, e.projectid AS project_id, e.data.table AS tbl, e.data.op AS op, e.data.key.id AS key_id,
        e.data.after AS after, coalesce(e.data.omitted, []) AS omitted, coalesce(e.data.tables, []) AS tables, event, object_key
      FROM (SELECT json_transform(json, ${lit(ENVELOPE_SHAPE)}) AS e, json AS event, object_key FROM (${source}))`;
}

/** The commit-time window of the staged lines (µs since the epoch; NULLs when none has a time): stagedSql's `window`. */
export const STAGED_WINDOW_SQL = 'SELECT epoch_us(min(time)) AS lo, epoch_us(max(time)) AS hi FROM staged_lines';

/**
 * `staged`: the first copy of each id of staged_lines (by object key), with `fresh`: raw_events
 * does not have it yet. The dedup probes only raw_events' rows within the batch's commit-time
 * `window` (constants, so DuckDB's zone maps skip every other row group; raw_events is appended
 * in about commit order): an event's id fixes its commit time (both are its WAL commit record's;
 * a resend or replay carries the envelope verbatim), so a copy lies in the window of its batch
 * and a load's cost does not grow with the history (bench:loader-core). DQ's event_id_unique
 * would name a copy that broke this. Without a window (no line has a time) no row matches.
 */
export function stagedSql(window: { lo: bigint; hi: bigint } | null): string {
  const inWindow = window ? `r.time BETWEEN make_timestamptz(${window.lo}) AND make_timestamptz(${window.hi})` : 'false';
  // rowid keeps the wide rows out of a sort.
  return `CREATE OR REPLACE TEMP TABLE staged AS
      SELECT l.*, NOT EXISTS (SELECT 1 FROM raw_events r WHERE ${inWindow} AND r.id = l.id) AS fresh FROM staged_lines l
      WHERE l.rowid IN (SELECT arg_min(rowid, object_key) FROM staged_lines GROUP BY id)`;
}

export function insertRawSql(): string {
  return `INSERT INTO raw_events SELECT id, CAST(time AS DATE), time, type, workspace_id, project_id, tbl, op, key_id, event, object_key, now() FROM staged WHERE fresh`;
}

/** The curated tables the batch touches: the others' MERGEs would change nothing. */
export const STAGED_TABLES_SQL = `SELECT DISTINCT tbl FROM staged WHERE op IN ('c', 'u', 'r', 'd')`;

/** Each object's event count and how many of its events were new (raw_events keeps the object that brought an id first). */
export function loadLogCountsSql(keys: readonly string[]): string {
  const list = keys.map(lit).join(', ');
  return `UPDATE load_log SET events = (SELECT count(*) FROM staged_lines l WHERE l.object_key = load_log.object_key),
      new_events = (SELECT count(*) FROM staged s WHERE s.fresh AND s.object_key = load_log.object_key)
    WHERE object_key IN (${list})`;
}

export function insertTruncationsSql(): string {
  return `INSERT OR IGNORE INTO truncations SELECT DISTINCT unnest(tables) AS tbl, id FROM staged WHERE op = 't'`;
}

/** What differs between the warehouses in the MERGE: the rest of the statement is shared. */
export interface SqlDialect {
  name: 'duckdb' | 'snowflake';
  /** The typed value of column `field` of the staged row image `after` (DuckDB: a typed STRUCT; Snowflake: a VARIANT). */
  rowValue(after: string, field: string, type: CuratedColumn['type']): string;
  /** The list/array `list` holds the string `value`. */
  contains(list: string, value: string): string;
  /** Largest `of` over the rows where `where` holds. */
  maxWhere(of: string, where: string): string;
  /** `value` at the row with the largest `by` among the rows where `where` holds, NULL values included. */
  argMaxWhere(value: string, by: string, where: string): string;
  /** The larger of two ids, NULL only when both are. */
  greatest(a: string, b: string): string;
  /** A DATE as the TIMESTAMPTZ of its 00:00 UTC. */
  utcMidnight(date: string): string;
  /** A TIMESTAMPTZ's date in UTC. */
  utcDate(timestamp: string): string;
  /** An empty list of strings. */
  emptyList: string;
}

export const DUCKDB: SqlDialect = {
  name: 'duckdb',
  rowValue: (after, field) => `${after}.${q(field)}`,
  contains: (list, value) => `list_contains(${list}, ${lit(value)})`,
  maxWhere: (of, where) => `max(${of}) FILTER (WHERE ${where})`,
  argMaxWhere: (value, by, where) => `arg_max_null(${value}, ${by}) FILTER (WHERE ${where})`,
  greatest: (a, b) => `greatest(${a}, ${b})`,
  utcMidnight: (date) => `timezone('UTC', CAST(${date} AS TIMESTAMP))`,
  utcDate: (timestamp) => `CAST(timezone('UTC', ${timestamp}) AS DATE)`,
  emptyList: 'CAST([] AS VARCHAR[])',
};

/** The batch's per-key, per-column newest values, merged into the state under the per-column guard. */
export function mergeSql(e: CuratedEntity, d: SqlDialect = DUCKDB): string {
  const carries = (c: string) => `op <> 'd' AND NOT ${d.contains('omitted', c)}`;
  const source = `SELECT key_id, max(id) AS event_id, ${d.maxWhere('id', "op <> 'd'")} AS live_id, ${d.maxWhere('id', "op = 'd'")} AS deleted_id,
      ${e.columns.map((c) => `${d.maxWhere('id', carries(c.name))} AS ${v(c.name)}, ${d.argMaxWhere(columnValue(c, (f, t) => d.rowValue('after', f, t), d), 'id', carries(c.name))} AS ${q(c.name)}`).join(',\n      ')}
    FROM staged WHERE tbl = ${lit(e.table)} AND op IN ('c', 'u', 'r', 'd') AND key_id IS NOT NULL GROUP BY key_id`;
  const newer = (c: string) => `s.${v(c)} > coalesce(t.${v(c)}, '')`;
  return `MERGE INTO ${stateTable(e)} t USING (${source}) s ON t.id = s.key_id
    WHEN MATCHED THEN UPDATE SET
      ${e.columns.map((c) => `${q(c.name)} = CASE WHEN ${newer(c.name)} THEN s.${q(c.name)} ELSE t.${q(c.name)} END, ${v(c.name)} = ${d.greatest(`t.${v(c.name)}`, `s.${v(c.name)}`)}`).join(',\n      ')},
      _live_id = ${d.greatest('t._live_id', 's.live_id')}, _deleted_id = ${d.greatest('t._deleted_id', 's.deleted_id')}, _event_id = ${d.greatest('t._event_id', 's.event_id')}, _merged_at = current_timestamp
    WHEN NOT MATCHED THEN INSERT (id, ${e.columns.map((c) => `${q(c.name)}, ${v(c.name)}`).join(', ')}, _live_id, _deleted_id, _event_id, _merged_at)
      VALUES (s.key_id, ${e.columns.map((c) => `s.${q(c.name)}, s.${v(c.name)}`).join(', ')}, s.live_id, s.deleted_id, s.event_id, current_timestamp)`;
}
