// The source database's erasure sink (gdpr/POLICY.md `source-db`): the subject's users row,
// memberships and comments are deleted, their id is taken off tasks and projects, the descriptions
// they wrote are cleared, and their email is cut out of anyone's task or comment text. One
// transaction, so a purge is all or nothing and a repeat finds nothing left to change. The
// deletes and updates are ordinary changes: capture carries them down the stream like any other
// (as the gdpr processor's, by the actor message), so every reader sees the rows go.
//
// memberships.user_id is NOT NULL and a membership of an erased user grants nothing, so the
// subject's memberships are deleted rather than anonymised. The display name is not searched for
// in other people's text: a name is not unique, and the scan would "find" every namesake.
import pg from 'pg';
import { type Env, readSettings, urlSetting } from '../lib/config.js';
import { type ErasureSink, type PurgeResult, type ScanResult, type SinkSteps, type SubjectIdentifiers, bindSink } from '../lib/erasure.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

/** Who capture names as the actor of the purge's changes (never the subject). */
export const ERASURE_ACTOR = 'service:gdpr';
/** What replaces the subject's email where it appears in other people's text. */
export const ERASED_MARK = '[erased]';

const regexpLiteral = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const authoredIds = (ids: SubjectIdentifiers, table: 'tasks' | 'comments') => ids.authored.filter((a) => a.table === table).map((a) => a.id);

/** The statements of a purge, each returning the rows it changed; the users row goes last (every reference to it is gone by then). */
function purgeStatements(ids: SubjectIdentifiers): { sql: string; params: unknown[] }[] {
  const s = ids.subject;
  const email = ids.email ? [ids.email, regexpLiteral(ids.email), ERASED_MARK] : null;
  return [
    { sql: 'DELETE FROM comments WHERE author_id = $1 OR id = ANY($2::uuid[])', params: [s, authoredIds(ids, 'comments')] },
    { sql: 'DELETE FROM memberships WHERE user_id = $1', params: [s] },
    {
      sql: `UPDATE tasks SET
              created_by = CASE WHEN created_by = $1 THEN NULL ELSE created_by END,
              assignee_id = CASE WHEN assignee_id = $1 THEN NULL ELSE assignee_id END,
              description = CASE WHEN created_by = $1 OR id = ANY($2::uuid[]) THEN NULL ELSE description END,
              updated_at = now()
            WHERE created_by = $1 OR assignee_id = $1 OR (id = ANY($2::uuid[]) AND description IS NOT NULL)`,
      params: [s, authoredIds(ids, 'tasks')],
    },
    { sql: 'UPDATE projects SET created_by = NULL, updated_at = now() WHERE created_by = $1', params: [s] },
    ...(email
      ? [
          { sql: `UPDATE tasks SET description = regexp_replace(description, $2, $3, 'gi'), updated_at = now() WHERE strpos(lower(description), lower($1)) > 0`, params: email },
          { sql: `UPDATE comments SET body = regexp_replace(body, $2, $3, 'gi'), updated_at = now() WHERE strpos(lower(body), lower($1)) > 0`, params: email },
        ]
      : []),
    { sql: 'DELETE FROM users WHERE id = $1', params: [s] },
  ];
}

export async function purgeSourceDb(pool: pg.Pool, ids: SubjectIdentifiers, onProgress?: (done: number) => void): Promise<PurgeResult> {
  let changed = 0;
  const db = await pool.connect();
  try {
    await db.query('BEGIN');
    await db.query("SELECT pg_logical_emit_message(true, 'taskflow.actor', $1)", [JSON.stringify({ userId: ERASURE_ACTOR })]);
    for (const { sql, params } of purgeStatements(ids)) {
      changed += (await db.query(sql, params)).rowCount ?? 0;
      onProgress?.(changed);
    }
    await db.query('COMMIT');
  } catch (err) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    db.release();
  }
  return { changed };
}

/**
 * Reads every users, tasks, comments, projects and memberships row (`scanned`) and counts those
 * still holding the subject: their id in any column, their users row by email, their email in
 * any text, or the plaintext of a task or comment they wrote, still on that row.
 */
export async function scanSourceDb(db: Queryable, ids: SubjectIdentifiers): Promise<ScanResult> {
  const email = ids.email ?? '';
  const authored = ids.authored;
  const { rows } = await db.query<{ scanned: string; found: string }>(
    `WITH authored AS (SELECT * FROM unnest($3::text[], $4::uuid[], $5::text[]) AS a(tbl, id, text)),
     per_table AS (
       SELECT count(*) AS scanned, count(*) FILTER (WHERE id = $1 OR ($2 <> '' AND lower(email) = lower($2))) AS found FROM users
       UNION ALL
       SELECT count(*), count(*) FILTER (WHERE created_by = $1 OR assignee_id = $1
           OR ($2 <> '' AND strpos(lower(description), lower($2)) > 0)
           OR EXISTS (SELECT 1 FROM authored a WHERE a.tbl = 'tasks' AND a.id = t.id AND strpos(t.description, a.text) > 0)) FROM tasks t
       UNION ALL
       SELECT count(*), count(*) FILTER (WHERE author_id = $1
           OR ($2 <> '' AND strpos(lower(body), lower($2)) > 0)
           OR EXISTS (SELECT 1 FROM authored a WHERE a.tbl = 'comments' AND a.id = c.id)) FROM comments c
       UNION ALL
       SELECT count(*), count(*) FILTER (WHERE created_by = $1) FROM projects
       UNION ALL
       SELECT count(*), count(*) FILTER (WHERE user_id = $1) FROM memberships
     )
     SELECT sum(scanned) AS scanned, sum(found) AS found FROM per_table`,
    [ids.subject, email, authored.map((a) => a.table), authored.map((a) => a.id), authored.map((a) => a.text)],
  );
  return { scanned: Number(rows[0]!.scanned), found: Number(rows[0]!.found) };
}

export const SOURCE_DB_SINK: SinkSteps<pg.Pool> = { sink: 'source-db', purge: purgeSourceDb, scan: scanSourceDb };

export const ERASURE_SINKS = [SOURCE_DB_SINK] as const;

const SINK_SETTINGS = {
  databaseUrl: urlSetting({ name: 'DATABASE_URL', meaning: 'The source database the source-db erasure sink purges (as the tables owner, not the replication role).' }),
};

export async function openErasureSinks(env: Env): Promise<{ sinks: ErasureSink[]; close(): Promise<void> }> {
  // A pool, not one client: a connection the database dropped is replaced on the next purge.
  const pool = new pg.Pool({ connectionString: readSettings(env, SINK_SETTINGS).databaseUrl, max: 2 });
  // An idle connection the database drops is an 'error' on the pool; the next query reconnects.
  pool.on('error', () => undefined);
  return { sinks: [bindSink(SOURCE_DB_SINK, pool)], close: () => pool.end() };
}
