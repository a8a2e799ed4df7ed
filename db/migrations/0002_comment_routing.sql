-- A comment's routing columns must be its task's. With only task_id referencing tasks(id), a
-- comment could carry another project's or another workspace's ids, and its change events would
-- be delivered to that audience (a cross-tenant leak). The composite key makes that impossible.
ALTER TABLE comments DROP CONSTRAINT comments_task_id_fkey;
ALTER TABLE comments ADD CONSTRAINT comments_task_fkey
  FOREIGN KEY (task_id, workspace_id, project_id) REFERENCES tasks (id, workspace_id, project_id) ON DELETE CASCADE;

-- Members of a project: authorization, revocation and per-user fan-out look them up by project.
CREATE INDEX memberships_by_project ON memberships (project_id, user_id) WHERE project_id IS NOT NULL;
