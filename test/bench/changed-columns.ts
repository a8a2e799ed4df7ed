// `npm run bench:changed-columns` → test/bench/results/changed-columns.json. What it costs the
// source database to know which columns an UPDATE changed (data.changed, schemas/CONTRACTS.md).
//
// A throw-away Postgres 17 (wal_level=logical) runs title-only UPDATEs of tasks, one per
// transaction, under three set-ups:
//   none      the default after the migrations (0005: changed-column capture is opt-in per table):
//             the replica identity index alone, `changed` lists every column of `after`
//   trigger   the table opted in (taskflow_capture_changed_columns): 0003's AFTER UPDATE trigger
//             emits a `taskflow.changed` logical message
//   full      REPLICA IDENTITY FULL instead (the old row in the WAL; capture could compare)
// on rows with a short description and on rows whose 8 KB description is TOASTed out of line.
// It reports WAL bytes per update (pg_current_wal_lsn before/after), the database backend's CPU
// per update (/proc/<backend pid>/stat) and updates/s — medians of BENCH_RUNS runs. The host is
// shared with other work: compare the set-ups within one run, not across runs.
import pg from 'pg';
import { changedColumnsTables } from '../../capture/changed-columns.js';
import { CAPTURED_TABLES } from '../../capture/slot-setup.js';
import { setupWorkloadTenants } from '../../db/workload.js';
import { cpuSeconds, median, writeBenchResult } from './report.js';
import { withThrowawayPostgres } from '../support/throwaway-postgres.js';

const UPDATES = Number(process.env.BENCH_UPDATES ?? 5000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const SETUPS = ['none', 'trigger', 'full'] as const;
type Setup = (typeof SETUPS)[number];
const ROWS = ['short', 'toasted'] as const;
type Rows = (typeof ROWS)[number];


async function configure(db: pg.Client, setup: Setup): Promise<void> {
  await db.query("SELECT taskflow_capture_changed_columns('tasks', $1)", [setup === 'trigger']);
  await db.query(setup === 'full' ? 'ALTER TABLE tasks REPLICA IDENTITY FULL' : 'ALTER TABLE tasks REPLICA IDENTITY USING INDEX tasks_identity');
}

async function measure(db: pg.Client, backendPid: number, ids: string[]): Promise<{ walBytes: number; cpuUs: number; perSecond: number }> {
  const list = ids.map((id) => `'${id}'::uuid`).join(',');
  const walBefore = (await db.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn;
  const cpuBefore = cpuSeconds(backendPid);
  const started = performance.now();
  await db.query(`DO $$ DECLARE ids uuid[] := ARRAY[${list}]; BEGIN
    FOR i IN 1..${UPDATES} LOOP
      UPDATE tasks SET title = 'title ' || i WHERE id = ids[1 + i % array_length(ids, 1)];
      COMMIT;
    END LOOP; END $$`);
  const seconds = (performance.now() - started) / 1000;
  const cpu = cpuSeconds(backendPid) - cpuBefore;
  const wal = (await db.query<{ bytes: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1)::text AS bytes', [walBefore])).rows[0]!.bytes;
  return { walBytes: Number(wal) / UPDATES, cpuUs: (cpu * 1e6) / UPDATES, perSecond: UPDATES / seconds };
}

async function main(): Promise<void> {
  await withThrowawayPostgres('bench-changed-columns', async (url) => {
    const tenants = await setupWorkloadTenants(url, { workspaces: 1, projectsPerWorkspace: 1, seed: 'bench-changed-columns', tasksPerProject: 1 });
    const db = new pg.Client(url);
    await db.connect();
    // The default costs nothing: after the migrations no captured table has the trigger.
    const tablesOptedInByDefault = (await changedColumnsTables(db, CAPTURED_TABLES)).length;
    if (tablesOptedInByDefault !== 0) throw new Error(`${tablesOptedInByDefault} table(s) have the changed-columns trigger by default`);
    const ws = tenants.workspaces[0]!;
    const insert = (description: string) =>
      db.query<{ id: string }>(`INSERT INTO tasks (id, workspace_id, project_id, title, description) SELECT gen_random_uuid(), $1, $2, 'bench', ${description} FROM generate_series(1, 100) RETURNING id`, [ws.id, ws.projects[0]]);
    const rows: Record<Rows, string[]> = {
      short: (await insert("'a short description'")).rows.map((r) => r.id),
      // 8 KB of hex from random bytes: incompressible enough to be stored out of line.
      toasted: (await insert("(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 256))")).rows.map((r) => r.id),
    };

    // The application's role is no superuser: the trigger of a table opted in must work for it too.
    await configure(db, 'trigger');
    await db.query("CREATE ROLE bench_app LOGIN PASSWORD 'bench'; GRANT SELECT, UPDATE ON tasks TO bench_app");
    const app = new pg.Client({ connectionString: url.replace(/\/\/[^@]+@/, '//bench_app:bench@') });
    await app.connect();
    await app.query("UPDATE tasks SET title = 'by the app role' WHERE id = $1", [rows.short[0]]);
    await app.end();

    const backendPid = (await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const samples = new Map<string, { walBytes: number; cpuUs: number; perSecond: number }[]>();
    for (let run = 0; run < RUNS; run++) {
      for (const kind of ROWS) {
        for (const setup of SETUPS) {
          await configure(db, setup);
          await db.query('CHECKPOINT'); // full-page images after a checkpoint hit every set-up alike
          const key = `${kind}_${setup}`;
          samples.set(key, [...(samples.get(key) ?? []), await measure(db, backendPid, rows[kind])]);
        }
      }
    }
    await db.end();

    const metrics: Record<string, number> = {};
    for (const [key, list] of samples) {
      metrics[`${key}_wal_bytes_per_update`] = Math.round(median(list.map((s) => s.walBytes)));
      metrics[`${key}_db_cpu_us_per_update`] = Math.round(median(list.map((s) => s.cpuUs)));
      metrics[`${key}_updates_per_s`] = Math.round(median(list.map((s) => s.perSecond)));
    }
    for (const kind of ROWS) {
      for (const setup of ['trigger', 'full'] as const) {
        metrics[`${kind}_${setup}_wal_overhead_pct`] = Math.round((metrics[`${kind}_${setup}_wal_bytes_per_update`]! / metrics[`${kind}_none_wal_bytes_per_update`]! - 1) * 1000) / 10;
        metrics[`${kind}_${setup}_db_cpu_overhead_pct`] = Math.round((metrics[`${kind}_${setup}_db_cpu_us_per_update`]! / metrics[`${kind}_none_db_cpu_us_per_update`]! - 1) * 1000) / 10;
      }
    }
    for (const kind of ROWS) {
      console.log(
        `${kind}: ` +
          SETUPS.map((s) => `${s} ${metrics[`${kind}_${s}_wal_bytes_per_update`]} B WAL, ${metrics[`${kind}_${s}_db_cpu_us_per_update`]} µs CPU, ${metrics[`${kind}_${s}_updates_per_s`]}/s`).join(' | '),
      );
    }
    const params = { tables_opted_in_by_default: tablesOptedInByDefault, updates_per_run: UPDATES, runs: RUNS, rows_per_kind: 100, toasted_description_bytes: 8192, note: 'one title-only UPDATE per transaction; medians; host shared with other work' };
    console.log(`wrote ${writeBenchResult('changed-columns', params, metrics)}`);
  });
}

await main();
