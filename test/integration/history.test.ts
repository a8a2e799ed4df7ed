// The history recorder against a real Postgres 17: its truth must agree with pgoutput (what the
// capture service decodes) id for id, and with the workload generator's own account of what it
// committed, transaction by transaction.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import type { RowChange } from '../../db/workload-plan.js';
import { runWorkload, setupWorkloadTenants, type WorkloadStats } from '../../db/workload.js';
import { eventId } from '../../lib/event-id.js';
import { compareHistory, startHistoryRecorder, type HistoryEvent, type HistoryRecorder, type SeenEvent } from '../support/history.js';
import { createTestDatabase, uniqueName } from '../support/stack.js';

/**
 * Ids as the capture service derives them: pgoutput Commit.commitLsn + index of the row change
 * (Insert/Update/Delete/Truncate messages) within the transaction.
 */
function pgoutputIds(rows: { data: Buffer }[]): string[] {
  const ids: string[] = [];
  let changes = 0;
  for (const { data } of rows) {
    const tag = String.fromCharCode(data[0]!);
    if (tag === 'B') changes = 0;
    else if ('IUDT'.includes(tag)) changes += 1;
    else if (tag === 'C') {
      const commitLsn = data.readBigUInt64BE(2); // after the tag and the flags byte
      for (let i = 0; i < changes; i++) ids.push(eventId({ commitLsn, txIndex: i }));
    }
  }
  return ids;
}

describe('history recorder (test_decoding) on Postgres', () => {
  let url: string;
  let admin: pg.Client;
  let recorder: HistoryRecorder;
  const pgoutputSlot = uniqueName('pgoutput');
  let stats: WorkloadStats;
  let truth: HistoryEvent[];

  beforeAll(async () => {
    url = await createTestDatabase('history');
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query('CREATE PUBLICATION history_pub FOR TABLE projects, memberships, tasks, comments');
    const tenants = { workspaces: 2, projectsPerWorkspace: 3, seed: 42 };
    await setupWorkloadTenants(url, tenants); // before the slots: the truth is then the workload's changes only
    recorder = await startHistoryRecorder(url, { slotName: uniqueName('history') });
    await admin.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [pgoutputSlot]);
    stats = await runWorkload({ databaseUrl: url, ratePerSec: Infinity, transactions: 300, ...tenants, concurrency: 3, recordTransactions: true });
    // A transaction mixing captured and uncaptured tables: only the captured change is numbered.
    const ws = stats.tenants.workspaces[0]!;
    await admin.query('BEGIN');
    await admin.query("INSERT INTO users (id, email, display_name) VALUES ('00000000-0000-4000-8000-00000000abcd', 'late@workload.example', 'Late')");
    await admin.query('UPDATE projects SET name = $1 WHERE id = $2', ['Renamed', ws.projects[0]]);
    await admin.query('COMMIT');
    truth = await recorder.collect();
  });

  afterAll(async () => {
    await recorder?.stop();
    await admin?.query('SELECT pg_drop_replication_slot($1)', [pgoutputSlot]).catch(() => undefined);
    await admin?.end();
  });

  it("gives every change the id pgoutput's commit LSN gives it", async () => {
    const { rows } = await admin.query<{ data: Buffer }>(
      "SELECT data FROM pg_logical_slot_get_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', 'history_pub')",
      [pgoutputSlot],
    );
    const ids = pgoutputIds(rows);
    expect(ids.length).toBeGreaterThan(300);
    expect(truth.map((e) => e.id)).toEqual(ids);
  });

  it('records exactly what the workload says it committed, transaction by transaction, in WAL order', () => {
    const byXid = new Map<string, HistoryEvent[]>();
    for (const e of truth) byXid.set(e.xid, [...(byXid.get(e.xid) ?? []), e]);
    expect(stats.transactions).toHaveLength(300);
    expect((stats.changesByKind['workspace.member.add'] ?? 0) + (stats.changesByKind['workspace.member.remove'] ?? 0)).toBeGreaterThan(0);
    for (const tx of stats.transactions!) {
      const recorded = byXid.get(tx.xid) ?? [];
      const ops = { insert: 'c', update: 'u', delete: 'd' } as const;
      // A membership DELETE carries only its replica identity (id, workspace_id, user_id): no project.
      const projectOf = (c: RowChange) => (c.workspaceWide || (c.table === 'memberships' && c.op === 'delete') ? undefined : tx.projectId);
      expect(recorded.map((e) => [e.table, e.op, e.key.id, e.workspaceId, e.projectId])).toEqual(tx.changes.map((c) => [c.table, ops[c.op], c.id, tx.workspaceId, projectOf(c)]));
    }
    const last = truth[truth.length - 1]!;
    expect(last).toMatchObject({ table: 'projects', op: 'u', txIndex: 0, projectId: stats.tenants.workspaces[0]!.projects[0] });
    expect(truth.length).toBe(stats.rowChanges + 1);
  });

  it('is in commit order and exercises TOASTed descriptions', async () => {
    for (let i = 1; i < truth.length; i++) {
      const [a, b] = [truth[i - 1]!, truth[i]!];
      expect(a.commitLsn < b.commitLsn || (a.commitLsn === b.commitLsn && b.txIndex === a.txIndex + 1)).toBe(true);
    }
    const { rows } = await admin.query<{ n: string }>("SELECT count(*) AS n FROM tasks WHERE pg_column_size(description) > 2032 AND description IS NOT NULL");
    expect(Number(rows[0]!.n)).toBeGreaterThan(0);
  });

  it('collects incrementally (a truncate included) and compares a reader that saw everything as clean', async () => {
    await admin.query("UPDATE tasks SET title = 'after' WHERE id = $1", [truth.find((e) => e.table === 'tasks' && e.op !== 'd')!.key.id]);
    await admin.query('TRUNCATE workspaces, projects, memberships, tasks, comments');
    const again = await recorder.collect();
    expect(again.slice(0, truth.length)).toEqual(truth);
    expect(again.slice(truth.length)).toMatchObject([
      { table: 'tasks', op: 'u', txIndex: 0 },
      { table: 'projects', op: 't', workspaceId: '*', txIndex: 0 },
    ]);
    const { rows } = await admin.query<{ data: Buffer }>(
      "SELECT data FROM pg_logical_slot_get_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', 'history_pub')",
      [pgoutputSlot],
    );
    expect(again.slice(truth.length).map((e) => e.id)).toEqual(pgoutputIds(rows));
    const seen: SeenEvent[] = again.map((e) => ({ id: e.id, workspaceid: e.workspaceId, projectid: e.projectId }));
    expect(compareHistory(again, seen)).toEqual({ lost: [], duplicated: [], outOfOrderByWorkspace: [], outOfOrderByProject: [], unexpected: [], misrouted: [] });
  });
});
