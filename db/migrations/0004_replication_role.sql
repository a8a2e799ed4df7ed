-- The role capture connects as (docs/THREAT_MODEL.md, "Least privilege"): it may stream the WAL
-- (REPLICATION: slots, pg_logical_emit_message for heartbeats and snapshot watermarks) and read
-- the captured tables (SELECT, for snapshots) — no writes, no other table, no superuser. It has
-- no password here: whoever deploys sets one from the secret store (db/README.md). Roles belong to
-- the cluster, so the first database migrated creates it; another migration racing it is fine.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'taskflow_replication') THEN
    BEGIN
      IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_replication') THEN
        -- Amazon RDS grants replication through its role, not the attribute.
        CREATE ROLE taskflow_replication LOGIN;
        GRANT rds_replication TO taskflow_replication;
      ELSE
        CREATE ROLE taskflow_replication LOGIN REPLICATION;
      END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
  END IF;
END $$;

-- A table added to capture later needs the same grant in its migration.
GRANT SELECT ON projects, memberships, tasks, comments TO taskflow_replication;

-- Created by the tables' owner: capture's role owns no table, so it could not create it.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'taskflow_capture') THEN
    CREATE PUBLICATION taskflow_capture FOR TABLE projects, memberships, tasks, comments;
  END IF;
END $$;
