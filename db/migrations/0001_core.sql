-- TaskFlow application tables: the source of truth the pipeline captures.
-- Multi-tenant: every captured row carries workspace_id (and project_id where it has one), and
-- each captured table's REPLICA IDENTITY is a unique index over its key plus routing columns, so
-- UPDATE/DELETE in the WAL carry the routing keys without REPLICA IDENTITY FULL.

CREATE TABLE workspaces (
  id          uuid PRIMARY KEY,
  name        text NOT NULL,
  slug        text NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
  id            uuid PRIMARY KEY,
  email         text NOT NULL UNIQUE,
  display_name  text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projects (
  id            uuid NOT NULL,
  workspace_id  uuid NOT NULL REFERENCES workspaces(id),
  name          text NOT NULL,
  description   text,
  archived      boolean NOT NULL DEFAULT false,
  created_by    uuid REFERENCES users(id),
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id),
  CONSTRAINT projects_identity UNIQUE (id, workspace_id)
);
CREATE INDEX projects_by_workspace ON projects (workspace_id, archived, name);
ALTER TABLE projects REPLICA IDENTITY USING INDEX projects_identity;

CREATE TABLE memberships (
  id            uuid NOT NULL,
  workspace_id  uuid NOT NULL REFERENCES workspaces(id),
  user_id       uuid NOT NULL REFERENCES users(id),
  -- NULL: a workspace-wide membership (every project of the workspace); else one project.
  project_id    uuid,
  role          text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id),
  -- project_id is nullable so it cannot be in the replica identity: a DELETE carries
  -- (id, workspace_id, user_id); readers resolve the project from the membership id.
  CONSTRAINT memberships_identity UNIQUE (id, workspace_id, user_id),
  FOREIGN KEY (project_id, workspace_id) REFERENCES projects (id, workspace_id)
);
CREATE UNIQUE INDEX memberships_one_per_scope ON memberships (workspace_id, user_id, coalesce(project_id, '00000000-0000-0000-0000-000000000000'::uuid));
CREATE INDEX memberships_by_user ON memberships (user_id);
ALTER TABLE memberships REPLICA IDENTITY USING INDEX memberships_identity;

CREATE TABLE tasks (
  id            uuid NOT NULL,
  workspace_id  uuid NOT NULL REFERENCES workspaces(id),
  project_id    uuid NOT NULL,
  title         text NOT NULL,
  description   text,
  status        text NOT NULL DEFAULT 'todo' CHECK (status IN ('todo', 'in_progress', 'review', 'done')),
  priority      smallint NOT NULL DEFAULT 2 CHECK (priority BETWEEN 0 AND 4),
  assignee_id   uuid REFERENCES users(id),
  due_date      date,
  position      double precision NOT NULL DEFAULT 0,
  created_by    uuid REFERENCES users(id),
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id),
  CONSTRAINT tasks_identity UNIQUE (id, workspace_id, project_id),
  FOREIGN KEY (project_id, workspace_id) REFERENCES projects (id, workspace_id)
);
CREATE INDEX tasks_board ON tasks (workspace_id, project_id, status, position);
CREATE INDEX tasks_by_assignee ON tasks (assignee_id, due_date) WHERE assignee_id IS NOT NULL;
ALTER TABLE tasks REPLICA IDENTITY USING INDEX tasks_identity;

CREATE TABLE comments (
  id            uuid NOT NULL,
  workspace_id  uuid NOT NULL REFERENCES workspaces(id),
  project_id    uuid NOT NULL,
  task_id       uuid NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
  author_id     uuid REFERENCES users(id),
  body          text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id),
  CONSTRAINT comments_identity UNIQUE (id, workspace_id, project_id)
);
CREATE INDEX comments_by_task ON comments (task_id, created_at);
ALTER TABLE comments REPLICA IDENTITY USING INDEX comments_identity;
