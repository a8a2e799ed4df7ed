// Workload generator: realistic TaskFlow writes at a chosen rate, for capture/router tests and
// benchmarks. N workspaces × M projects of its own (setupWorkloadTenants), several connections;
// each project belongs to exactly one connection, so transactions never conflict or deadlock and
// each connection's sequence of transactions is a pure function of the seed and the starting rows.
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { TaskflowError } from '../lib/errors.js';
import { Rng, stableUuid } from './random.js';
import {
  actorSql,
  changeSql,
  planTransaction,
  rowChanges,
  sqlLiteral,
  STATUSES,
  taskTitle,
  type ChangeKind,
  type PlanOptions,
  type ProjectModel,
  type RowChange,
  type RowOp,
  type TaskStatus,
  transactionActor,
} from './workload-plan.js';

export interface WorkloadTenantsOptions {
  workspaces: number;
  projectsPerWorkspace: number;
  seed: number | string;
  usersPerWorkspace?: number;
  tasksPerProject?: number;
}

export interface WorkloadTenants {
  workspaces: { id: string; users: string[]; projects: string[] }[];
}

/** The tenant ids for a seed (pure): different seeds never share tenants, so runs can share a database. */
export function workloadTenantIds(options: WorkloadTenantsOptions): WorkloadTenants {
  const users = options.usersPerWorkspace ?? 8;
  return {
    workspaces: Array.from({ length: options.workspaces }, (_, w) => ({
      id: stableUuid(`workload:${options.seed}:ws:${w}`),
      users: Array.from({ length: users }, (_, u) => stableUuid(`workload:${options.seed}:ws:${w}:user:${u}`)),
      projects: Array.from({ length: options.projectsPerWorkspace }, (_, p) => stableUuid(`workload:${options.seed}:ws:${w}:project:${p}`)),
    })),
  };
}

/**
 * Creates the workload's workspaces, users, memberships, projects and starting tasks. Idempotent
 * per workspace: a workspace that exists is left exactly as earlier runs left it (re-inserting its
 * starting rows would resurrect tasks and memberships a run deleted). Every user has a
 * workspace-wide membership; the first two are also members of each project.
 */
export async function setupWorkloadTenants(databaseUrl: string, options: WorkloadTenantsOptions): Promise<WorkloadTenants> {
  if (options.workspaces < 1 || options.projectsPerWorkspace < 1) {
    throw new TaskflowError('WORKLOAD_BAD_OPTIONS', 'workspaces and projectsPerWorkspace must be at least 1');
  }
  const tenants = workloadTenantIds(options);
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'taskflow-workload-setup' });
  await client.connect();
  try {
    const { rows: present } = await client.query<{ id: string }>('SELECT id FROM workspaces WHERE id = ANY($1)', [tenants.workspaces.map((w) => w.id)]);
    const rows = tenantRows(tenants, options, new Set(present.map((r) => r.id)));
    if (rows.workspaces.length === 0) return tenants;
    await client.query('BEGIN');
    try {
      for (const [table, values] of Object.entries(rows)) {
        for (let i = 0; i < values.length; i += 500) {
          const tuples = values.slice(i, i + 500).map((r) => `(${r.map(sqlLiteral).join(', ')})`);
          // DO NOTHING: a concurrent setup of the same seed may have inserted them first.
          await client.query(`INSERT INTO ${table} (${TENANT_COLUMNS[table as keyof typeof TENANT_COLUMNS]}) VALUES ${tuples.join(', ')} ON CONFLICT DO NOTHING`);
        }
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  } finally {
    await client.end();
  }
  return tenants;
}

const TENANT_COLUMNS = {
  workspaces: 'id, name, slug',
  users: 'id, email, display_name',
  projects: 'id, workspace_id, name, created_by',
  memberships: 'id, workspace_id, user_id, project_id, role',
  tasks: 'id, workspace_id, project_id, title, status, position, assignee_id, created_by',
};

type Value = string | number | null;

/** The starting rows of every workspace not in `skip`, parents first, values in TENANT_COLUMNS order. */
function tenantRows(tenants: WorkloadTenants, options: WorkloadTenantsOptions, skip: ReadonlySet<string>): Record<keyof typeof TENANT_COLUMNS, Value[][]> {
  const tasksPerProject = options.tasksPerProject ?? 20;
  const tag = stableUuid(`workload:${options.seed}`).slice(0, 8);
  const rows: Record<keyof typeof TENANT_COLUMNS, Value[][]> = { workspaces: [], users: [], projects: [], memberships: [], tasks: [] };
  tenants.workspaces.forEach((ws, w) => {
    if (skip.has(ws.id)) return;
    rows.workspaces.push([ws.id, `Workload ${tag} #${w}`, `wl-${tag}-${w}`]);
    ws.users.forEach((user, u) => {
      rows.users.push([user, `user${u}.ws${w}.${tag}@workload.example`, `Workload User ${w}.${u}`]);
      rows.memberships.push([stableUuid(`${ws.id}:member:${user}`), ws.id, user, null, u === 0 ? 'owner' : 'member']);
    });
    ws.projects.forEach((project, p) => {
      rows.projects.push([project, ws.id, `Project ${w}.${p}`, ws.users[0]!]);
      ws.users.slice(0, 2).forEach((user, u) => rows.memberships.push([stableUuid(`${project}:member:${user}`), ws.id, user, project, u === 0 ? 'admin' : 'member']));
      const rng = new Rng(project);
      const columnEnd = new Map<TaskStatus, number>();
      for (let t = 0; t < tasksPerProject; t++) {
        const status = STATUSES[t % STATUSES.length]!;
        const position = (columnEnd.get(status) ?? 0) + 1024;
        columnEnd.set(status, position);
        rows.tasks.push([stableUuid(`${project}:task:${t}`), ws.id, project, taskTitle(rng), status, position, rng.pick(ws.users), ws.users[0]!]);
      }
    });
  });
  return rows;
}

/** Reads the current rows of `projects` into models, in a deterministic order. */
async function loadProjectModels(client: pg.Client, tenants: WorkloadTenants): Promise<ProjectModel[]> {
  const projectIds = tenants.workspaces.flatMap((w) => w.projects);
  const workspaceIds = tenants.workspaces.map((w) => w.id);
  // Memberships of the workload's own users only: one someone else added (a test's observer, a
  // person using the demo) is not the workload's to revoke.
  const ownUsers = tenants.workspaces.flatMap((w) => w.users);
  // One connection runs one query at a time: sequential awaits, not Promise.all.
  const tasks = await client.query<{ id: string; project_id: string; status: TaskStatus; position: number }>(
    'SELECT id, project_id, status, position FROM tasks WHERE project_id = ANY($1) ORDER BY id',
    [projectIds],
  );
  const comments = await client.query<{ id: string; task_id: string; project_id: string }>('SELECT id, task_id, project_id FROM comments WHERE project_id = ANY($1) ORDER BY id', [projectIds]);
  const members = await client.query<{ id: string; user_id: string; project_id: string }>('SELECT id, user_id, project_id FROM memberships WHERE project_id = ANY($1) AND user_id = ANY($2) ORDER BY user_id', [projectIds, ownUsers]);
  const wsUsers = await client.query<{ id: string; workspace_id: string; user_id: string }>(
    'SELECT id, workspace_id, user_id FROM memberships WHERE workspace_id = ANY($1) AND project_id IS NULL AND user_id = ANY($2) ORDER BY user_id',
    [workspaceIds, ownUsers],
  );
  const models = new Map<string, ProjectModel>();
  for (const ws of tenants.workspaces) {
    const wsMembers = wsUsers.rows.filter((r) => r.workspace_id === ws.id);
    const users = wsMembers.map((r) => r.user_id);
    ws.projects.forEach((projectId, i) => {
      const model: ProjectModel = { workspaceId: ws.id, projectId, workspaceUsers: users, tasks: new Map(), members: new Map() };
      // The workspace's first project carries its workspace-wide memberships (see ProjectModel.workspace).
      if (i === 0) model.workspace = { owner: ws.users[0]!, users: ws.users, members: new Map(wsMembers.map((r) => [r.user_id, r.id])) };
      models.set(projectId, model);
    });
  }
  for (const t of tasks.rows) models.get(t.project_id)!.tasks.set(t.id, { id: t.id, status: t.status, position: Number(t.position), commentIds: [] });
  for (const c of comments.rows) models.get(c.project_id)!.tasks.get(c.task_id)?.commentIds.push(c.id);
  for (const m of members.rows) models.get(m.project_id)!.members.set(m.user_id, m.id);
  return projectIds.map((id) => models.get(id)!);
}

/**
 * Seeds a connection's generator from the seed and the ids its projects hold now: a fresh
 * database repeats exactly, and a rerun on the same rows never regenerates an id already in use.
 */
function workerSeed(seed: number | string, worker: number, models: readonly ProjectModel[]): string {
  const h = createHash('sha256');
  for (const m of models) {
    for (const t of m.tasks.values()) h.update(t.id).update(t.commentIds.join(''));
    for (const id of m.members.values()) h.update(id);
    for (const id of m.workspace?.members.values() ?? []) h.update(id);
  }
  return `${seed}:${worker}:${h.digest('hex').slice(0, 16)}`;
}

export interface WorkloadOptions extends WorkloadTenantsOptions {
  databaseUrl: string;
  /** Target committed transactions per second over all connections (Infinity: as fast as possible). */
  ratePerSec: number;
  /** Stop after this many transactions in total … */
  transactions?: number;
  /** … or after this long (whichever comes first; at least one bound or a signal is required). */
  durationMs?: number;
  /** Connections writing in parallel (default min(4, number of projects)). */
  concurrency?: number;
  signal?: AbortSignal;
  /** Called after each commit with the transactions committed so far (progress; a caller may abort on it). */
  onCommit?: (committedTransactions: number) => void;
  /** Keep, per committed transaction, what it did (for tests; costs memory on long runs). */
  recordTransactions?: boolean;
  plan?: PlanOptions;
}

export interface CommittedTransaction {
  connection: number;
  /** 32-bit transaction id as the WAL shows it (test_decoding, pgoutput Begin), not the xid8. */
  xid: string;
  workspaceId: string;
  projectId: string;
  /** The user the transaction's `taskflow.actor` message names. */
  actorId?: string;
  kinds: ChangeKind[];
  /** Row changes in the order they were written (= their order in the WAL). */
  changes: RowChange[];
}

export interface LatencySummary {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface WorkloadStats {
  tenants: WorkloadTenants;
  committedTransactions: number;
  rowChanges: number;
  changesByTable: Record<string, Record<RowOp, number>>;
  changesByKind: Partial<Record<ChangeKind, number>>;
  elapsedMs: number;
  achievedTxPerSec: number;
  /** Round trip of the whole transaction (sent as one batch: BEGIN … COMMIT), in ms. */
  commitLatencyMs: LatencySummary;
  /** In order of commit acknowledgement per connection, interleaved by acknowledgement time. */
  transactions?: CommittedTransaction[];
}

/** Nearest-rank percentiles of `values` (ms). */
export function summarizeLatencies(values: readonly number[]): LatencySummary {
  if (values.length === 0) return { p50: 0, p95: 0, p99: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return { p50: round(at(50)), p95: round(at(95)), p99: round(at(99)), max: round(sorted[sorted.length - 1]!) };
}

/** How many of `total` transactions connection `index` of `connections` runs. */
export function shareOf(total: number, index: number, connections: number): number {
  return Math.floor(total / connections) + (index < total % connections ? 1 : 0);
}

export async function runWorkload(options: WorkloadOptions): Promise<WorkloadStats> {
  const { transactions, durationMs, signal } = options;
  if (transactions === undefined && durationMs === undefined && signal === undefined) {
    throw new TaskflowError('WORKLOAD_BAD_OPTIONS', 'runWorkload needs transactions, durationMs or a signal to stop');
  }
  if (!(options.ratePerSec > 0)) throw new TaskflowError('WORKLOAD_BAD_OPTIONS', `ratePerSec must be > 0, got ${options.ratePerSec}`);
  const tenants = await setupWorkloadTenants(options.databaseUrl, options);
  const projectCount = options.workspaces * options.projectsPerWorkspace;
  const connections = Math.max(1, Math.min(options.concurrency ?? 4, projectCount));
  const perConnectionRate = options.ratePerSec / connections;

  const clients = await Promise.all(
    Array.from({ length: connections }, async (_, i) => {
      const c = new pg.Client({ connectionString: options.databaseUrl, application_name: `taskflow-workload-${i}` });
      await c.connect();
      return c;
    }),
  );
  const stats = {
    committed: 0,
    rows: 0,
    byTable: {} as Record<string, Record<RowOp, number>>,
    byKind: {} as Partial<Record<ChangeKind, number>>,
    latencies: [] as number[],
    transactions: options.recordTransactions ? ([] as CommittedTransaction[]) : undefined,
  };
  let failed = false;
  const start = performance.now();

  async function runConnection(index: number): Promise<void> {
    const client = clients[index]!;
    const all = await loadProjectModels(client, tenants);
    const mine = all.filter((_, i) => i % connections === index);
    const rng = new Rng(workerSeed(options.seed, index, mine));
    const quota = transactions === undefined ? Infinity : shareOf(transactions, index, connections);
    for (let k = 0; k < quota; k++) {
      // Open-loop pacing: transaction k is due at a fixed time; a late one goes at once.
      const due = Number.isFinite(perConnectionRate) ? ((k + index / connections) * 1000) / perConnectionRate : 0;
      if (durationMs !== undefined && due >= durationMs) break;
      if (failed || signal?.aborted) break;
      await sleepUntil(start + due, signal);
      if (signal?.aborted || (durationMs !== undefined && performance.now() - start >= durationMs)) break;

      const project = rng.pick(mine);
      const planned = planTransaction(rng, project, options.plan);
      const actorId = transactionActor(project, planned, k);
      // The actor message goes last, right before COMMIT (see actorSql).
      const sql = ['BEGIN', ...planned.flatMap((c) => changeSql(project, c)), ...(actorId ? [actorSql(actorId)] : []), 'SELECT pg_current_xact_id()::xid::text AS xid', 'COMMIT'].join(';\n');
      const sent = performance.now();
      let results: pg.QueryResult[];
      try {
        results = (await client.query(sql)) as unknown as pg.QueryResult[];
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw new TaskflowError('WORKLOAD_TX_FAILED', `workload transaction failed: ${(err as Error).message}`, { cause: err });
      }
      stats.latencies.push(performance.now() - sent);
      const changes = planned.flatMap(rowChanges);
      stats.committed += 1;
      options.onCommit?.(stats.committed);
      stats.rows += changes.length;
      for (const c of changes) {
        const t = (stats.byTable[c.table] ??= { insert: 0, update: 0, delete: 0 });
        t[c.op] += 1;
      }
      for (const p of planned) stats.byKind[p.kind] = (stats.byKind[p.kind] ?? 0) + 1;
      if (stats.transactions) {
        const xid = String(results.findLast((r) => r.command === 'SELECT')?.rows[0]?.xid);
        stats.transactions.push({ connection: index, xid, workspaceId: project.workspaceId, projectId: project.projectId, ...(actorId ? { actorId } : {}), kinds: planned.map((p) => p.kind), changes });
      }
    }
  }

  try {
    const outcomes = await Promise.allSettled(
      clients.map((_, i) =>
        runConnection(i).catch((err: unknown) => {
          failed = true;
          throw err;
        }),
      ),
    );
    const rejected = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (rejected) throw rejected.reason;
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
  const elapsedMs = performance.now() - start;
  return {
    tenants,
    committedTransactions: stats.committed,
    rowChanges: stats.rows,
    changesByTable: stats.byTable,
    changesByKind: stats.byKind,
    elapsedMs: Math.round(elapsedMs),
    achievedTxPerSec: Math.round((stats.committed / (elapsedMs / 1000)) * 10) / 10,
    commitLatencyMs: summarizeLatencies(stats.latencies),
    ...(stats.transactions ? { transactions: stats.transactions } : {}),
  };
}

function sleepUntil(at: number, signal: AbortSignal | undefined): Promise<void> {
  const ms = at - performance.now();
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
