-- Which columns an UPDATE changed. The WAL record of an update carries the new row (and, with our
-- replica identity, the old key only when it changed), so the change stream cannot tell a
-- title-only update from one that rewrote every column. This trigger tells it: after each row
-- update it emits a transactional logical decoding message `taskflow.changed` with the table,
-- the row's id and the columns whose value differs, which capture pairs with the row's update in
-- the same transaction (capture/changed-columns.ts). No table data is written; the message is one
-- small WAL record (measured by `npm run bench:changed-columns`, test/bench/README.md). It compares
-- whole rows (hstore(NEW) - hstore(OLD): the columns whose text differs, NULLs included), so a
-- column added later is covered without changing this function; hstore is a trusted extension,
-- and this is 3-6x cheaper in database CPU than comparing to_jsonb() images. Capture refuses to
-- start while a captured table lacks this trigger or has it disabled.
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE FUNCTION taskflow_changed_columns() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_logical_emit_message(true, 'taskflow.changed', json_build_object(
    'table', TG_TABLE_NAME,
    'id', NEW.id,
    'columns', akeys(hstore(NEW) - hstore(OLD))
  )::text);
  RETURN NULL;
END
$$;

CREATE TRIGGER taskflow_changed_columns AFTER UPDATE ON projects FOR EACH ROW EXECUTE FUNCTION taskflow_changed_columns();
CREATE TRIGGER taskflow_changed_columns AFTER UPDATE ON memberships FOR EACH ROW EXECUTE FUNCTION taskflow_changed_columns();
CREATE TRIGGER taskflow_changed_columns AFTER UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION taskflow_changed_columns();
CREATE TRIGGER taskflow_changed_columns AFTER UPDATE ON comments FOR EACH ROW EXECUTE FUNCTION taskflow_changed_columns();
