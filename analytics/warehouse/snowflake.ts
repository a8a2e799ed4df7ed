// The production warehouse: Snowflake behind the same Warehouse port, through snowflake-sdk. In
// production the change stream reaches `raw_events` by Firehose's Snowflake destination
// (Snowpipe Streaming, seconds); this adapter loads archive objects from an external stage on the
// archive bucket (backfills, rebuilds) and runs the same curated MERGE (tables.ts, in Snowflake's
// dialect). No Snowflake can be reached from tests: the SQL is generated and unit-tested, and the
// adapter runs against the SnowflakeSession port.
//
// Snowflake specifics the SQL honours: DDL commits the open transaction, so the staging table is
// created once per session before any load, never inside one; GREATEST is NULL when any argument
// is, so the per-column guard compares COALESCEd ids; MAX_BY ignores NULL ordering values.
import { TaskflowError } from '../../lib/errors.js';
import type { SubjectIdentifiers } from '../../lib/erasure.js';
import type { ArchiveObject, LoadResult, Warehouse } from './duckdb.js';
import { type ErasableWarehouse, type ErasureSqlPort, eraseInWarehouse, scanWarehouse, type WarehouseSink } from './erasure.js';
import { SNOWFLAKE, SNOWFLAKE_TYPES, snowflakeViews, view } from './snowflake-views.js';
import { addedColumnsDdl, CURATED, lit, mergeSql, q, stateTable, v } from './tables.js';


export { SNOWFLAKE };

export interface SnowflakeSettings {
  /** External stage on the archive bucket (CREATE STAGE … URL = 's3://<bucket>/' STORAGE_INTEGRATION = …). */
  stage: string;
  /** File format: TYPE = JSON, COMPRESSION = GZIP. */
  fileFormat: string;
}

/** Tables and views of the Snowflake warehouse (snowflake-views.ts: history and metrics); `raw_events` clustered by day (retention drops whole days). */
export function snowflakeDdl(): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS load_log (object_key STRING PRIMARY KEY, loaded_at TIMESTAMP_TZ NOT NULL, events NUMBER NOT NULL, new_events NUMBER NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS raw_events (id STRING PRIMARY KEY, day DATE NOT NULL, time TIMESTAMP_TZ NOT NULL, type STRING NOT NULL, workspace_id STRING NOT NULL,
      project_id STRING, tbl STRING, op STRING, key_id STRING, event VARIANT NOT NULL, object_key STRING NOT NULL, loaded_at TIMESTAMP_TZ NOT NULL) CLUSTER BY (day)`,
    `CREATE TABLE IF NOT EXISTS truncations (tbl STRING NOT NULL, id STRING NOT NULL, PRIMARY KEY (tbl, id))`,
    ...CURATED.flatMap((e) => [
      `CREATE TABLE IF NOT EXISTS ${stateTable(e)} (id STRING PRIMARY KEY, ${e.columns.map((c) => `${q(c.name)} ${SNOWFLAKE_TYPES[c.type]}, ${v(c.name)} STRING`).join(', ')},
        _live_id STRING, _deleted_id STRING, _event_id STRING NOT NULL, _merged_at TIMESTAMP_TZ NOT NULL)`,
      ...addedColumnsDdl(e, (c) => SNOWFLAKE_TYPES[c.type]),
    ]),
    ...CURATED.map((e) =>
      view(
        e.table,
        ['id', ...e.columns.map((c) => q(c.name)), 'last_event_id'],
        `SELECT s.id, ${e.columns.map((c) => `IFF(s.${v(c.name)} > GREATEST(COALESCE(s._deleted_id, ''), tr.cut), s.${q(c.name)}, NULL)`).join(', ')}, s._event_id
      FROM ${stateTable(e)} s CROSS JOIN (SELECT COALESCE(MAX(id), '') AS cut FROM truncations WHERE tbl = ${lit(e.table)}) tr
      WHERE s._live_id > GREATEST(COALESCE(s._deleted_id, ''), tr.cut)`,
      ),
    ),
    ...snowflakeViews(),
  ];
}

/** Session setup before any load: the staging table (DDL, so outside every transaction). */
export const SNOWFLAKE_SESSION_SETUP = `CREATE TEMPORARY TABLE IF NOT EXISTS staged (id STRING, time TIMESTAMP_TZ, type STRING, workspace_id STRING, project_id STRING,
  tbl STRING, op STRING, key_id STRING, after VARIANT, omitted ARRAY, tables ARRAY, event VARIANT)`;

/** Stage paths cannot be bound: only keys of Firehose's character set are accepted. */
function stagePath(settings: SnowflakeSettings, key: string): string {
  if (!/^[A-Za-z0-9!_.*'()/=-]+$/.test(key) || key.includes("'")) throw new TaskflowError('WAREHOUSE_BAD_KEY', `object key ${key} cannot be named in a stage path`);
  return `@${settings.stage}/${key}`;
}

/** raw_events' rows (alias r) within the staged events' days and commit times. */
const STAGED_WINDOW = `r.day BETWEEN (SELECT MIN(time)::DATE FROM staged) AND (SELECT MAX(time)::DATE FROM staged)
          AND r.time BETWEEN (SELECT MIN(time) FROM staged) AND (SELECT MAX(time) FROM staged)`;

/** The statements of one object's load, in order, inside one transaction (after `BEGIN`). `?` binds the key. */
export function snowflakeLoadStatements(settings: SnowflakeSettings, key: string): { claim: string; rest: string[] } {
  return {
    // 0 rows inserted: the object is in the load log already.
    claim: `INSERT INTO load_log (object_key, loaded_at, events, new_events) SELECT ?, CURRENT_TIMESTAMP(), 0, 0 WHERE NOT EXISTS (SELECT 1 FROM load_log WHERE object_key = ?)`,
    rest: [
      `DELETE FROM staged`,
      `INSERT INTO staged SELECT id, time, type, workspace_id, project_id, tbl, op, key_id, after, omitted, tables, event FROM (
        SELECT $1:id::STRING AS id, $1:time::TIMESTAMP_TZ AS time, $1:type::STRING AS type, $1:workspaceid::STRING AS workspace_id,
          $1:projectid::STRING AS project_id, $1:data.table::STRING AS tbl, $1:data.op::STRING AS op, $1:data.key.id::STRING AS key_id,
          $1:data.after AS after, COALESCE($1:data.omitted::ARRAY, ARRAY_CONSTRUCT()) AS omitted, COALESCE($1:data.tables::ARRAY, ARRAY_CONSTRUCT()) AS tables, $1 AS event
        FROM ${stagePath(settings, key)} (FILE_FORMAT => ${lit(settings.fileFormat)})
      ) QUALIFY ROW_NUMBER() OVER (PARTITION BY id ORDER BY id) = 1`,
      // The dedup probes only the batch's days (the clustering key) and commit times, as DuckDB's
      // does (tables.ts stagedSql): a copy of an event carries its commit time.
      `INSERT INTO raw_events SELECT id, time::DATE, time, type, workspace_id, project_id, tbl, op, key_id, event, ?, CURRENT_TIMESTAMP() FROM staged s
        WHERE NOT EXISTS (SELECT 1 FROM raw_events r WHERE ${STAGED_WINDOW} AND r.id = s.id)`,
      `INSERT INTO truncations SELECT DISTINCT f.value::STRING, s.id FROM staged s, LATERAL FLATTEN(input => s.tables) f
        WHERE s.op = 't' AND NOT EXISTS (SELECT 1 FROM truncations x WHERE x.tbl = f.value::STRING AND x.id = s.id)`,
      ...CURATED.map((e) => mergeSql(e, SNOWFLAKE)),
      `UPDATE load_log SET events = (SELECT COUNT(*) FROM staged), new_events = (SELECT COUNT(*) FROM raw_events r WHERE ${STAGED_WINDOW} AND r.object_key = ?) WHERE object_key = ?`,
    ],
  };
}

/** The part of a snowflake-sdk connection the adapter needs (connectSnowflake builds it). */
export interface SnowflakeSession {
  execute(sqlText: string, binds?: readonly string[]): Promise<{ rows: Record<string, unknown>[]; rowsAffected: number }>;
  destroy(): Promise<void>;
}

/** Error codes of snowflake-sdk (lib/error_code.ts) and of the server that retrying can help. */
const RETRIABLE_DRIVER_CODES = new Set([401001, 401002, 401004, 402001, 402002]);
const RETRIABLE_SERVER_CODES = new Set(['000625', '000630', '390114', '000604']);

/** A driver or server error as the pipeline's error: `retriable` for network, expired sessions, timeouts and aborted statements. */
export function mapSnowflakeError(err: unknown, statement: string): TaskflowError {
  const e = err as { code?: number | string; sqlState?: string; message?: string; isFatal?: boolean };
  const code = e.code === undefined ? undefined : String(e.code);
  const numeric = typeof e.code === 'number' ? e.code : Number.NaN;
  const head = statement.replace(/\s+/g, ' ').slice(0, 80);
  if (RETRIABLE_DRIVER_CODES.has(numeric)) return new TaskflowError('WAREHOUSE_UNAVAILABLE', `Snowflake unreachable (${code}): ${e.message}`, { retriable: true, cause: err, details: { code, statement: head } });
  if (numeric >= 404000 && numeric < 405000) return new TaskflowError('WAREHOUSE_CONFIG', `Snowflake connection settings rejected (${code}): ${e.message}`, { cause: err, details: { code } });
  if (code !== undefined && RETRIABLE_SERVER_CODES.has(code.padStart(6, '0'))) {
    return new TaskflowError('WAREHOUSE_BUSY', `Snowflake statement failed transiently (${code}): ${e.message}`, { retriable: true, cause: err, details: { code, sqlState: e.sqlState, statement: head } });
  }
  return new TaskflowError('WAREHOUSE_SQL_ERROR', `Snowflake rejected "${head}…" (${code ?? '?'}, ${e.sqlState ?? '?'}): ${e.message}`, { cause: err, details: { code, sqlState: e.sqlState, statement: head } });
}

export class SnowflakeWarehouse implements Warehouse, ErasableWarehouse {
  private ready: Promise<void> | undefined;

  constructor(
    private readonly session: SnowflakeSession,
    private readonly settings: SnowflakeSettings,
  ) {}

  private async run(sql: string, binds?: readonly string[]): Promise<{ rows: Record<string, unknown>[]; rowsAffected: number }> {
    try {
      return await this.session.execute(sql, binds);
    } catch (err) {
      throw mapSnowflakeError(err, sql);
    }
  }

  private setUp(): Promise<void> {
    this.ready ??= (async () => {
      for (const ddl of snowflakeDdl()) await this.run(ddl);
      await this.run(SNOWFLAKE_SESSION_SETUP);
    })();
    return this.ready;
  }

  async loadedKeys(): Promise<Set<string>> {
    await this.setUp();
    return new Set((await this.run('SELECT object_key FROM load_log')).rows.map((r) => String(r.OBJECT_KEY ?? r.object_key)));
  }

  /** One transaction per object (the stage is read by key; the bytes are not needed). */
  async loadObjects(objects: readonly ArchiveObject[]): Promise<Map<string, LoadResult>> {
    const loaded = new Map<string, LoadResult>();
    for (const o of objects) {
      const result = await this.loadOne(o.key);
      if (result !== 'already-loaded') loaded.set(o.key, result);
    }
    return loaded;
  }

  private async loadOne(key: string): Promise<LoadResult | 'already-loaded'> {
    await this.setUp();
    const { claim, rest } = snowflakeLoadStatements(this.settings, key);
    await this.run('BEGIN');
    try {
      if ((await this.run(claim, [key, key])).rowsAffected === 0) {
        await this.run('ROLLBACK');
        return 'already-loaded';
      }
      for (const sql of rest) {
        const binds = (sql.match(/\?/g) ?? []).map(() => key);
        await this.run(sql, binds);
      }
      const [row] = (await this.run(`SELECT events, new_events, (SELECT DATE_PART(epoch_millisecond, MAX(time)) FROM staged) AS newest_ms FROM load_log WHERE object_key = ?`, [key])).rows;
      await this.run('COMMIT');
      const newest = row?.NEWEST_MS;
      return { events: Number(row?.EVENTS ?? 0), newEvents: Number(row?.NEW_EVENTS ?? 0), newestEventMs: newest === null || newest === undefined ? null : Number(newest) };
    } catch (err) {
      await this.session.execute('ROLLBACK').catch(() => {});
      throw err;
    }
  }

  async newestEventTime(): Promise<number | undefined> {
    await this.setUp();
    const [row] = (await this.run('SELECT DATE_PART(epoch_millisecond, MAX(time)) AS newest_ms FROM raw_events')).rows;
    const newest = row?.NEWEST_MS;
    return newest === null || newest === undefined ? undefined : Number(newest);
  }

  async dropDaysBefore(day: string): Promise<number> {
    await this.setUp();
    return (await this.run('DELETE FROM raw_events WHERE day < TO_DATE(?)', [day])).rowsAffected;
  }

  async query(sql: string): Promise<Record<string, unknown>[]> {
    return (await this.run(sql)).rows;
  }

  /** Erasure (erasure.ts, `:n` binds); the session's `staged` copy of the last load is emptied with the raw rows' values. */
  async erase(sink: WarehouseSink, ids: SubjectIdentifiers): Promise<{ changed: number }> {
    await this.setUp();
    if (sink === 'warehouse-raw') await this.run('DELETE FROM staged');
    return eraseInWarehouse(this.erasurePort, sink, ids);
  }

  async holding(sink: WarehouseSink, ids: SubjectIdentifiers): Promise<{ scanned: number; found: number }> {
    await this.setUp();
    return scanWarehouse(this.erasurePort, sink, ids);
  }

  private readonly erasurePort: ErasureSqlPort = {
    dialect: 'snowflake',
    select: async (sql, binds) => (await this.run(sql, binds)).rows,
    exec: async (sql, binds) => (await this.run(sql, binds)).rowsAffected,
  };

  close(): Promise<void> {
    return this.session.destroy();
  }
}

/**
 * A snowflake-sdk connection as a SnowflakeSession. Production only: it connects on call (the
 * driver retries a missing server for minutes), so no test calls it.
 */
export async function connectSnowflake(options: { account: string; username: string; password?: string; privateKey?: string; database: string; schema: string; warehouse: string; role?: string }): Promise<SnowflakeSession> {
  const snowflake = (await import('snowflake-sdk')).default;
  const connection = snowflake.createConnection({ ...options, ...(options.privateKey ? { authenticator: 'SNOWFLAKE_JWT' } : {}) });
  await connection.connectAsync();
  return {
    execute: (sqlText, binds) =>
      new Promise((resolve, reject) => {
        connection.execute({
          sqlText,
          ...(binds ? { binds: [...binds] } : {}),
          complete: (err, stmt, rows) => (err ? reject(err) : resolve({ rows: (rows ?? []) as Record<string, unknown>[], rowsAffected: stmt.getNumUpdatedRows() ?? 0 })),
        });
      }),
    destroy: () => new Promise((resolve) => connection.destroy(() => resolve())),
  };
}
