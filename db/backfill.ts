// Step 2 of a live schema change (docs/SCHEMA-CHANGES.md): fill a new column of existing rows
// in small batches, each its own short transaction, in primary-key order from where the last
// batch ended — never one UPDATE of the whole table, which would hold every row's lock until it
// commits, stall writers and put the whole table on the change stream in one transaction.
import pg from 'pg';

export interface BackfillProgress {
  batches: number;
  updated: number;
  /** The last primary key a batch reached (resume point). */
  lastId: string | null;
}

export interface BackfillOptions {
  batchSize?: number;
  /** Pause between batches, so the writers and capture keep their share of the database. */
  pauseMs?: number;
  onBatch?: (progress: BackfillProgress) => void;
  signal?: AbortSignal;
}

/** The start of the message migration 0007 refuses with while tasks still lack their due_at. */
export const DUE_AT_BACKFILL_REQUIRED = 'tasks without due_at remain';

export function needsDueAtBackfill(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) if (e.message.includes(DUE_AT_BACKFILL_REQUIRED)) return true;
  return false;
}

/** Backfill a due_at of every task with a due_date (migration 0006), then build the index 0007 keeps. */
export async function backfillDueAt(databaseUrl: string, options: BackfillOptions = {}): Promise<BackfillProgress> {
  const batchSize = options.batchSize ?? 1000;
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'taskflow-backfill' });
  await client.connect();
  const progress: BackfillProgress = { batches: 0, updated: 0, lastId: null };
  try {
    for (;;) {
      if (options.signal?.aborted) return progress;
      // The same conversion as the sync trigger and the upcaster: the day at 00:00 UTC.
      const { rows } = await client.query<{ last: string | null; updated: number }>(
        `WITH picked AS (SELECT id FROM tasks WHERE ($1::uuid IS NULL OR id > $1::uuid) ORDER BY id LIMIT $2),
              done AS (UPDATE tasks t SET due_at = t.due_date::timestamp AT TIME ZONE 'UTC'
                         FROM picked WHERE t.id = picked.id AND t.due_at IS NULL AND t.due_date IS NOT NULL RETURNING 1)
         SELECT (SELECT id::text FROM picked ORDER BY id DESC LIMIT 1) AS last, (SELECT count(*) FROM done)::int AS updated`,
        [progress.lastId, batchSize],
      );
      const { last, updated } = rows[0]!;
      if (last === null) break;
      progress.batches += 1;
      progress.updated += updated;
      progress.lastId = last;
      options.onBatch?.({ ...progress });
      if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
    }
    // Built without blocking writers, before 0007 drops the old index with due_date.
    await client.query('CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_by_assignee_due ON tasks (assignee_id, due_at) WHERE assignee_id IS NOT NULL');
    return progress;
  } finally {
    await client.end();
  }
}
