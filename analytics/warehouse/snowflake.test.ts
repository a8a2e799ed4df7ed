// The Snowflake adapter without a Snowflake: its generated SQL, its error mapping, and its load
// transaction against a recording SnowflakeSession (no test ever reaches a server).
import { describe, expect, it } from '@jest/globals';
import { mapSnowflakeError, SNOWFLAKE, SNOWFLAKE_SESSION_SETUP, type SnowflakeSession, SnowflakeWarehouse, snowflakeDdl, snowflakeLoadStatements } from './snowflake.js';
import { CURATED, mergeSql } from './tables.js';

const settings = { stage: 'taskflow_archive', fileFormat: 'taskflow_ndjson_gzip' };
const tasks = CURATED.find((e) => e.table === 'tasks')!;

describe('Snowflake SQL', () => {
  it('merges in Snowflake spelling with the NULL-safe per-column guard', () => {
    const sql = mergeSql(tasks, SNOWFLAKE);
    expect(sql).toContain(`MAX_BY(IFF(op <> 'd' AND NOT ARRAY_CONTAINS('description'::VARIANT, omitted), after:"description"::STRING, NULL), IFF(op <> 'd' AND NOT ARRAY_CONTAINS('description'::VARIANT, omitted), id, NULL))`);
    expect(sql).toContain(`"description" = CASE WHEN s."_v_description" > coalesce(t."_v_description", '') THEN s."description" ELSE t."description" END`);
    expect(sql).toContain(`"_v_description" = NULLIF(GREATEST(COALESCE(t."_v_description", ''), COALESCE(s."_v_description", '')), '')`);
    expect(sql).toContain('after:"priority"::NUMBER(38, 0)');
    expect(sql).not.toMatch(/FILTER \(WHERE|arg_max|list_contains/);
  });

  it('declares raw_events clustered by day and keeps DDL out of the load transaction', () => {
    expect(snowflakeDdl().find((d) => d.includes('raw_events'))).toMatch(/CLUSTER BY \(day\)$/);
    const { claim, rest } = snowflakeLoadStatements(settings, 'raw/2026/01/02/03/s-1-2026-01-02-03-04-05-abc.gz');
    for (const sql of [claim, ...rest]) expect(sql).not.toMatch(/^\s*(CREATE|ALTER|DROP)\b/);
    expect(SNOWFLAKE_SESSION_SETUP).toMatch(/^CREATE TEMPORARY TABLE IF NOT EXISTS staged/);
    expect(rest.join('\n')).toContain("FROM @taskflow_archive/raw/2026/01/02/03/s-1-2026-01-02-03-04-05-abc.gz (FILE_FORMAT => 'taskflow_ndjson_gzip')");
    expect(() => snowflakeLoadStatements(settings, "raw/x'; DROP TABLE raw_events; --")).toThrow(/cannot be named/);
  });
});

describe('mapSnowflakeError', () => {
  it('makes network failures, expired sessions and timeouts retriable, and the rest not', () => {
    expect(mapSnowflakeError({ code: 401001, message: 'could not connect' }, 'SELECT 1')).toMatchObject({ code: 'WAREHOUSE_UNAVAILABLE', retriable: true });
    expect(mapSnowflakeError({ code: '390114', message: 'Authentication token has expired' }, 'SELECT 1')).toMatchObject({ code: 'WAREHOUSE_BUSY', retriable: true });
    expect(mapSnowflakeError({ code: '625', sqlState: '57014', message: 'timeout' }, 'SELECT 1')).toMatchObject({ retriable: true });
    expect(mapSnowflakeError({ code: 404008, message: 'invalid account' }, 'SELECT 1')).toMatchObject({ code: 'WAREHOUSE_CONFIG', retriable: false });
    const sql = mapSnowflakeError({ code: '002003', sqlState: '42S02', message: "Object 'RAW_EVENTS' does not exist" }, 'INSERT INTO raw_events SELECT 1');
    expect(sql).toMatchObject({ code: 'WAREHOUSE_SQL_ERROR', retriable: false });
    expect(sql.message).toContain('INSERT INTO raw_events');
  });
});

/** Answers like Snowflake would; `fail` makes the statement matching it throw a driver error. */
function recordingSession(options: { loaded?: boolean; fail?: RegExp } = {}): SnowflakeSession & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    execute(sql) {
      log.push(sql.trim().split(/\s+/).slice(0, 3).join(' '));
      if (options.fail?.test(sql)) return Promise.reject(Object.assign(new Error('Network error'), { code: 401001 }));
      if (sql.startsWith('INSERT INTO load_log')) return Promise.resolve({ rows: [], rowsAffected: options.loaded ? 0 : 1 });
      if (sql.startsWith('SELECT events')) return Promise.resolve({ rows: [{ EVENTS: 3, NEW_EVENTS: 2, NEWEST_MS: 1_764_000_000_000 }], rowsAffected: 0 });
      return Promise.resolve({ rows: [], rowsAffected: 0 });
    },
    destroy: () => Promise.resolve(),
  };
}

describe('SnowflakeWarehouse', () => {
  it('loads an object in one transaction after the session setup', async () => {
    const session = recordingSession();
    const w = new SnowflakeWarehouse(session, settings);
    expect(await w.loadObjects([{ key: 'raw/a.gz', body: new Uint8Array() }])).toEqual(new Map([['raw/a.gz', { events: 3, newEvents: 2, newestEventMs: 1_764_000_000_000 }]]));
    const begin = session.log.indexOf('BEGIN');
    expect(session.log.slice(0, begin).every((s) => s.startsWith('CREATE') || s.startsWith('ALTER TABLE'))).toBe(true);
    expect(session.log.slice(begin)).toEqual([
      'BEGIN',
      'INSERT INTO load_log',
      'DELETE FROM staged',
      'INSERT INTO staged',
      'INSERT INTO raw_events',
      'INSERT INTO truncations',
      ...CURATED.map((e) => `MERGE INTO ${e.table}_state`),
      'UPDATE load_log SET',
      'SELECT events, new_events,',
      'COMMIT',
    ]);
  });

  it("probes raw_events only within the staged events' days and commit times", () => {
    const { rest } = snowflakeLoadStatements(settings, 'raw/a.gz');
    const window = /r\.day BETWEEN \(SELECT MIN\(time\)::DATE FROM staged\) AND \(SELECT MAX\(time\)::DATE FROM staged\)\s+AND r\.time BETWEEN \(SELECT MIN\(time\) FROM staged\) AND \(SELECT MAX\(time\) FROM staged\)/;
    expect(rest.find((s) => s.startsWith('INSERT INTO raw_events'))).toMatch(window);
    expect(rest.find((s) => s.startsWith('UPDATE load_log'))).toMatch(window);
  });

  it('rolls back an object already in the load log, and on a failure mid-way (mapped, retriable)', async () => {
    const loaded = recordingSession({ loaded: true });
    expect(await new SnowflakeWarehouse(loaded, settings).loadObjects([{ key: 'raw/a.gz', body: new Uint8Array() }])).toEqual(new Map());
    expect(loaded.log.slice(-2)).toEqual(['INSERT INTO load_log', 'ROLLBACK']);
    const failing = recordingSession({ fail: /^MERGE INTO comments_state/ });
    await expect(new SnowflakeWarehouse(failing, settings).loadObjects([{ key: 'raw/a.gz', body: new Uint8Array() }])).rejects.toMatchObject({ code: 'WAREHOUSE_UNAVAILABLE', retriable: true });
    expect(failing.log.at(-1)).toBe('ROLLBACK');
    expect(failing.log).not.toContain('COMMIT');
  });
});
