// Data-quality checks over the warehouse, run by the loader after its loads (at most every
// DQ interval) and on demand (`taskflow analytics dq`). Each check is one query returning the
// offending rows; a check passes when there are none. Results go to `dq_results` (one row per
// check per run, with up to SAMPLE_ROWS sample rows) and to metrics. Runbook:
// runbooks/analytics-data-quality.md, one section per check.
import type { Warehouse } from './duckdb.js';

export interface DqCheck {
  name: string;
  description: string;
  /** Rows that violate the check; `now` and the settings are inlined by the caller. */
  sql(settings: DqSettings): string;
}

export interface DqSettings {
  /** Latest commit time in raw_events older than this: stale. */
  freshnessMaxSeconds: number;
  /** Transactions committed this long before the newest event are expected complete. */
  settleSeconds: number;
  /** The clock (injected by tests). */
  now: Date;
}

export interface DqResult {
  check: string;
  passed: boolean;
  failingRows: number;
  sample: Record<string, unknown>[];
}

export const SAMPLE_ROWS = 5;
const TASK_STATUSES = ['todo', 'in_progress', 'review', 'done'];
const MEMBERSHIP_ROLES = ['owner', 'admin', 'member', 'viewer'];
const OPS = ['c', 'u', 'd', 'r', 't'];
const list = (values: readonly string[]) => values.map((v) => `'${v}'`).join(', ');
const ts = (d: Date) => `TIMESTAMPTZ '${d.toISOString()}'`;

export const DQ_CHECKS: readonly DqCheck[] = [
  {
    name: 'event_id_unique',
    description: 'every event id appears once in raw_events',
    sql: () => `SELECT id, count(*) AS copies FROM raw_events GROUP BY id HAVING count(*) > 1`,
  },
  {
    name: 'keys_not_null',
    description: 'entity events carry their key and workspace; curated rows their routing columns',
    sql: () => `SELECT id, type, 'raw_events' AS at FROM raw_events WHERE op <> 't' AND type NOT LIKE 'taskflow.gdpr.%' AND (key_id IS NULL OR workspace_id IS NULL OR tbl IS NULL)
      UNION ALL SELECT id, 'task', 'tasks' FROM tasks WHERE workspace_id IS NULL OR project_id IS NULL
      UNION ALL SELECT id, 'comment', 'comments' FROM comments WHERE workspace_id IS NULL OR project_id IS NULL OR task_id IS NULL
      UNION ALL SELECT id, 'project', 'projects' FROM projects WHERE workspace_id IS NULL
      UNION ALL SELECT id, 'membership', 'memberships' FROM memberships WHERE workspace_id IS NULL OR user_id IS NULL`,
  },
  {
    name: 'referential_integrity',
    description: 'comment -> task -> project -> workspace: every reference resolves to a live row of the same workspace',
    sql: () => `SELECT c.id, 'comment without its task' AS problem FROM comments c LEFT JOIN tasks t ON t.id = c.task_id WHERE t.id IS NULL OR t.workspace_id <> c.workspace_id
      UNION ALL SELECT t.id, 'task without its project' FROM tasks t LEFT JOIN projects p ON p.id = t.project_id WHERE p.id IS NULL OR p.workspace_id <> t.workspace_id
      UNION ALL SELECT p.id, 'project without a workspace' FROM projects p WHERE p.workspace_id IS NULL`,
  },
  {
    name: 'order_monotonic',
    description: 'within a workspace, commit time never goes back as event ids go forward',
    sql: () => `SELECT * FROM (
        SELECT id, workspace_id, time, lag(time) OVER (PARTITION BY workspace_id ORDER BY id) AS previous_time, lag(id) OVER (PARTITION BY workspace_id ORDER BY id) AS previous_id
        FROM raw_events WHERE op NOT IN ('r', 't')
      ) WHERE time < previous_time`,
  },
  {
    name: 'accepted_values',
    description: `op in (${OPS.join(', ')}), task status in (${TASK_STATUSES.join(', ')}), membership role in (${MEMBERSHIP_ROLES.join(', ')})`,
    sql: () => `SELECT id, 'op' AS field, op AS value FROM raw_events WHERE op IS NOT NULL AND op NOT IN (${list(OPS)})
      UNION ALL SELECT id, 'status', status FROM tasks WHERE status NOT IN (${list(TASK_STATUSES)})
      UNION ALL SELECT id, 'role', role FROM memberships WHERE role NOT IN (${list(MEMBERSHIP_ROLES)})`,
  },
  {
    name: 'freshness',
    description: 'the latest commit time in raw_events is recent',
    sql: (s) => `SELECT max(time) AS latest_commit, epoch(${ts(s.now)} - max(time)) AS age_seconds FROM raw_events
      HAVING max(time) IS NULL OR epoch(${ts(s.now)} - max(time)) > ${s.freshnessMaxSeconds}`,
  },
  {
    name: 'volume_complete_transactions',
    description: "each settled transaction has as many events as the stream said it had (data.source.txSize)",
    sql: (s) => `SELECT lsn, max(tx_size) AS tx_size, count(DISTINCT id)::INTEGER AS events FROM (
        SELECT id, json_extract_string(event, '$.data.source.lsn') AS lsn, CAST(json_extract(event, '$.data.source.txSize') AS INTEGER) AS tx_size, time
        FROM raw_events WHERE op NOT IN ('r', 't') AND json_extract(event, '$.data.source.txSize') IS NOT NULL
      ) GROUP BY lsn
      HAVING max(time) < (SELECT max(time) FROM raw_events) - INTERVAL ${s.settleSeconds} SECOND AND count(DISTINCT id) <> max(tx_size)`,
  },
];

export const DQ_DDL = `CREATE TABLE IF NOT EXISTS dq_results (run_id VARCHAR NOT NULL, check_name VARCHAR NOT NULL, passed BOOLEAN NOT NULL,
  failing_rows INTEGER NOT NULL, sample JSON, checked_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (run_id, check_name))`;

/** Runs every check (or those named), records them in dq_results under one run id, returns the results. */
export async function runDataQuality(warehouse: Warehouse, settings: DqSettings, only?: readonly string[]): Promise<DqResult[]> {
  await warehouse.query(DQ_DDL);
  const runId = `${settings.now.toISOString()}-${Math.random().toString(36).slice(2, 8)}`;
  const results: DqResult[] = [];
  for (const check of DQ_CHECKS.filter((c) => !only || only.includes(c.name))) {
    const [count] = await warehouse.query(`SELECT count(*)::INTEGER AS n FROM (${check.sql(settings)})`);
    const failingRows = Number(count?.n ?? 0);
    const sample = failingRows > 0 ? await warehouse.query(`SELECT * FROM (${check.sql(settings)}) LIMIT ${SAMPLE_ROWS}`) : [];
    results.push({ check: check.name, passed: failingRows === 0, failingRows, sample });
  }
  for (const r of results) {
    const sample = JSON.stringify(r.sample, (_k, value: unknown) => (typeof value === 'bigint' ? value.toString() : value)).replace(/'/g, "''");
    await warehouse.query(`INSERT INTO dq_results VALUES ('${runId}', '${r.check}', ${r.passed}, ${r.failingRows}, '${sample}', ${ts(settings.now)})`);
  }
  return results;
}
