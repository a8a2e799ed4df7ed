-- Schema change task v2 / comment v2 (schemas/task/v2.json, schemas/comment/v2.json), step 1 of 3:
-- EXPAND. Tasks gain `labels` and `due_at` (a timestamp, replacing the `due_date` date), comments
-- gain `edited_at`. Safe on a live database under load (docs/SCHEMA-CHANGES.md):
-- - ADD COLUMN with a constant default (or none) changes only the catalog since Postgres 11: no
--   table rewrite; it takes ACCESS EXCLUSIVE for an instant. lock_timeout makes it give up (the
--   migration fails and is retried) instead of queueing every writer behind a long transaction.
-- - The labels check is NOT VALID: new rows are checked now, existing rows (all '{}') are
--   validated by 0007 under a lock that does not block writers.
-- - `due_date` stays, kept in step with `due_at` by a trigger, through the deprecation window:
--   readers still on task v1 go on seeing it (schemas/CONTRACTS.md, "Readers not yet redeployed").
--   Existing rows get their `due_at` from `taskflow db backfill due-at`, in batches (step 2);
--   0007 (step 3, contract) drops `due_date` and refuses to run before the backfill is done.
-- From the first row written after this commit, capture labels task and comment events v2
-- (schemas/versions.ts: the table's columns decide); no restart.
SET LOCAL lock_timeout = '3s';

ALTER TABLE tasks
  ADD COLUMN labels text[] NOT NULL DEFAULT '{}',
  ADD COLUMN due_at timestamptz;
ALTER TABLE tasks ADD CONSTRAINT tasks_labels_no_nulls CHECK (array_position(labels, NULL) IS NULL) NOT VALID;
ALTER TABLE comments ADD COLUMN edited_at timestamptz;

-- v1 `due_date` d is v2 `due_at` d 00:00 UTC (schemas/upcasters.ts dueAtOfDueDate says the same),
-- and `due_at` t is `due_date` (t at UTC)::date. Writers of either column keep both right.
CREATE FUNCTION taskflow_tasks_sync_due() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.due_at IS DISTINCT FROM OLD.due_at THEN
    NEW.due_date := (NEW.due_at AT TIME ZONE 'UTC')::date;
  ELSIF TG_OP = 'UPDATE' AND NEW.due_date IS DISTINCT FROM OLD.due_date THEN
    NEW.due_at := NEW.due_date::timestamp AT TIME ZONE 'UTC';
  ELSIF NEW.due_at IS NOT NULL AND NEW.due_date IS NULL THEN
    NEW.due_date := (NEW.due_at AT TIME ZONE 'UTC')::date;
  ELSIF NEW.due_at IS NULL AND NEW.due_date IS NOT NULL THEN
    NEW.due_at := NEW.due_date::timestamp AT TIME ZONE 'UTC';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER taskflow_tasks_sync_due BEFORE INSERT OR UPDATE OF due_date, due_at ON tasks
  FOR EACH ROW EXECUTE FUNCTION taskflow_tasks_sync_due();
