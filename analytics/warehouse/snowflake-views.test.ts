// The Snowflake DDL stays in step with DuckDB's: the same views, with the same columns in the same
// order (DuckDB's read from the views it created; Snowflake's from the column list each view
// names in its header, which Snowflake holds the body to). No Snowflake can be reached here.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DuckDbWarehouse } from './duckdb.js';
import { snowflakeDdl } from './snowflake.js';

let warehouse: DuckDbWarehouse;
beforeAll(async () => {
  warehouse = await DuckDbWarehouse.open(':memory:');
});
afterAll(async () => {
  await warehouse.close();
});

const unquote = (c: string) => c.trim().replace(/^"(.*)"$/, '$1').toLowerCase();

function snowflakeViewColumns(): Record<string, string[]> {
  const views: Record<string, string[]> = {};
  for (const ddl of snowflakeDdl().filter((s) => s.startsWith('CREATE OR REPLACE VIEW'))) {
    const m = /^CREATE OR REPLACE VIEW (\w+) \(([^)]*)\) AS /.exec(ddl);
    expect({ ddl: ddl.slice(0, 60), namesItsColumns: Boolean(m) }).toEqual({ ddl: ddl.slice(0, 60), namesItsColumns: true });
    views[m![1]!] = m![2]!.split(',').map(unquote);
  }
  return views;
}

describe('Snowflake views', () => {
  it('are the DuckDB views: same names, same columns in the same order', async () => {
    const rows = await warehouse.query(
      `SELECT c.table_name AS view, c.column_name AS col FROM information_schema.columns c JOIN duckdb_views() v ON v.view_name = c.table_name AND NOT v.internal ORDER BY c.table_name, c.ordinal_position`,
    );
    const duck: Record<string, string[]> = {};
    for (const r of rows) (duck[String(r.view)] ??= []).push(String(r.col).toLowerCase());
    expect(Object.keys(duck).sort()).toEqual(expect.arrayContaining(['tasks_history', 'projects_history', 'metrics_tasks_daily', 'metrics_comment_activity', 'metrics_time_in_status']));
    const snowflake = snowflakeViewColumns();
    expect(Object.fromEntries(Object.entries(snowflake).sort())).toEqual(Object.fromEntries(Object.entries(duck).sort()));
  });

  it('each view body selects as many columns as its header names (the commas of its last top-level SELECT)', () => {
    for (const ddl of snowflakeDdl().filter((s) => s.startsWith('CREATE OR REPLACE VIEW'))) {
      const [, name, header] = /^CREATE OR REPLACE VIEW (\w+) \(([^)]*)\) AS /.exec(ddl)!;
      const body = ddl.slice(ddl.indexOf(') AS ') + 5);
      // Depth-0 SELECT / FROM / commas, outside parentheses and quotes.
      let depth = 0;
      let quote = '';
      let lastSelect = -1;
      const commas: number[] = [];
      const froms: number[] = [];
      for (let i = 0; i < body.length; i++) {
        const ch = body[i]!;
        if (quote) {
          if (ch === quote) quote = '';
        } else if (ch === "'" || ch === '"') quote = ch;
        else if (ch === '(') depth++;
        else if (ch === ')') depth--;
        else if (depth === 0 && ch === ',') commas.push(i);
        else if (depth === 0 && /\bSELECT\s$/.test(body.slice(Math.max(0, i - 7), i + 1))) lastSelect = i;
        else if (depth === 0 && /\sFROM\s$/.test(body.slice(Math.max(0, i - 5), i + 1))) froms.push(i);
      }
      const end = froms.find((f) => f > lastSelect)!;
      const columns = commas.filter((c) => c > lastSelect && c < end).length + 1;
      expect({ name, columns }).toEqual({ name, columns: header!.split(',').length });
    }
  });
});
