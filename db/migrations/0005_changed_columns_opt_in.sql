-- Changed-column capture becomes opt-in per table. 0003's trigger on every captured table cost a
-- title-only update of a task +53% WAL and +67% database CPU (bench:changed-columns), far over
-- the write budget, for a list most readers do not need. By default no table has the trigger and
-- an update's `data.changed` lists every column of `after` (unknown: an upper bound,
-- schemas/CONTRACTS.md); a table that needs the exact list opts in, paying that cost only for it:
--   SELECT taskflow_capture_changed_columns('tasks');          -- opt in
--   SELECT taskflow_capture_changed_columns('tasks', false);   -- opt out
-- Capture needs no restart either way: it pairs an update with its row's message when one is
-- there, so the choice takes effect with the next committed transaction.
DROP TRIGGER taskflow_changed_columns ON projects;
DROP TRIGGER taskflow_changed_columns ON memberships;
DROP TRIGGER taskflow_changed_columns ON tasks;
DROP TRIGGER taskflow_changed_columns ON comments;

CREATE FUNCTION taskflow_capture_changed_columns(tbl regclass, enabled boolean DEFAULT true) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('DROP TRIGGER IF EXISTS taskflow_changed_columns ON %s', tbl);
  IF enabled THEN
    EXECUTE format('CREATE TRIGGER taskflow_changed_columns AFTER UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION taskflow_changed_columns()', tbl);
  END IF;
END
$$;
