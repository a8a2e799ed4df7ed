// The demo board's API against a real Postgres: reads a consistent board, writes validated edits.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { seedDemo, DEMO } from '../../db/seed.js';
import { addComment, createTask, loadBoard, parseTaskPatch, updateTask } from '../../clients/demo-board/api.js';
import { createTestDatabase } from '../support/stack.js';

let pool: pg.Pool;
const user = Object.values(DEMO.users)[0] as string;

beforeAll(async () => {
  const url = await createTestDatabase('board');
  await seedDemo(url);
  pool = new pg.Pool({ connectionString: url, max: 2 });
});

afterAll(async () => {
  await pool.end();
});

describe('demo board API', () => {
  it('loads the demo project with its tasks and comments', async () => {
    const board = await loadBoard(pool, DEMO.workspaceId, DEMO.projectId);
    expect(board.tasks.length).toBeGreaterThan(0);
    expect(board.tasks.every((t) => t.project_id === DEMO.projectId)).toBe(true);
    expect(board.users.length).toBeGreaterThan(0);
  });

  it('creates, moves and comments on a task', async () => {
    const { id } = await createTask(pool, DEMO.workspaceId, DEMO.projectId, user, { title: 'Write the launch post' });
    await updateTask(pool, DEMO.workspaceId, id, user, { status: 'review', title: 'Write the launch blog post' });
    await addComment(pool, DEMO.workspaceId, id, user, { body: 'Draft is in the doc' });
    const board = await loadBoard(pool, DEMO.workspaceId, DEMO.projectId);
    const task = board.tasks.find((t) => t.id === id);
    expect(task).toMatchObject({ status: 'review', title: 'Write the launch blog post' });
    expect(board.comments.filter((c) => c.task_id === id).map((c) => c.body)).toEqual(['Draft is in the doc']);
  });

  it('rejects bad input with a clear message and unknown rows with not found', async () => {
    expect(() => parseTaskPatch({ status: 'archived' })).toThrow(/status must be one of/);
    expect(() => parseTaskPatch({ owner: 'x' })).toThrow(/unknown field "owner"/);
    expect(() => parseTaskPatch({})).toThrow(/nothing to change/);
    await expect(updateTask(pool, DEMO.workspaceId, '00000000-0000-4000-8000-000000000000', user, { title: 'x' })).rejects.toThrow(/no task/);
    await expect(loadBoard(pool, DEMO.workspaceId, '00000000-0000-4000-8000-000000000000')).rejects.toThrow(/no project/);
  });
});
