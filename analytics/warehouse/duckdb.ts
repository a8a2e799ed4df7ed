// The Warehouse port and its DuckDB adapter (the local stand-in for Snowflake). A batch of raw
// archive objects is loaded in ONE transaction: their load-log rows, their new raw events and the
// MERGE of the curated tables commit together or not at all, so a crash anywhere between fetching
// the objects and committing leaves no trace and they are simply loaded again — never lost, never
// doubled. A loader that falls behind loads bigger batches, so the per-transaction cost (four
// MERGEs, a commit) is spread over more events. DuckDB allows one writing process per database file.
import { DuckDBInstance, type DuckDBConnection, LIST, VARCHAR } from '@duckdb/node-api';
import { writeFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SubjectIdentifiers } from '../../lib/erasure.js';
import { type ErasableWarehouse, type ErasureSqlPort, eraseInWarehouse, scanWarehouse, type WarehouseSink } from './erasure.js';
import { CURATED, filesSource, insertRawSql, insertTruncationsSql, lit, loadLogCountsSql, mergeSql, RAW_EVENTS_SOURCE, schemaDdl, STAGED_TABLES_SQL, STAGED_WINDOW_SQL, stagedSql, stageLinesSql, stateTable } from './tables.js';

export interface LoadResult {
  events: number;
  newEvents: number;
  /** Commit time (ms) of the object's newest event; null for an object without events. */
  newestEventMs: number | null;
}

export interface ArchiveObject {
  key: string;
  /** GZIP NDJSON, as Firehose delivers it. */
  body: Uint8Array;
}

export interface Warehouse {
  /** Keys of every object loaded so far (the load log). */
  loadedKeys(): Promise<Set<string>>;
  /**
   * Loads archive objects atomically, in one transaction; objects already in the load log are
   * skipped. Resolves to what was loaded, per object key.
   */
  loadObjects(objects: readonly ArchiveObject[]): Promise<Map<string, LoadResult>>;
  /** Commit time (ms) of the newest event in raw_events; undefined when empty. */
  newestEventTime(): Promise<number | undefined>;
  /** Drops the raw_events day partitions before `day` (YYYY-MM-DD); resolves to the rows dropped. */
  dropDaysBefore(day: string): Promise<number>;
  query(sql: string): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

/** One object: its result, or 'already-loaded' when the load log has it. */
export async function loadObject(warehouse: Warehouse, key: string, body: Uint8Array): Promise<LoadResult | 'already-loaded'> {
  return (await warehouse.loadObjects([{ key, body }])).get(key) ?? 'already-loaded';
}

export class DuckDbWarehouse implements Warehouse, ErasableWarehouse {
  private readonly scratch = mkdtempSync(join(tmpdir(), 'taskflow-warehouse-'));
  /**
   * Every operation runs alone on the one connection: a query issued while a load's transaction
   * is open (between its awaits) would otherwise run inside it and see it half done.
   */
  private queue: Promise<unknown> = Promise.resolve();

  private exclusive<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.queue.then(operation, operation);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
  ) {}

  /**
   * `path` ':memory:' for tests. `threads`: DuckDB's worker threads (default: one per core). The
   * loader uses one: a batch of a few MB is too small to share out, and on a busy host extra
   * workers spend CPU waiting for each other (half the loader's CPU per change, bench:loader-core).
   */
  static async open(path: string, options: { threads?: number } = {}): Promise<DuckDbWarehouse> {
    const instance = await DuckDBInstance.create(path, options.threads ? { threads: String(options.threads) } : undefined);
    const conn = await instance.connect();
    for (const ddl of schemaDdl()) await conn.run(ddl);
    return new DuckDbWarehouse(instance, conn);
  }

  loadedKeys(): Promise<Set<string>> {
    return this.exclusive(async () => {
      const rows = (await this.conn.runAndReadAll('SELECT object_key FROM load_log')).getRows();
      return new Set(rows.map((r) => String(r[0])));
    });
  }

  loadObjects(objects: readonly ArchiveObject[]): Promise<Map<string, LoadResult>> {
    return this.exclusive(() => this.loadAtomically(objects));
  }

  private async loadAtomically(objects: readonly ArchiveObject[]): Promise<Map<string, LoadResult>> {
    const loaded = new Map<string, LoadResult>();
    if (objects.length === 0) return loaded;
    await this.conn.run('BEGIN TRANSACTION');
    const files: { path: string; key: string }[] = [];
    try {
      const claim = await this.conn.prepare('INSERT OR IGNORE INTO load_log VALUES ($1, now(), 0, 0)');
      for (const [i, o] of objects.entries()) {
        claim.bindVarchar(1, o.key);
        if ((await claim.run()).rowsChanged === 0) continue; // in the load log already
        const path = join(this.scratch, `${i}.ndjson.gz`);
        writeFileSync(path, o.body);
        files.push({ path, key: o.key });
      }
      if (files.length === 0) {
        await this.conn.run('ROLLBACK');
        return loaded;
      }
      await this.stage(filesSource(files));
      await this.conn.run(insertRawSql());
      await this.mergeStaged();
      const keys = files.map((f) => f.key);
      await this.conn.run(loadLogCountsSql(keys));
      const counts = await this.conn.prepare(`SELECT object_key, events, new_events, (SELECT epoch_ms(max(time)) FROM staged_lines l WHERE l.object_key = load_log.object_key) AS newest_ms
        FROM load_log WHERE list_contains($1::VARCHAR[], object_key)`);
      counts.bindList(1, keys, LIST(VARCHAR));
      for (const row of (await counts.runAndReadAll()).getRowObjectsJS()) {
        loaded.set(String(row.object_key), { events: Number(row.events), newEvents: Number(row.new_events), newestEventMs: row.newest_ms === null ? null : Number(row.newest_ms) });
      }
      await this.conn.run('COMMIT');
      return loaded;
    } catch (err) {
      await this.conn.run('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      for (const f of files) rmSync(f.path, { force: true });
    }
  }

  /** `staged_lines` and `staged` from `source` (tables.ts: the dedup's window is the batch's commit times). */
  private async stage(source: string): Promise<void> {
    await this.conn.run(stageLinesSql(source));
    const [w] = (await this.conn.runAndReadAll(STAGED_WINDOW_SQL)).getRowObjectsJS();
    await this.conn.run(stagedSql(w && w.lo !== null && w.hi !== null ? { lo: BigInt(w.lo as bigint), hi: BigInt(w.hi as bigint) } : null));
  }

  /** Truncations and the curated MERGEs from `staged`, for the entities it touches. */
  private async mergeStaged(): Promise<void> {
    await this.conn.run(insertTruncationsSql());
    const touched = new Set((await this.conn.runAndReadAll(STAGED_TABLES_SQL)).getRows().map((r) => String(r[0])));
    for (const entity of CURATED.filter((e) => touched.has(e.table))) await this.conn.run(mergeSql(entity));
  }

  /**
   * The first step of a rebuild, in one transaction: forgets every object from `fromKey` on (its
   * load-log rows and the raw events it brought; '' = all), clears the curated state and
   * truncations, and merges them again from the raw events left. Loading the forgotten objects
   * again completes the rebuild.
   */
  resetCurated(fromKey: string): Promise<void> {
    return this.exclusive(async () => {
      await this.conn.run('BEGIN TRANSACTION');
      try {
        await this.conn.run(`DELETE FROM load_log WHERE object_key >= ${lit(fromKey)}`);
        await this.conn.run(`DELETE FROM raw_events WHERE object_key >= ${lit(fromKey)}`);
        for (const table of ['truncations', ...CURATED.map(stateTable)]) await this.conn.run(`DELETE FROM ${table}`);
        await this.stage(RAW_EVENTS_SOURCE);
        await this.mergeStaged();
        await this.conn.run('COMMIT');
      } catch (err) {
        await this.conn.run('ROLLBACK').catch(() => {});
        throw err;
      }
    });
  }

  newestEventTime(): Promise<number | undefined> {
    return this.exclusive(async () => {
      const [row] = (await this.conn.runAndReadAll('SELECT epoch_ms(max(time)) AS ms FROM raw_events')).getRowObjectsJS();
      return row?.ms === null || row?.ms === undefined ? undefined : Number(row.ms);
    });
  }

  dropDaysBefore(day: string): Promise<number> {
    return this.exclusive(async () => Number((await this.conn.run(`DELETE FROM raw_events WHERE day < CAST(${lit(day)} AS DATE)`)).rowsChanged));
  }

  /**
   * Erasure (erasure.ts), alone on the connection like a load. The last batch's staging tables
   * (connection-scoped copies of its events) are dropped with the raw rows' values; CHECKPOINT
   * writes the rewritten rows into the file (DuckDB reuses the freed blocks, it does not zero them).
   */
  erase(sink: WarehouseSink, ids: SubjectIdentifiers): Promise<{ changed: number }> {
    return this.exclusive(async () => {
      if (sink === 'warehouse-raw') for (const t of ['staged', 'staged_lines']) await this.conn.run(`DROP TABLE IF EXISTS ${t}`);
      const result = await eraseInWarehouse(this.erasurePort, sink, ids);
      await this.conn.run('CHECKPOINT');
      return result;
    });
  }

  holding(sink: WarehouseSink, ids: SubjectIdentifiers): Promise<{ scanned: number; found: number }> {
    return this.exclusive(() => scanWarehouse(this.erasurePort, sink, ids));
  }

  private readonly erasurePort: ErasureSqlPort = {
    dialect: 'duckdb',
    select: async (sql, binds = []) => (await this.conn.runAndReadAll(sql, [...binds])).getRowObjectsJS() as Record<string, unknown>[],
    exec: async (sql, binds = []) => Number((await this.conn.run(sql, binds.length ? [...binds] : undefined)).rowsChanged),
  };

  query(sql: string): Promise<Record<string, unknown>[]> {
    return this.exclusive(async () => (await this.conn.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[]);
  }

  async close(): Promise<void> {
    await this.queue;
    this.conn.closeSync();
    this.instance.closeSync();
    rmSync(this.scratch, { recursive: true, force: true });
  }
}
