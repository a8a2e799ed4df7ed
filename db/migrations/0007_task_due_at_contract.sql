-- Schema change task v2, step 3 of 3: CONTRACT (0006 expanded, `taskflow db backfill due-at`
-- filled `due_at` of the existing rows). Ship it once every reader of task events is on v2: after
-- it, task events no longer carry `due_date` and readers still on v1 stop seeing due dates
-- (schemas/CONTRACTS.md, "Readers not yet redeployed"; docs/SCHEMA-CHANGES.md).
-- - Refuses while a row still lacks its `due_at`: dropping `due_date` then would lose it.
-- - DROP COLUMN changes only the catalog (no rewrite); it also drops tasks_by_assignee, which
--   `db backfill due-at` replaced beforehand with tasks_by_assignee_due (CONCURRENTLY, which a
--   migration's transaction cannot do). IF NOT EXISTS below builds it only on a database where
--   the backfill never ran, i.e. one without tasks to backfill.
-- - VALIDATE CONSTRAINT takes SHARE UPDATE EXCLUSIVE: it scans, writers go on.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM tasks WHERE due_at IS NULL AND due_date IS NOT NULL) THEN
    RAISE EXCEPTION 'tasks without due_at remain: run `taskflow db backfill due-at` first (docs/SCHEMA-CHANGES.md)';
  END IF;
END
$$;
SET LOCAL lock_timeout = '3s';

CREATE INDEX IF NOT EXISTS tasks_by_assignee_due ON tasks (assignee_id, due_at) WHERE assignee_id IS NOT NULL;
DROP TRIGGER taskflow_tasks_sync_due ON tasks;
DROP FUNCTION taskflow_tasks_sync_due();
ALTER TABLE tasks DROP COLUMN due_date;
ALTER TABLE tasks VALIDATE CONSTRAINT tasks_labels_no_nulls;
