// The source-db erasure sink (db/erasure-sink.ts) on the real Postgres: a subject with a users
// row, a membership, a project and tasks they created, a task assigned to them, comments they
// wrote, and their email in someone else's text. Purge then scan finds nothing, a repeat purge
// changes nothing, the other user's rows stay (their comment minus the email).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { ERASED_MARK, openErasureSinks } from '../../db/erasure-sink.js';
import { captureIdentifiers } from '../../gdpr/subjects.js';
import type { ErasureSink } from '../../lib/erasure.js';
import { createTestDatabase } from '../support/stack.js';

let db: pg.Client;
let sink: ErasureSink;
let close: () => Promise<void>;

beforeAll(async () => {
  const url = await createTestDatabase('gdpr_sink_db');
  db = new pg.Client({ connectionString: url });
  await db.connect();
  const opened = await openErasureSinks({ DATABASE_URL: url });
  [sink] = opened.sinks as [ErasureSink];
  close = opened.close;
});

afterAll(async () => {
  await close?.();
  await db?.end();
});

describe('source-db erasure sink', () => {
  it('purge deletes the users row, memberships and comments, takes the id off tasks and projects; scan then finds 0; a repeat changes nothing', async () => {
    const [ws, project, own, assigned, subject, other] = [randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const email = `Erase.${subject.slice(0, 8)}@example.com`;
    await db.query('INSERT INTO workspaces (id, name, slug) VALUES ($1, $2, $3)', [ws, 'W', `w-${ws}`]);
    await db.query('INSERT INTO users (id, email, display_name) VALUES ($1, $2, $3), ($4, $5, $6)', [subject, email, 'Grace Hopper', other, `o${other.slice(0, 8)}@example.com`, 'Other']);
    await db.query("INSERT INTO memberships (id, workspace_id, user_id, role) VALUES ($1, $2, $3, 'member'), ($4, $2, $5, 'owner')", [randomUUID(), ws, subject, randomUUID(), other]);
    await db.query('INSERT INTO projects (id, workspace_id, name, created_by) VALUES ($1, $2, $3, $4)', [project, ws, 'P', subject]);
    await db.query('INSERT INTO tasks (id, workspace_id, project_id, title, description, created_by) VALUES ($1, $2, $3, $4, $5, $6)', [own, ws, project, 'mine', `my plan, ask ${email}`, subject]);
    await db.query('INSERT INTO tasks (id, workspace_id, project_id, title, description, created_by, assignee_id) VALUES ($1, $2, $3, $4, $5, $6, $7)', [assigned, ws, project, 'theirs', 'the other user wrote this', other, subject]);
    const otherComment = randomUUID();
    await db.query('INSERT INTO comments (id, workspace_id, project_id, task_id, author_id, body) VALUES ($1, $2, $3, $4, $5, $6), ($7, $2, $3, $4, $8, $9)', [randomUUID(), ws, project, assigned, subject, 'a private remark', otherComment, other, `mail ${email.toLowerCase()} about it`]);
    const ids = await captureIdentifiers(db, subject);
    expect(ids.authored.map((a) => a.table).sort()).toEqual(['comments', 'tasks']);

    const before = await sink.scan(ids);
    expect(before.found).toBe(7); // users, membership, project, 2 tasks, 2 comments (theirs, and the other user's with their email)
    const progress: number[] = [];
    const first = await sink.purge(ids, (n) => progress.push(n));
    expect(first.changed).toBe(7);
    expect(progress.at(-1)).toBe(7);
    expect(await sink.scan(ids)).toEqual({ scanned: before.scanned - 3, found: 0 }); // users row, membership, comment gone
    expect(await sink.purge(ids)).toEqual({ changed: 0 });
    expect((await sink.scan(ids)).found).toBe(0);

    // What is not the subject's stays: the other user, their task (unassigned), their comment (minus the email).
    expect((await db.query('SELECT id FROM users WHERE id = $1', [other])).rowCount).toBe(1);
    expect((await db.query('SELECT description, created_by, assignee_id FROM tasks WHERE id = $1', [assigned])).rows).toEqual([{ description: 'the other user wrote this', created_by: other, assignee_id: null }]);
    expect((await db.query('SELECT title, description, created_by FROM tasks WHERE id = $1', [own])).rows).toEqual([{ title: 'mine', description: null, created_by: null }]);
    expect((await db.query('SELECT body FROM comments WHERE id = $1', [otherComment])).rows).toEqual([{ body: `mail ${ERASED_MARK} about it` }]);
  });

  it('a subject with no data: purge changes only the users row, scan finds 0', async () => {
    const subject = randomUUID();
    await db.query('INSERT INTO users (id, email, display_name) VALUES ($1, $2, $3)', [subject, `n${subject.slice(0, 8)}@example.com`, 'Nobody']);
    const ids = await captureIdentifiers(db, subject);
    expect(await sink.purge(ids)).toEqual({ changed: 1 });
    expect((await sink.scan(ids)).found).toBe(0);
  });
});
