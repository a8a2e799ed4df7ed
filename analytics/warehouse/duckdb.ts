// The Warehouse port and its DuckDB adapter (the local stand-in for Snowflake). One object of the
// raw archive is loaded in ONE transaction: its load-log row, its new raw events and the MERGE of
// the curated tables commit together or not at all, so a crash anywhere between fetching the
// object and committing leaves no trace and the object is simply loaded again — never lost, never
// doubled. DuckDB allows one writing process per database file.
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { writeFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CURATED, insertRawSql, insertTruncationsSql, mergeSql, schemaDdl, stageSql } from './tables.js';

export interface LoadResult {
  events: number;
  newEvents: number;
}

export interface Warehouse {
  /** Keys of every object loaded so far (the load log). */
  loadedKeys(): Promise<Set<string>>;
  /** Loads one archive object (GZIP NDJSON) atomically; an object already in the load log is a no-op. */
  loadObject(key: string, gzipNdjson: Uint8Array): Promise<LoadResult | 'already-loaded'>;
  query(sql: string): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

export class DuckDbWarehouse implements Warehouse {
  private readonly scratch = mkdtempSync(join(tmpdir(), 'taskflow-warehouse-'));

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
  ) {}

  /** `path` ':memory:' for tests. */
  static async open(path: string): Promise<DuckDbWarehouse> {
    const instance = await DuckDBInstance.create(path);
    const conn = await instance.connect();
    for (const ddl of schemaDdl()) await conn.run(ddl);
    return new DuckDbWarehouse(instance, conn);
  }

  async loadedKeys(): Promise<Set<string>> {
    const rows = (await this.conn.runAndReadAll('SELECT object_key FROM load_log')).getRows();
    return new Set(rows.map((r) => String(r[0])));
  }

  async loadObject(key: string, gzipNdjson: Uint8Array): Promise<LoadResult | 'already-loaded'> {
    const file = join(this.scratch, 'object.ndjson.gz');
    writeFileSync(file, gzipNdjson);
    await this.conn.run('BEGIN TRANSACTION');
    try {
      const logged = await this.conn.prepare('INSERT OR IGNORE INTO load_log VALUES ($1, now(), 0, 0)');
      logged.bindVarchar(1, key);
      if ((await logged.run()).rowsChanged === 0) {
        await this.conn.run('ROLLBACK');
        return 'already-loaded';
      }
      await this.conn.run(stageSql(file));
      const events = Number((await this.conn.runAndReadAll('SELECT count(*) FROM staged')).getRows()[0]![0]);
      const newEvents = (await this.conn.run(insertRawSql(key))).rowsChanged;
      await this.conn.run(insertTruncationsSql());
      for (const entity of CURATED) await this.conn.run(mergeSql(entity));
      const update = await this.conn.prepare('UPDATE load_log SET events = $1, new_events = $2 WHERE object_key = $3');
      update.bindInteger(1, events);
      update.bindInteger(2, newEvents);
      update.bindVarchar(3, key);
      await update.run();
      await this.conn.run('COMMIT');
      return { events, newEvents };
    } catch (err) {
      await this.conn.run('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      rmSync(file, { force: true });
    }
  }

  async query(sql: string): Promise<Record<string, unknown>[]> {
    return (await this.conn.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
  }

  async close(): Promise<void> {
    this.conn.closeSync();
    this.instance.closeSync();
    rmSync(this.scratch, { recursive: true, force: true });
  }
}
