// Reference computations of the warehouse's history and metrics views, in plain TypeScript from
// the raw events, to check the SQL views (DuckDB's; Snowflake's are held to the same columns by
// analytics/warehouse/snowflake-views.test.ts) on real pipeline data.

export interface RawEvent {
  id: string;
  time: Date;
  tbl: string;
  op: string;
  keyId: string | null;
  workspaceId: string;
  projectId: string | null;
  after: Record<string, unknown> | null;
  omitted: string[];
}

export interface Version {
  id: string;
  eventId: string;
  validFrom: number;
  validTo: number | null;
  row: Record<string, unknown>;
}

/** One row per version of each row of `table`, in id order; omitted columns carry the previous value. */
export function historyOf(events: readonly RawEvent[], table: string): Version[] {
  const byKey = new Map<string, RawEvent[]>();
  for (const e of events) if (e.tbl === table && e.keyId && ['c', 'u', 'r', 'd'].includes(e.op)) (byKey.get(e.keyId) ?? byKey.set(e.keyId, []).get(e.keyId)!).push(e);
  const versions: Version[] = [];
  for (const [id, list] of byKey) {
    list.sort((a, b) => (a.id < b.id ? -1 : 1));
    const row: Record<string, unknown> = {};
    list.forEach((e, i) => {
      if (e.op === 'd') return;
      for (const [k, v] of Object.entries(e.after ?? {})) if (!e.omitted.includes(k)) row[k] = v;
      versions.push({ id, eventId: e.id, validFrom: e.time.getTime(), validTo: list[i + 1]?.time.getTime() ?? null, row: { ...row } });
    });
  }
  return versions;
}

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** metrics_tasks_daily: tasks created, and versions that made a task done, per day and workspace. */
export function tasksDaily(events: readonly RawEvent[]): Map<string, { created: number; completed: number }> {
  const out = new Map<string, { created: number; completed: number }>();
  const at = (k: string) => out.get(k) ?? out.set(k, { created: 0, completed: 0 }).get(k)!;
  for (const e of events) if (e.tbl === 'tasks' && e.op === 'c') at(`${day(e.time.getTime())}|${e.workspaceId}`).created++;
  const versions = historyOf(events, 'tasks');
  const byTask = new Map<string, Version[]>();
  for (const v of versions) (byTask.get(v.id) ?? byTask.set(v.id, []).get(v.id)!).push(v);
  for (const list of byTask.values()) {
    list.forEach((v, i) => {
      if (i > 0 && v.row.status === 'done' && list[i - 1]!.row.status !== 'done') at(`${day(v.validFrom)}|${String(v.row.workspace_id)}`).completed++;
    });
  }
  return out;
}

/** metrics_comment_activity: comments created, edited and distinct authors per day, workspace and project. */
export function commentActivity(events: readonly RawEvent[]): Map<string, { created: number; edited: number; authors: number }> {
  const groups = new Map<string, { created: number; edited: number; authors: Set<string> }>();
  for (const e of events) {
    if (e.tbl !== 'comments') continue;
    const k = `${day(e.time.getTime())}|${e.workspaceId}|${e.projectId ?? ''}`;
    const g = groups.get(k) ?? groups.set(k, { created: 0, edited: 0, authors: new Set() }).get(k)!;
    if (e.op === 'c') g.created++;
    if (e.op === 'u') g.edited++;
    const author = e.after?.author_id;
    if (typeof author === 'string') g.authors.add(author);
  }
  return new Map([...groups].map(([k, g]) => [k, { created: g.created, edited: g.edited, authors: g.authors.size }]));
}
