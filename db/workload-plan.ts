// The pure half of the workload generator: a model of one project's rows and a planner that,
// from a seeded Rng, decides the next transaction's changes (and applies them to the model), plus
// the SQL and the row-change list for each planned change. No I/O here: db/workload.ts runs it.
import type { Rng } from './random.js';

export type TaskStatus = 'todo' | 'in_progress' | 'review' | 'done';
export const STATUSES: readonly TaskStatus[] = ['todo', 'in_progress', 'review', 'done'];

export interface TaskModel {
  id: string;
  status: TaskStatus;
  position: number;
  commentIds: string[];
}

/** What the generator knows about one project; kept in sync with the database by one worker. */
export interface ProjectModel {
  workspaceId: string;
  projectId: string;
  /** Users with a workspace-wide membership: the pool for assignees, authors and new members. */
  workspaceUsers: string[];
  tasks: Map<string, TaskModel>;
  /** Project memberships: user id → membership id. */
  members: Map<string, string>;
  /**
   * Workspace-wide memberships (user id → membership id), present on exactly one project model per
   * workspace: only its connection changes them, so connections never conflict.
   */
  workspace?: { owner: string; users: readonly string[]; members: Map<string, string> };
}

export type PlannedChange =
  | { kind: 'task.title'; taskId: string; title: string }
  | { kind: 'task.description'; taskId: string; description: string }
  | { kind: 'task.status'; taskId: string; status: TaskStatus; position: number }
  | { kind: 'task.position'; taskId: string; position: number }
  | { kind: 'task.assign'; taskId: string; assigneeId: string | null }
  | {
      kind: 'task.create';
      taskId: string;
      title: string;
      description: string | null;
      status: TaskStatus;
      position: number;
      priority: number;
      assigneeId: string | null;
      createdBy: string;
    }
  | { kind: 'task.delete'; taskId: string; commentIds: string[] }
  | { kind: 'comment.create'; commentId: string; taskId: string; authorId: string; body: string }
  | { kind: 'comment.edit'; commentId: string; body: string }
  | { kind: 'membership.add'; membershipId: string; userId: string; role: MemberRole }
  | { kind: 'membership.remove'; membershipId: string; userId: string }
  | { kind: 'membership.role'; membershipId: string; userId: string; role: MemberRole }
  | { kind: 'workspace.member.add'; membershipId: string; userId: string }
  | { kind: 'workspace.member.remove'; membershipId: string; userId: string };

type MemberRole = 'member' | 'viewer' | 'admin';
const MEMBER_ROLES: readonly MemberRole[] = ['member', 'member', 'viewer', 'admin'];

export type ChangeKind = PlannedChange['kind'];
export type RowOp = 'insert' | 'update' | 'delete';

export interface RowChange {
  table: 'tasks' | 'comments' | 'memberships';
  op: RowOp;
  id: string;
  /** A workspace-wide membership: the row has no project. */
  workspaceWide?: true;
}

/** Relative frequency of each kind of change (a busy board: mostly edits and moves). */
export const DEFAULT_MIX: Readonly<Record<ChangeKind, number>> = {
  'task.title': 14,
  'task.description': 8,
  'task.status': 18,
  'task.position': 14,
  'task.assign': 6,
  'task.create': 12,
  'task.delete': 4,
  'comment.create': 16,
  'comment.edit': 4,
  'membership.add': 3,
  'membership.remove': 3,
  'membership.role': 2,
  'workspace.member.add': 2,
  'workspace.member.remove': 2,
};

export interface PlanOptions {
  mix?: Readonly<Record<ChangeKind, number>>;
  /** Largest number of planned changes in one transaction (a task delete adds its comments). */
  maxTxSize?: number;
  /** Share of description edits that write a large (> 2 KB, TOASTed) description. */
  largeDescriptionShare?: number;
  /** Projects shrink no further than this by deletes, and grow no further than maxTasks by creates. */
  minTasks?: number;
  maxTasks?: number;
}

/** Transaction sizes: most requests change one row, some a handful, a few bulk edits up to max. */
export function pickTxSize(rng: Rng, max: number): number {
  const r = rng.next();
  if (r < 0.6 || max <= 1) return 1;
  if (r < 0.9) return rng.int(2, Math.min(5, max));
  return rng.int(Math.min(6, max), max);
}

/** Plans one transaction in `project` and applies it to the model. */
export function planTransaction(rng: Rng, project: ProjectModel, options: PlanOptions = {}): PlannedChange[] {
  const size = pickTxSize(rng, options.maxTxSize ?? 20);
  const changes: PlannedChange[] = [];
  for (let i = 0; i < size; i++) {
    const change = planChange(rng, project, options);
    applyChange(project, change);
    changes.push(change);
  }
  return changes;
}

function planChange(rng: Rng, project: ProjectModel, options: PlanOptions): PlannedChange {
  const minTasks = options.minTasks ?? 5;
  const maxTasks = options.maxTasks ?? 200;
  const nTasks = project.tasks.size;
  const weights = { ...(options.mix ?? DEFAULT_MIX) };
  if (nTasks === 0) return createTask(rng, project);
  if (nTasks <= minTasks) weights['task.delete'] = 0;
  if (nTasks >= maxTasks) weights['task.create'] = 0;
  if (availableMembers(project).length === 0) weights['membership.add'] = 0;
  if (project.members.size <= 1) weights['membership.remove'] = 0;
  const ws = project.workspace;
  if (!ws || joinableWorkspaceUsers(ws).length === 0) weights['workspace.member.add'] = 0;
  if (!ws || removableWorkspaceMembers(ws).length === 0) weights['workspace.member.remove'] = 0;
  const commented = [...project.tasks.values()].filter((t) => t.commentIds.length > 0);
  if (commented.length === 0) weights['comment.edit'] = 0;
  const kind = rng.weighted(weights);
  const task = () => rng.pick([...project.tasks.values()]);
  switch (kind) {
    case 'task.title':
      return { kind, taskId: task().id, title: taskTitle(rng) };
    case 'task.description':
      return { kind, taskId: task().id, description: rng.chance(options.largeDescriptionShare ?? 0.3) ? longText(rng, rng.int(4096, 8192)) : shortText(rng) };
    case 'task.status': {
      const t = task();
      const status = rng.pick(STATUSES.filter((s) => s !== t.status));
      return { kind, taskId: t.id, status, position: endOfColumn(project, status) };
    }
    case 'task.position': {
      const t = task();
      return { kind, taskId: t.id, position: positionBetweenNeighbours(rng, project, t) };
    }
    case 'task.assign':
      return { kind, taskId: task().id, assigneeId: rng.chance(0.15) ? null : rng.pick(project.workspaceUsers) };
    case 'task.create':
      return createTask(rng, project);
    case 'task.delete': {
      const t = task();
      return { kind, taskId: t.id, commentIds: [...t.commentIds] };
    }
    case 'comment.create':
      return { kind, commentId: rng.uuid(), taskId: task().id, authorId: rng.pick(project.workspaceUsers), body: commentBody(rng) };
    case 'comment.edit':
      return { kind, commentId: rng.pick(rng.pick(commented).commentIds), body: commentBody(rng) };
    case 'membership.add':
      return { kind, membershipId: rng.uuid(), userId: rng.pick(availableMembers(project)), role: rng.pick(MEMBER_ROLES) };
    case 'membership.role': {
      const [userId, membershipId] = rng.pick([...project.members.entries()]);
      return { kind, membershipId, userId, role: rng.pick(MEMBER_ROLES) };
    }
    case 'workspace.member.add':
      return { kind, membershipId: rng.uuid(), userId: rng.pick(joinableWorkspaceUsers(ws!)) };
    case 'workspace.member.remove': {
      const [userId, membershipId] = rng.pick(removableWorkspaceMembers(ws!));
      return { kind, membershipId, userId };
    }
    case 'membership.remove': {
      const [userId, membershipId] = rng.pick([...project.members.entries()]);
      return { kind, membershipId, userId };
    }
  }
}

function createTask(rng: Rng, project: ProjectModel): PlannedChange {
  const status = rng.weighted({ todo: 6, in_progress: 2, review: 1, done: 1 }) as TaskStatus;
  return {
    kind: 'task.create',
    taskId: rng.uuid(),
    title: taskTitle(rng),
    description: rng.chance(0.5) ? shortText(rng) : null,
    status,
    position: endOfColumn(project, status),
    priority: rng.int(0, 4),
    assigneeId: rng.chance(0.7) ? rng.pick(project.workspaceUsers) : null,
    createdBy: rng.pick(project.workspaceUsers),
  };
}

function joinableWorkspaceUsers(ws: NonNullable<ProjectModel['workspace']>): string[] {
  return ws.users.filter((u) => !ws.members.has(u));
}

/** Everyone but the owner, and never below two members. */
function removableWorkspaceMembers(ws: NonNullable<ProjectModel['workspace']>): [string, string][] {
  return ws.members.size <= 2 ? [] : [...ws.members.entries()].filter(([u]) => u !== ws.owner);
}

function availableMembers(project: ProjectModel): string[] {
  return project.workspaceUsers.filter((u) => !project.members.has(u));
}

function endOfColumn(project: ProjectModel, status: TaskStatus): number {
  let max = 0;
  for (const t of project.tasks.values()) if (t.status === status && t.position > max) max = t.position;
  return max + 1024;
}

/** Fractional indexing as boards do it: the midpoint between two neighbours in the column. */
function positionBetweenNeighbours(rng: Rng, project: ProjectModel, moved: TaskModel): number {
  const column = [...project.tasks.values()]
    .filter((t) => t.status === moved.status && t.id !== moved.id)
    .map((t) => t.position)
    .sort((a, b) => a - b);
  const slot = rng.int(0, column.length);
  const before = slot === 0 ? 0 : column[slot - 1]!;
  const after = slot === column.length ? before + 2048 : column[slot]!;
  return (before + after) / 2;
}

export function applyChange(project: ProjectModel, change: PlannedChange): void {
  switch (change.kind) {
    case 'task.status': {
      const t = project.tasks.get(change.taskId)!;
      t.status = change.status;
      t.position = change.position;
      return;
    }
    case 'task.position':
      project.tasks.get(change.taskId)!.position = change.position;
      return;
    case 'task.create':
      project.tasks.set(change.taskId, { id: change.taskId, status: change.status, position: change.position, commentIds: [] });
      return;
    case 'task.delete':
      project.tasks.delete(change.taskId);
      return;
    case 'comment.create':
      project.tasks.get(change.taskId)!.commentIds.push(change.commentId);
      return;
    case 'membership.add':
      project.members.set(change.userId, change.membershipId);
      return;
    case 'membership.remove':
      project.members.delete(change.userId);
      return;
    case 'workspace.member.add':
      project.workspace!.members.set(change.userId, change.membershipId);
      return;
    case 'workspace.member.remove':
      project.workspace!.members.delete(change.userId);
      return;
    case 'task.title':
    case 'task.description':
    case 'task.assign':
    case 'comment.edit':
    case 'membership.role':
      return;
  }
}

/** The rows a planned change writes, in the order its SQL writes them. */
export function rowChanges(change: PlannedChange): RowChange[] {
  switch (change.kind) {
    case 'task.title':
    case 'task.description':
    case 'task.status':
    case 'task.position':
    case 'task.assign':
      return [{ table: 'tasks', op: 'update', id: change.taskId }];
    case 'task.create':
      return [{ table: 'tasks', op: 'insert', id: change.taskId }];
    case 'task.delete':
      return [...change.commentIds.map((id): RowChange => ({ table: 'comments', op: 'delete', id })), { table: 'tasks', op: 'delete', id: change.taskId }];
    case 'comment.create':
      return [{ table: 'comments', op: 'insert', id: change.commentId }];
    case 'comment.edit':
      return [{ table: 'comments', op: 'update', id: change.commentId }];
    case 'membership.role':
      return [{ table: 'memberships', op: 'update', id: change.membershipId }];
    case 'workspace.member.add':
      return [{ table: 'memberships', op: 'insert', id: change.membershipId, workspaceWide: true }];
    case 'workspace.member.remove':
      return [{ table: 'memberships', op: 'delete', id: change.membershipId, workspaceWide: true }];
    case 'membership.add':
      return [{ table: 'memberships', op: 'insert', id: change.membershipId }];
    case 'membership.remove':
      return [{ table: 'memberships', op: 'delete', id: change.membershipId }];
  }
}

/** A SQL literal, as pg's escapeLiteral writes it (E'' form when there are backslashes). */
export function sqlLiteral(value: string | number | null): string {
  if (value === null) return 'NULL';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`not a finite number: ${value}`);
    return String(value);
  }
  const quoted = `'${value.replace(/'/g, "''").replace(/\\/g, '\\\\')}'`;
  return value.includes('\\') ? `E${quoted}` : quoted;
}

/**
 * Who makes transaction number `k` of a project: the author of the first comment or creator of
 * the first task it plans, else one of the workspace's users in turn. Chosen without the Rng so
 * the planned transactions stay what they were for a seed.
 */
export function transactionActor(project: ProjectModel, planned: readonly PlannedChange[], k: number): string | undefined {
  for (const c of planned) {
    if (c.kind === 'comment.create') return c.authorId;
    if (c.kind === 'task.create') return c.createdBy;
  }
  const users = project.workspaceUsers;
  return users.length > 0 ? users[k % users.length] : undefined;
}

/**
 * The statement naming a transaction's actor: a transactional logical decoding message capture
 * attaches to its events. Emitted after the transaction's changes: a replication session that
 * restarts (capture killed) was seen to re-decode a transaction without a message written as its
 * first record, while one written after the changes comes whenever they do.
 */
export function actorSql(userId: string): string {
  return `SELECT pg_logical_emit_message(true, 'taskflow.actor', ${sqlLiteral(JSON.stringify({ userId, via: 'workload' }))})`;
}

/** The statements that carry out a change; every statement names the row by its full identity. */
export function changeSql(project: ProjectModel, change: PlannedChange): string[] {
  const L = sqlLiteral;
  const inProject = `workspace_id = ${L(project.workspaceId)} AND project_id = ${L(project.projectId)}`;
  const updateTask = (taskId: string, set: string) => `UPDATE tasks SET ${set}, updated_at = now() WHERE id = ${L(taskId)} AND ${inProject}`;
  switch (change.kind) {
    case 'task.title':
      return [updateTask(change.taskId, `title = ${L(change.title)}`)];
    case 'task.description':
      return [updateTask(change.taskId, `description = ${L(change.description)}`)];
    case 'task.status':
      return [updateTask(change.taskId, `status = ${L(change.status)}, position = ${L(change.position)}`)];
    case 'task.position':
      return [updateTask(change.taskId, `position = ${L(change.position)}`)];
    case 'task.assign':
      return [updateTask(change.taskId, `assignee_id = ${L(change.assigneeId)}`)];
    case 'task.create':
      return [
        `INSERT INTO tasks (id, workspace_id, project_id, title, description, status, priority, assignee_id, position, created_by) VALUES (${[
          change.taskId,
          project.workspaceId,
          project.projectId,
          change.title,
          change.description,
          change.status,
          change.priority,
          change.assigneeId,
          change.position,
          change.createdBy,
        ]
          .map(L)
          .join(', ')})`,
      ];
    case 'task.delete':
      // Comments first, one statement each, so the WAL order is the order rowChanges() reports.
      return [...change.commentIds.map((id) => `DELETE FROM comments WHERE id = ${L(id)} AND ${inProject}`), `DELETE FROM tasks WHERE id = ${L(change.taskId)} AND ${inProject}`];
    case 'comment.create':
      return [
        `INSERT INTO comments (id, workspace_id, project_id, task_id, author_id, body) VALUES (${[change.commentId, project.workspaceId, project.projectId, change.taskId, change.authorId, change.body]
          .map(L)
          .join(', ')})`,
      ];
    case 'comment.edit':
      return [`UPDATE comments SET body = ${L(change.body)}, updated_at = now() WHERE id = ${L(change.commentId)} AND ${inProject}`];
    case 'membership.role':
      return [`UPDATE memberships SET role = ${L(change.role)} WHERE id = ${L(change.membershipId)} AND workspace_id = ${L(project.workspaceId)} AND user_id = ${L(change.userId)}`];
    case 'membership.add':
      return [
        `INSERT INTO memberships (id, workspace_id, user_id, project_id, role) VALUES (${[change.membershipId, project.workspaceId, change.userId, project.projectId, change.role].map(L).join(', ')})`,
      ];
    case 'workspace.member.add':
      return [`INSERT INTO memberships (id, workspace_id, user_id, project_id, role) VALUES (${[change.membershipId, project.workspaceId, change.userId, null, 'member'].map(L).join(', ')})`];
    case 'workspace.member.remove':
    case 'membership.remove':
      return [`DELETE FROM memberships WHERE id = ${L(change.membershipId)} AND workspace_id = ${L(project.workspaceId)} AND user_id = ${L(change.userId)}`];
  }
}

// ---- text that looks like a work tracker's -------------------------------------------------

const VERBS = ['Fix', 'Update', 'Review', 'Draft', 'Design', 'Migrate', 'Refactor', 'Test', 'Document', 'Plan', 'Ship', 'Investigate', 'Clean up', 'Automate', 'Prototype'];
const THINGS = [
  'onboarding flow',
  'billing page',
  'search results ranking',
  'CSV export',
  'password reset email',
  'dashboard filters',
  'API rate limits',
  'mobile navigation',
  'release notes',
  'Q3 roadmap',
  'SSO configuration',
  'invoice PDF layout',
  'notification settings',
  'data retention policy',
  'checkout form validation',
  'customer interview notes',
  'staging environment',
  'error budget report',
];
const SUFFIXES = ['', '', '', ' for enterprise plan', ' (follow-up)', ' before launch', ' on Android', ' in EU region', ' per legal feedback'];
const WORDS = (
  'the a we should before after because customer team release design review data page user flow issue bug fix test plan ' +
  'metric goal deadline scope risk owner blocker dependency estimate sprint backlog feedback change request approval budget ' +
  'legal security performance latency error timeout retry cache index query report dashboard export import sync mobile web ' +
  'email notification invoice payment account workspace project task comment board column status priority assignee due'
).split(' ');
const COMMENTS = [
  'Looks good to me.',
  'Can we get this into the next sprint?',
  'Blocked on the API change, will pick up after.',
  'I pushed a first draft, feedback welcome.',
  'Moved to review.',
  'Customer confirmed the fix works on their side.',
  'This needs a design pass first.',
  'Reassigning while I am out next week.',
  'Added screenshots to the description.',
  'Estimate is two days including tests.',
];

export function taskTitle(rng: Rng): string {
  return `${rng.pick(VERBS)} ${rng.pick(THINGS)}${rng.pick(SUFFIXES)}`;
}

function commentBody(rng: Rng): string {
  return rng.chance(0.7) ? rng.pick(COMMENTS) : `${rng.pick(COMMENTS)} ${shortText(rng)}`;
}

function shortText(rng: Rng): string {
  return sentence(rng) + (rng.chance(0.5) ? ` ${sentence(rng)}` : '');
}

function sentence(rng: Rng): string {
  const words = Array.from({ length: rng.int(6, 16) }, () => rng.pick(WORDS));
  const s = words.join(' ');
  return `${s.charAt(0).toUpperCase()}${s.slice(1)}.`;
}

/**
 * A long description (meeting notes, logs pasted in) of at least `minLength` characters. The
 * ticket references and hashes keep pglz from compressing it below the 2 KB TOAST threshold.
 */
export function longText(rng: Rng, minLength: number): string {
  const parts: string[] = [];
  let length = 0;
  while (length < minLength) {
    const line = rng.chance(0.3)
      ? `- ${rng.pick(THINGS)}: see TF-${rng.int(1000, 99999)}, commit ${rng.uuid().replace(/-/g, '').slice(0, 12)}, trace ${rng.uuid()}`
      : sentence(rng);
    parts.push(line);
    length += line.length + 1;
  }
  return parts.join('\n');
}
