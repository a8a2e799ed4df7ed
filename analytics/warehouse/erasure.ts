// Erasure inside the warehouse (gdpr/POLICY.md `warehouse-raw`, `warehouse-curated`), one routine
// for DuckDB and Snowflake over a small SQL port: the loader runs it (DuckDB allows one process per
// file; analytics/erasure-api.ts is how the gdpr processor asks for it).
//
// warehouse-raw: every raw_events row whose event holds one of the subject's identifiers (id,
// email, name, authored text, or the key id of their encrypted fields) has those values in its
// row images and source blanked (lib/erasure.ts blankHolding); the row stays, so counts, history
// versions and other people's columns survive, and so do the table's own columns (none personal).
// The history views are views over raw_events, so they lose the values with it.
// warehouse-curated: every text column of the curated state tables holding an identifier is set
// to NULL, its per-column version (`_v_<column>`) kept — so no redelivered or replayed older event
// can set it again (the MERGE's guard), while a newer edit still does. Plus the data-quality
// samples (DuckDB's dq_results), which copy offending rows.
// Both are idempotent: a repeat finds nothing and changes nothing.
import { blankHolding, identifierStrings, type SubjectIdentifiers } from '../../lib/erasure.js';
import { kidFor } from '../../lib/subject-keys.js';
import { DQ_DDL } from './dq.js';
import { CURATED, q, stateTable } from './tables.js';

export const WAREHOUSE_SINKS = ['warehouse-raw', 'warehouse-curated'] as const;
export type WarehouseSink = (typeof WAREHOUSE_SINKS)[number];

/** What a warehouse runs erasure statements through; `binds` fill `$1…` (DuckDB) or `:1…` (Snowflake). */
export interface ErasureSqlPort {
  dialect: 'duckdb' | 'snowflake';
  select(sql: string, binds?: readonly string[]): Promise<Record<string, unknown>[]>;
  /** Resolves to the rows changed. */
  exec(sql: string, binds?: readonly string[]): Promise<number>;
}

export interface ErasableWarehouse {
  erase(sink: WarehouseSink, ids: SubjectIdentifiers): Promise<{ changed: number }>;
  holding(sink: WarehouseSink, ids: SubjectIdentifiers): Promise<{ scanned: number; found: number }>;
}

/** What is searched for: the identifiers, as they are and as JSON text escapes them, and the subject's key id. */
export function erasureNeedles(ids: SubjectIdentifiers): { needles: string[]; kids: string[]; text: string[] } {
  const needles = identifierStrings(ids);
  const kids = [kidFor(ids.subject)];
  const escaped = needles.map((n) => JSON.stringify(n).slice(1, -1));
  return { needles, kids, text: [...new Set([...needles, ...escaped, ...kids])] };
}

const placeholders = (d: ErasureSqlPort['dialect'], from: number, n: number) => Array.from({ length: n }, (_, i) => (d === 'duckdb' ? `$${from + i}` : `:${from + i}`));

/** `expr` (text) contains any of `count` bound needles, numbered from `from`. */
function holdsSql(d: ErasureSqlPort['dialect'], expr: string, from: number, count: number): string {
  return `(${placeholders(d, from, count).map((p) => (d === 'duckdb' ? `contains(${expr}, ${p})` : `CONTAINS(${expr}, ${p})`)).join(' OR ')})`;
}

const eventText = (d: ErasureSqlPort['dialect']) => (d === 'duckdb' ? 'CAST(event AS VARCHAR)' : 'TO_JSON(event)');

/** The curated state's text columns (VARCHAR and lists of them, as text): where an identifier can be. */
function textColumns(d: ErasureSqlPort['dialect']): { table: string; columns: { name: string; text: string }[] }[] {
  return CURATED.map((e) => ({
    table: stateTable(e),
    columns: e.columns
      .filter((c) => c.type === 'VARCHAR' || c.type === 'VARCHAR[]')
      .map((c) => ({ name: c.name, text: c.type === 'VARCHAR' ? q(c.name) : d === 'duckdb' ? `CAST(${q(c.name)} AS VARCHAR)` : `ARRAY_TO_STRING(${q(c.name)}, ',')` })),
  }));
}

/** The event's row images and source with the identifiers blanked; undefined when it holds none there. */
export function blankedEvent(event: Record<string, unknown>, needles: readonly string[], kids: readonly string[]): Record<string, unknown> | undefined {
  const data = event.data as Record<string, unknown> | undefined;
  if (!data || typeof data !== 'object') return undefined;
  const parts = ['before', 'after', 'source'] as const;
  const blanked = Object.fromEntries(parts.filter((p) => p in data).map((p) => [p, blankHolding(data[p], needles, kids)]));
  if (parts.every((p) => !(p in data) || blanked[p] === data[p])) return undefined;
  return { ...event, data: { ...data, ...blanked } };
}

const ROWS_PER_INSERT = 200;

export async function eraseInWarehouse(port: ErasureSqlPort, sink: WarehouseSink, ids: SubjectIdentifiers): Promise<{ changed: number }> {
  const { needles, kids, text } = erasureNeedles(ids);
  const d = port.dialect;
  if (sink === 'warehouse-raw') {
    const rows = await port.select(`SELECT id, ${eventText(d)} AS event FROM raw_events WHERE ${holdsSql(d, eventText(d), 1, text.length)}`, text);
    const rewritten: [string, string][] = [];
    for (const r of rows) {
      const next = blankedEvent(JSON.parse(String(r.event ?? r.EVENT)) as Record<string, unknown>, needles, kids);
      if (next) rewritten.push([String(r.id ?? r.ID), JSON.stringify(next)]);
    }
    if (rewritten.length === 0) return { changed: 0 };
    // One UPDATE … FROM a table of the rewritten events: raw_events has no index on id, so an UPDATE per row would read the table once per row.
    await port.exec(d === 'duckdb' ? 'CREATE OR REPLACE TEMP TABLE erased_raw (id VARCHAR, event VARCHAR)' : 'CREATE OR REPLACE TEMPORARY TABLE erased_raw (id STRING, event STRING)');
    for (let i = 0; i < rewritten.length; i += ROWS_PER_INSERT) {
      const chunk = rewritten.slice(i, i + ROWS_PER_INSERT);
      const values = chunk.map((_, j) => `(${placeholders(d, 2 * j + 1, 2).join(', ')})`).join(', ');
      await port.exec(`INSERT INTO erased_raw VALUES ${values}`, chunk.flat());
    }
    const changed =
      d === 'duckdb'
        ? await port.exec('UPDATE raw_events SET event = CAST(e.event AS JSON) FROM erased_raw e WHERE raw_events.id = e.id')
        : await port.exec('UPDATE raw_events SET event = PARSE_JSON(e.event) FROM erased_raw e WHERE raw_events.id = e.id');
    await port.exec(d === 'duckdb' ? 'DROP TABLE erased_raw' : 'DROP TABLE IF EXISTS erased_raw');
    return { changed };
  }
  let changed = 0;
  for (const t of textColumns(d)) {
    for (const c of t.columns) changed += await port.exec(`UPDATE ${t.table} SET ${q(c.name)} = NULL WHERE ${holdsSql(d, c.text, 1, text.length)}`, text);
  }
  if (d === 'duckdb') {
    await port.exec(DQ_DDL);
    changed += await port.exec(`UPDATE dq_results SET sample = NULL WHERE ${holdsSql(d, 'CAST(sample AS VARCHAR)', 1, text.length)}`, text);
  }
  return { changed };
}

export async function scanWarehouse(port: ErasureSqlPort, sink: WarehouseSink, ids: SubjectIdentifiers): Promise<{ scanned: number; found: number }> {
  const { text } = erasureNeedles(ids);
  const d = port.dialect;
  const count = async (table: string, holding: string) => {
    const found = d === 'duckdb' ? `count(*) FILTER (WHERE ${holding})` : `COUNT_IF(${holding})`;
    const [row] = await port.select(`SELECT count(*) AS scanned, ${found} AS found FROM ${table}`, text);
    return { scanned: Number(row?.scanned ?? row?.SCANNED ?? 0), found: Number(row?.found ?? row?.FOUND ?? 0) };
  };
  const holding = (expr: string) => holdsSql(d, expr, 1, text.length);
  if (d === 'duckdb' && sink === 'warehouse-curated') await port.exec(DQ_DDL);
  const targets: [string, string][] =
    sink === 'warehouse-raw'
      ? [['raw_events', holding(eventText(d))]]
      : [...textColumns(d).map((t): [string, string] => [t.table, t.columns.map((c) => holding(c.text)).join(' OR ')]), ...(d === 'duckdb' ? [['dq_results', holding('CAST(sample AS VARCHAR)')] as [string, string]] : [])];
  const parts = [];
  for (const [table, where] of targets) parts.push(await count(table, where)); // one at a time: DuckDB's one connection
  return parts.reduce((a, p) => ({ scanned: a.scanned + p.scanned, found: a.found + p.found }), { scanned: 0, found: 0 });
}
