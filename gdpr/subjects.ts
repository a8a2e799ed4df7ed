// The source database side of a request: who the subject is (by id or email), what identifies
// their data (captured before anything is purged), and the request row that puts the request on
// the stream (db/migrations/0008_gdpr_erasure_requests.sql; capture turns its insert into a
// taskflow.gdpr.erasure_requested event).
import type pg from 'pg';
import type { SubjectIdentifiers } from '../lib/erasure.js';
import { TaskflowError } from '../lib/errors.js';
import type { ErasureRequest } from './processor.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Queryable = Pick<pg.ClientBase, 'query'>;

/** The users.id that `user` (an id or an email) names; an unknown one is an error, never a silent success. */
export async function resolveSubject(db: Queryable, user: string): Promise<string> {
  const byId = UUID.test(user);
  const rows = (await db.query<{ id: string }>(byId ? 'SELECT id FROM users WHERE id = $1' : 'SELECT id FROM users WHERE lower(email) = lower($1)', [user])).rows;
  if (rows.length === 1) return rows[0]!.id;
  throw new TaskflowError('GDPR_UNKNOWN_SUBJECT', `no user ${byId ? 'with id' : 'with email'} ${user} in the source database: nothing was recorded`);
}

/** What a verification scan looks for: the subject's id, email, display name and the plaintext of their authored content. */
export async function captureIdentifiers(db: Queryable, subject: string): Promise<SubjectIdentifiers> {
  const user = (await db.query<{ email: string; display_name: string }>('SELECT email, display_name FROM users WHERE id = $1', [subject])).rows[0];
  const authored = await db.query<{ table: 'tasks' | 'comments'; id: string; text: string }>(
    `SELECT 'tasks' AS table, id::text, description AS text FROM tasks WHERE created_by = $1 AND coalesce(description, '') <> ''
     UNION ALL
     SELECT 'comments', id::text, body FROM comments WHERE author_id = $1 AND coalesce(body, '') <> ''
     ORDER BY 1, 2`,
    [subject],
  );
  return { subject, email: user?.email ?? null, displayName: user?.display_name ?? null, authored: authored.rows };
}

/** Records the request in the source database, once per request (a repeat changes nothing). */
export async function recordOnStream(db: Queryable, r: ErasureRequest): Promise<void> {
  await db.query('INSERT INTO gdpr_erasure_requests (id, user_id, requested_at, deadline, reason) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING', [r.requestId, r.subject, r.requestedAt, r.deadline, r.reason ?? null]);
}
