// The demo board's read/write API over the source Postgres: what a TaskFlow app server would do.
// Writes go to Postgres only; the board learns about them, like about every other change,
// through the pipeline (capture → Kinesis → router → MQTT).
import type { Pool, PoolClient } from 'pg';
import { randomUUID } from 'node:crypto';
import { TaskflowError } from '../../lib/errors.js';

export const TASK_STATUSES = ['todo', 'in_progress', 'review', 'done'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export interface TaskRow {
  id: string;
  workspace_id: string;
  project_id: string;
  title: string;
  description: string | null;
  status: TaskStatus;
  priority: number;
  assignee_id: string | null;
  /** task v2: a list (possibly empty) and a due time (RFC 3339 UTC) or none. */
  labels: string[];
  due_at: string | null;
  position: number;
  updated_at: string;
}

export interface CommentRow {
  id: string;
  task_id: string;
  author_id: string | null;
  body: string;
  created_at: string;
}

export interface BoardState {
  workspace: { id: string; name: string };
  project: { id: string; name: string; description: string | null };
  tasks: TaskRow[];
  comments: CommentRow[];
  users: { id: string; display_name: string }[];
}

export class BadRequest extends TaskflowError {
  constructor(message: string) {
    super('BAD_REQUEST', message);
  }
}

export class NotFound extends TaskflowError {
  constructor(message: string) {
    super('NOT_FOUND', message);
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function requireUuid(value: unknown, name: string): string {
  if (typeof value !== 'string' || !UUID.test(value)) throw new BadRequest(`${name} must be a UUID`);
  return value;
}

function requireText(value: unknown, name: string, max: number): string {
  if (typeof value !== 'string' || value.trim() === '') throw new BadRequest(`${name} must be a non-empty string`);
  if (value.length > max) throw new BadRequest(`${name} is longer than ${max} characters`);
  return value;
}

export interface TaskPatch {
  title?: string;
  description?: string | null;
  status?: TaskStatus;
  position?: number;
}

/** Validates a PATCH body: only known fields, each of the right type. */
export function parseTaskPatch(body: unknown): TaskPatch {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequest('body must be a JSON object');
  const patch: TaskPatch = {};
  for (const [k, v] of Object.entries(body)) {
    switch (k) {
      case 'title':
        patch.title = requireText(v, 'title', 500);
        break;
      case 'description':
        if (v !== null && typeof v !== 'string') throw new BadRequest('description must be a string or null');
        patch.description = v;
        break;
      case 'status':
        if (!(TASK_STATUSES as readonly unknown[]).includes(v)) throw new BadRequest(`status must be one of ${TASK_STATUSES.join(', ')}`);
        patch.status = v as TaskStatus;
        break;
      case 'position':
        if (typeof v !== 'number' || !Number.isFinite(v)) throw new BadRequest('position must be a finite number');
        patch.position = v;
        break;
      default:
        throw new BadRequest(`unknown field "${k}"`);
    }
  }
  if (Object.keys(patch).length === 0) throw new BadRequest('nothing to change');
  return patch;
}

export async function loadBoard(pool: Pool, workspaceId: string, projectId: string): Promise<BoardState> {
  const client = await pool.connect();
  try {
    // One snapshot for the whole board so tasks and comments agree with each other.
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const project = await client.query<{ id: string; name: string; description: string | null; ws_name: string }>(
      `SELECT p.id, p.name, p.description, w.name AS ws_name
         FROM projects p JOIN workspaces w ON w.id = p.workspace_id
        WHERE p.workspace_id = $1 AND p.id = $2`,
      [workspaceId, projectId],
    );
    const row = project.rows[0];
    if (!row) throw new NotFound(`no project ${projectId} in workspace ${workspaceId}`);
    const tasks = await client.query<TaskRow>(
      `SELECT id, workspace_id, project_id, title, description, status, priority, assignee_id,
              labels, to_char(due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS due_at, position, updated_at
         FROM tasks WHERE workspace_id = $1 AND project_id = $2 ORDER BY status, position, id`,
      [workspaceId, projectId],
    );
    const comments = await client.query<CommentRow>(
      `SELECT id, task_id, author_id, body, created_at FROM comments
        WHERE workspace_id = $1 AND project_id = $2 ORDER BY created_at, id`,
      [workspaceId, projectId],
    );
    const users = await client.query<{ id: string; display_name: string }>(
      `SELECT DISTINCT u.id, u.display_name FROM users u JOIN memberships m ON m.user_id = u.id
        WHERE m.workspace_id = $1 AND (m.project_id IS NULL OR m.project_id = $2) ORDER BY u.display_name`,
      [workspaceId, projectId],
    );
    await client.query('COMMIT');
    return {
      workspace: { id: workspaceId, name: row.ws_name },
      project: { id: row.id, name: row.name, description: row.description },
      tasks: tasks.rows,
      comments: comments.rows,
      users: users.rows,
    };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/**
 * Runs `write` in a transaction that names its actor: a transactional logical decoding message
 * (`taskflow.actor`) that capture attaches to the transaction's change events as
 * `data.source.actor`, so the audit trail knows who made each change without a column in every table.
 */
export async function asActor<T>(pool: Pool, userId: string, write: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await write(client);
    // After the changes, as db/workload-plan.ts actorSql explains.
    await client.query("SELECT pg_logical_emit_message(true, 'taskflow.actor', $1)", [JSON.stringify({ userId, via: 'demo-board' })]);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

export async function createTask(pool: Pool, workspaceId: string, projectId: string, userId: string, body: unknown): Promise<{ id: string }> {
  const input = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const title = requireText(input.title, 'title', 500);
  const status = input.status === undefined ? 'todo' : parseTaskPatch({ status: input.status }).status;
  const id = randomUUID();
  const result = await asActor(pool, userId, (client) =>
    client.query(
      `INSERT INTO tasks (id, workspace_id, project_id, title, status, position, created_by)
       SELECT $1, $2, $3, $4, $5, coalesce(max(position), 0) + 1, $6
         FROM tasks WHERE workspace_id = $2 AND project_id = $3 AND status = $5`,
      [id, workspaceId, projectId, title, status, userId],
    ),
  );
  if (result.rowCount !== 1) throw new NotFound(`no project ${projectId} in workspace ${workspaceId}`);
  return { id };
}

export async function updateTask(pool: Pool, workspaceId: string, taskId: string, userId: string, body: unknown): Promise<void> {
  const patch = parseTaskPatch(body);
  const sets: string[] = [];
  const values: unknown[] = [workspaceId, taskId];
  for (const [column, value] of Object.entries(patch)) {
    values.push(value);
    sets.push(`${column} = $${values.length}`);
  }
  const result = await asActor(pool, userId, (client) => client.query(`UPDATE tasks SET ${sets.join(', ')}, updated_at = now() WHERE workspace_id = $1 AND id = $2`, values));
  if (result.rowCount !== 1) throw new NotFound(`no task ${taskId} in workspace ${workspaceId}`);
}

export async function addComment(pool: Pool, workspaceId: string, taskId: string, userId: string, body: unknown): Promise<{ id: string }> {
  const input = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const text = requireText(input.body, 'body', 10_000);
  const id = randomUUID();
  const result = await asActor(pool, userId, (client) =>
    client.query(
      `INSERT INTO comments (id, workspace_id, project_id, task_id, author_id, body)
       SELECT $1, workspace_id, project_id, id, $3, $4 FROM tasks WHERE workspace_id = $2 AND id = $5`,
      [id, workspaceId, userId, text, taskId],
    ),
  );
  if (result.rowCount !== 1) throw new NotFound(`no task ${taskId} in workspace ${workspaceId}`);
  return { id };
}
