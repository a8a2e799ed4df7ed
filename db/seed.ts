// The demo data set: a few workspaces, users, projects, memberships, tasks and comments with
// fixed ids (so the demo board URL is stable) and fixed timestamps. Idempotent: every insert is
// ON CONFLICT DO NOTHING, so a second call writes no rows and no WAL changes.
import pg from 'pg';
import { stableUuid } from './random.js';

const id = (name: string): string => stableUuid(`demo:${name}`);

const USERS = {
  alice: { email: 'alice@acme.example', name: 'Alice Moreau' },
  bob: { email: 'bob@acme.example', name: 'Bob Okafor' },
  carol: { email: 'carol@acme.example', name: 'Carol Lindqvist' },
  dave: { email: 'dave@globex.example', name: 'Dave Tanaka' },
  erin: { email: 'erin@globex.example', name: 'Erin Walsh' },
  frank: { email: 'frank@initech.example', name: 'Frank Ruiz' },
} as const;
type UserName = keyof typeof USERS;

const WORKSPACES = {
  acme: { name: 'Acme Corp', slug: 'acme' },
  globex: { name: 'Globex', slug: 'globex' },
  initech: { name: 'Initech', slug: 'initech' },
} as const;
type WorkspaceName = keyof typeof WORKSPACES;

type Status = 'todo' | 'in_progress' | 'review' | 'done';
interface ProjectSpec {
  workspace: WorkspaceName;
  name: string;
  description: string;
  owner: UserName;
  members: [UserName, 'admin' | 'member' | 'viewer'][];
  tasks: [title: string, status: Status, assignee: UserName | null, comments: [UserName, string][]][];
}

const PROJECTS = {
  websiteRelaunch: {
    workspace: 'acme',
    name: 'Website Relaunch',
    description: 'New marketing site on the design system, launch before the spring campaign.',
    owner: 'alice',
    members: [['bob', 'member'], ['carol', 'member']],
    tasks: [
      ['Audit current page inventory', 'done', 'carol', [['alice', 'Exported the sitemap, 214 pages; half can go.']]],
      ['Draft information architecture', 'done', 'alice', []],
      ['Design homepage hero variants', 'review', 'carol', [['bob', 'Variant B reads better on mobile.'], ['alice', 'Agreed, go with B.']]],
      ['Set up CMS content types', 'in_progress', 'bob', [['bob', 'Blog and case studies done, pricing next.']]],
      ['Migrate blog posts', 'in_progress', 'bob', []],
      ['Write copy for pricing page', 'todo', 'alice', []],
      ['Configure redirects from old URLs', 'todo', null, [['carol', 'Need the final URL map first.']]],
      ['Accessibility review (WCAG 2.2 AA)', 'todo', 'carol', []],
      ['Load test the new stack', 'todo', null, []],
      ['Launch checklist and go/no-go', 'todo', 'alice', []],
    ],
  },
  mobileApp: {
    workspace: 'acme',
    name: 'Mobile App Q3',
    description: 'Offline mode and push notifications for the iOS and Android apps.',
    owner: 'bob',
    members: [['alice', 'viewer']],
    tasks: [
      ['Spike: offline sync conflict rules', 'done', 'bob', [['bob', 'Last-writer-wins per field is enough for v1.']]],
      ['Local database schema for offline tasks', 'in_progress', 'bob', []],
      ['Push notification opt-in screen', 'todo', null, []],
      ['Crash on rotate in task detail (Android)', 'review', 'bob', [['alice', 'Repro on Pixel 7, Android 14.']]],
      ['App Store screenshots', 'todo', null, []],
    ],
  },
  onboarding: {
    workspace: 'globex',
    name: 'Customer Onboarding',
    description: 'Cut time-to-first-value for new enterprise accounts from 3 weeks to 1.',
    owner: 'dave',
    members: [['erin', 'member']],
    tasks: [
      ['Interview five recently onboarded customers', 'done', 'erin', [['erin', 'Notes in the research folder.']]],
      ['Map the current onboarding journey', 'review', 'dave', []],
      ['Welcome email sequence', 'in_progress', 'erin', [['dave', 'Keep it to three emails.']]],
      ['SSO setup guide', 'todo', 'dave', []],
      ['Kickoff call template', 'todo', null, []],
      ['Define activation metric', 'todo', 'dave', []],
    ],
  },
  tpsMigration: {
    workspace: 'initech',
    name: 'TPS Reports Migration',
    description: 'Move TPS report generation off the mainframe.',
    owner: 'frank',
    members: [],
    tasks: [
      ['Inventory report cover sheet variants', 'in_progress', 'frank', [['frank', 'Found 11 variants, 3 still in use.']]],
      ['Decommission the old fax gateway', 'todo', 'frank', []],
      ['Parallel run for one quarter', 'todo', null, []],
    ],
  },
} satisfies Record<string, ProjectSpec>;
type ProjectName = keyof typeof PROJECTS;

const WORKSPACE_ADMINS: [WorkspaceName, UserName, 'owner' | 'admin'][] = [
  ['acme', 'alice', 'owner'],
  ['acme', 'bob', 'admin'],
  ['globex', 'dave', 'owner'],
  ['initech', 'frank', 'owner'],
];

function byName<K extends string>(names: readonly K[], prefix: string): Record<K, string> {
  return Object.fromEntries(names.map((n) => [n, id(`${prefix}:${n}`)])) as Record<K, string>;
}

export const DEMO = {
  /** The demo board: Acme Corp / Website Relaunch. */
  workspaceId: id('workspace:acme'),
  projectId: id('project:websiteRelaunch'),
  workspaces: byName(Object.keys(WORKSPACES) as WorkspaceName[], 'workspace'),
  projects: byName(Object.keys(PROJECTS) as ProjectName[], 'project'),
  users: byName(Object.keys(USERS) as UserName[], 'user'),
} as const;

/** Demo labels (tasks.labels, task v2), cycled through the tasks of each project. */
const SEED_LABELS: readonly string[][] = [['planning'], ['bug', 'urgent'], [], ['design'], ['customer']];

interface Row {
  table: string;
  values: Record<string, unknown>;
}

/** Timestamps a fixed number of minutes after a fixed origin, so reseeding gives identical rows. */
function at(minutes: number): string {
  return new Date(Date.UTC(2026, 0, 5, 9, 0) + minutes * 60_000).toISOString();
}

/** Every demo row, parents before children. */
export function demoRows(): Row[] {
  const rows: Row[] = [];
  let clock = 0;
  for (const [key, w] of Object.entries(WORKSPACES) as [WorkspaceName, (typeof WORKSPACES)[WorkspaceName]][]) {
    rows.push({ table: 'workspaces', values: { id: DEMO.workspaces[key], name: w.name, slug: w.slug, created_at: at(clock++) } });
  }
  for (const [key, u] of Object.entries(USERS) as [UserName, (typeof USERS)[UserName]][]) {
    rows.push({ table: 'users', values: { id: DEMO.users[key], email: u.email, display_name: u.name, created_at: at(clock++) } });
  }
  for (const [ws, user, role] of WORKSPACE_ADMINS) {
    rows.push({
      table: 'memberships',
      values: { id: id(`membership:${ws}:${user}`), workspace_id: DEMO.workspaces[ws], user_id: DEMO.users[user], project_id: null, role, created_at: at(clock++) },
    });
  }
  for (const [key, p] of Object.entries(PROJECTS) as [ProjectName, ProjectSpec][]) {
    const workspaceId = DEMO.workspaces[p.workspace];
    const projectId = DEMO.projects[key];
    const created = at(clock++);
    rows.push({
      table: 'projects',
      values: { id: projectId, workspace_id: workspaceId, name: p.name, description: p.description, created_by: DEMO.users[p.owner], created_at: created, updated_at: created },
    });
    for (const [user, role] of [[p.owner, 'admin'], ...p.members] as [UserName, string][]) {
      rows.push({
        table: 'memberships',
        values: { id: id(`membership:${key}:${user}`), workspace_id: workspaceId, user_id: DEMO.users[user], project_id: projectId, role, created_at: at(clock++) },
      });
    }
    const positionInColumn = new Map<Status, number>();
    p.tasks.forEach(([title, status, assignee, comments], i) => {
      const taskId = id(`task:${key}:${i}`);
      const position = (positionInColumn.get(status) ?? 0) + 1024;
      positionInColumn.set(status, position);
      const createdAt = at(clock++);
      rows.push({
        table: 'tasks',
        values: {
          id: taskId,
          workspace_id: workspaceId,
          project_id: projectId,
          title,
          description: null,
          status,
          priority: (i * 7) % 5,
          assignee_id: assignee ? DEMO.users[assignee] : null,
          labels: SEED_LABELS[i % SEED_LABELS.length]!,
          due_at: status === 'done' ? null : `${at(60 * 24 * (14 + i)).slice(0, 10)}T17:00:00Z`,
          position,
          created_by: DEMO.users[p.owner],
          created_at: createdAt,
          updated_at: createdAt,
        },
      });
      comments.forEach(([author, body], j) => {
        const c = at(clock++);
        rows.push({
          table: 'comments',
          values: { id: id(`comment:${key}:${i}:${j}`), workspace_id: workspaceId, project_id: projectId, task_id: taskId, author_id: DEMO.users[author], body, created_at: c, updated_at: c },
        });
      });
    });
  }
  return rows;
}

/** Inserts the demo rows that are missing, in one transaction; returns how many were inserted. */
export async function seedDemo(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'taskflow-seed' });
  await client.connect();
  try {
    await client.query('BEGIN');
    let inserted = 0;
    for (const row of demoRows()) {
      const cols = Object.keys(row.values);
      const res = await client.query(
        `INSERT INTO ${row.table} (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')}) ON CONFLICT DO NOTHING`,
        Object.values(row.values),
      );
      inserted += res.rowCount ?? 0;
    }
    await client.query('COMMIT');
    return inserted;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await client.end();
  }
}
