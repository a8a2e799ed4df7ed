// Valid events for tests of every helper (capture, router, web SDK): `sampleEvent` builds one
// deterministic event, `arbitraryEvent` random valid ones for fast-check properties.
import fc from 'fast-check';
import { ENTITIES, VERBS, type EntityName, type Verb } from './kinds.js';
import { schemaId } from './schema-id.js';
import { latestVersion } from './versions.js';
import type { ChangeEvent, Encrypted, EntityChangeEvent, GdprErasureEvent, RowOf, TruncateEvent } from './types.js';

export type SampleKind = `${EntityName}.${Verb}` | 'table.truncated' | 'gdpr.erasure_requested';

export type EventOfKind<K extends SampleKind> = K extends `${infer E extends EntityName}.${Verb}`
  ? EntityChangeEvent<E>
  : K extends 'table.truncated'
    ? TruncateEvent
    : GdprErasureEvent;

export const SAMPLE_KINDS: readonly SampleKind[] = [
  ...(Object.keys(ENTITIES) as EntityName[]).flatMap((e) => (Object.keys(VERBS) as Verb[]).map((v) => `${e}.${v}` as const)),
  'table.truncated',
  'gdpr.erasure_requested',
];

export const SAMPLE_IDS = {
  workspace: '11111111-1111-4111-8111-111111111111',
  project: '22222222-2222-4222-8222-222222222222',
  task: '33333333-3333-4333-8333-333333333333',
  comment: '44444444-4444-4444-8444-444444444444',
  membership: '55555555-5555-4555-8555-555555555555',
  user: '66666666-6666-4666-8666-666666666666',
  request: '77777777-7777-4777-8777-777777777777',
} as const;

export interface SampleOverrides {
  workspaceId?: string;
  /** The row's project; null makes a workspace-wide membership. */
  projectId?: string | null;
  /** Primary key of the row (entity events). */
  entityId?: string;
  /** Membership's user, GDPR erasure's person. */
  userId?: string;
  /** Commit LSN as a bigint (default 0x16B374D8). */
  commitLsn?: bigint;
  txIndex?: number;
  /** Default: txIndex + 1. */
  txSize?: number;
  xid?: number;
  time?: string;
  /** Column values merged into the row image(s). */
  row?: Partial<RowOf[EntityName]>;
  /** update: the columns reported as changed (default: a kind-specific pair). */
  changed?: string[];
  /** update: TOASTed columns left out of `after`. */
  omitted?: string[];
  /** truncate: the truncated tables. */
  tables?: string[];
  source?: string;
  /**
   * The version of the entity's schema the row images are written against (default: the newest).
   * Rows of an older version have that version's columns (task v1: `due_date`, no `labels`).
   */
  schemaVersion?: number;
}

const DEFAULT_LSN = 0x16b374d8n;
const DEFAULT_TIME = '2026-11-26T12:00:00.123456Z';

function lsnText(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

function idText(lsn: bigint, txIndex: number): string {
  return `${lsn.toString(16).toUpperCase().padStart(16, '0')}-${String(txIndex).padStart(8, '0')}`;
}

function fullRow(entity: EntityName, o: SampleOverrides, ids: { id: string; ws: string; project: string | null; user: string; time: string }, version: number) {
  switch (entity) {
    case 'task': {
      const due = version === 1 ? { due_date: '2026-12-01' } : { labels: ['planning'], due_at: '2026-12-01T17:00:00Z' };
      return {
        id: ids.id, workspace_id: ids.ws, project_id: ids.project ?? SAMPLE_IDS.project, title: 'Write the quarterly plan',
        description: 'Draft, review with the team, publish.', status: 'todo', priority: 2, assignee_id: ids.user, ...due,
        position: 1024, created_by: ids.user, created_at: ids.time, updated_at: ids.time, ...o.row,
      } as RowOf['task'];
    }
    case 'comment':
      return {
        id: ids.id, workspace_id: ids.ws, project_id: ids.project ?? SAMPLE_IDS.project, task_id: SAMPLE_IDS.task, author_id: ids.user,
        body: 'Looks good to me.', ...(version === 1 ? {} : { edited_at: null }), created_at: ids.time, updated_at: ids.time, ...o.row,
      } as RowOf['comment'];
    case 'membership':
      return { id: ids.id, workspace_id: ids.ws, user_id: ids.user, project_id: ids.project, role: 'member', created_at: ids.time, ...o.row } as RowOf['membership'];
    case 'project':
      return {
        id: ids.id, workspace_id: ids.ws, name: 'Launch', description: null, archived: false, created_by: ids.user,
        created_at: ids.time, updated_at: ids.time, ...o.row,
      } as RowOf['project'];
  }
}

const REPLICA_IDENTITY: Record<EntityName, readonly string[]> = {
  task: ['id', 'workspace_id', 'project_id'],
  comment: ['id', 'workspace_id', 'project_id'],
  membership: ['id', 'workspace_id', 'user_id'],
  project: ['id', 'workspace_id'],
};

const DEFAULT_CHANGED: Record<EntityName, string[]> = {
  task: ['status', 'updated_at'],
  comment: ['body', 'updated_at'],
  membership: ['role'],
  project: ['name', 'updated_at'],
};

function pick(row: Record<string, unknown>, columns: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(columns.map((c) => [c, row[c]]));
}

/** A valid event of the given kind ("task.updated", "table.truncated", …); deterministic unless overridden. */
export function sampleEvent<K extends SampleKind>(kind: K, overrides: SampleOverrides = {}): EventOfKind<K> {
  const o = overrides;
  const lsn = o.commitLsn ?? DEFAULT_LSN;
  const txIndex = o.txIndex ?? 0;
  const source = { db: 'taskflow', lsn: lsnText(lsn), xid: o.xid ?? 1234, txIndex, txSize: o.txSize ?? txIndex + 1, snapshot: false };
  const time = o.time ?? DEFAULT_TIME;
  const attributes = {
    specversion: '1.0' as const,
    id: idText(lsn, txIndex),
    source: o.source ?? '//taskflow/capture/taskflow',
    time,
    datacontenttype: 'application/json' as const,
  };
  const [entityName, verb] = kind.split('.') as [string, string];

  if (kind === 'table.truncated') {
    const tables = o.tables ?? ['tasks'];
    const event: TruncateEvent = {
      ...attributes, type: 'taskflow.table.truncated', subject: tables[0] ?? 'tasks', dataschema: schemaId({ name: 'truncate', version: 1 }),
      workspaceid: '*', data: { op: 't', table: tables[0] ?? 'tasks', tables: tables as [string, ...string[]], source },
    };
    return event as EventOfKind<K>;
  }
  if (kind === 'gdpr.erasure_requested') {
    const userId = o.userId ?? SAMPLE_IDS.user;
    const requestedAt = new Date(time);
    const event: GdprErasureEvent = {
      ...attributes, type: 'taskflow.gdpr.erasure_requested', subject: `users/${userId}`, dataschema: schemaId({ name: 'gdpr-erasure', version: 1 }),
      workspaceid: '*',
      data: { requestId: SAMPLE_IDS.request, userId, requestedAt: time, deadline: new Date(requestedAt.getTime() + 72 * 3600_000).toISOString() },
    };
    return event as EventOfKind<K>;
  }

  const entity = entityName as EntityName;
  const op = VERBS[verb as Verb];
  // A project row has no project_id: its own id is its project.
  const projectDefault = entity === 'project' ? null : SAMPLE_IDS.project;
  const id = o.entityId ?? (entity === 'project' ? (o.projectId ?? SAMPLE_IDS.project) : SAMPLE_IDS[entity]);
  const ws = o.workspaceId ?? SAMPLE_IDS.workspace;
  const version = o.schemaVersion ?? latestVersion(ENTITIES[entity].schema);
  const row = fullRow(entity, o, { id, ws, project: o.projectId === undefined ? projectDefault : o.projectId, user: o.userId ?? SAMPLE_IDS.user, time }, version) as unknown as Record<string, unknown>;

  let before: Record<string, unknown> | null = null;
  let after: Record<string, unknown> | null = row;
  const extra: { changed?: string[]; omitted?: string[] } = {};
  if (op === 'd') {
    before = pick(row, REPLICA_IDENTITY[entity]);
    after = null;
  } else if (op === 'u') {
    const omitted = o.omitted ?? [];
    after = Object.fromEntries(Object.entries(row).filter(([c]) => !omitted.includes(c)));
    extra.changed = o.changed ?? DEFAULT_CHANGED[entity];
    extra.omitted = omitted;
  }
  if (op === 'r') source.snapshot = true;
  const image = after ?? before ?? row;
  const projectid = entity === 'project' ? image.id : image.project_id;
  const event = {
    ...attributes,
    type: `taskflow.${entity}.${verb}`,
    subject: `${ENTITIES[entity].table}/${id}`,
    dataschema: schemaId({ name: ENTITIES[entity].schema, version }),
    workspaceid: ws,
    ...(typeof projectid === 'string' ? { projectid } : {}),
    data: { op, table: ENTITIES[entity].table, key: { id }, before, after, ...extra, source },
  };
  return event as unknown as EventOfKind<K>;
}

const isoTime = fc
  .date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T23:59:59Z'), noInvalidDate: true })
  .map((d) => d.toISOString());
const isoDate = isoTime.map((t) => t.slice(0, 10));
const encrypted: fc.Arbitrary<Encrypted> = fc.record({
  enc: fc.constant('v1' as const),
  kid: fc.string({ minLength: 1, maxLength: 12 }),
  iv: fc.base64String({ minLength: 4, maxLength: 24 }).filter((s) => s.length > 0),
  ct: fc.base64String({ maxLength: 64 }),
});

const taskFields = {
  title: fc.string(),
  description: fc.oneof(fc.constant(null), fc.string(), encrypted),
  status: fc.constantFrom('todo', 'in_progress', 'review', 'done'),
  priority: fc.integer({ min: 0, max: 4 }),
  assignee_id: fc.option(fc.uuid(), { nil: null }),
  position: fc.double({ noNaN: true, noDefaultInfinity: true }),
};
const commentFields = { task_id: fc.uuid(), author_id: fc.option(fc.uuid(), { nil: null }), body: fc.oneof(fc.string(), encrypted) };

/** Row fields by entity and schema version (the versions differ in task's and comment's columns). */
function rowFields(entity: EntityName, version: number): fc.Arbitrary<Record<string, unknown>> {
  switch (entity) {
    case 'task':
      return version === 1
        ? fc.record({ ...taskFields, due_date: fc.option(isoDate, { nil: null }) })
        : fc.record({ ...taskFields, labels: fc.array(fc.string({ minLength: 1, maxLength: 12 }), { maxLength: 4 }), due_at: fc.option(isoTime, { nil: null }) });
    case 'comment':
      return version === 1 ? fc.record(commentFields) : fc.record({ ...commentFields, edited_at: fc.option(isoTime, { nil: null }) });
    case 'membership':
      return fc.record({ role: fc.constantFrom('owner', 'admin', 'member', 'viewer') });
    case 'project':
      return fc.record({ name: fc.string(), description: fc.option(fc.string(), { nil: null }), archived: fc.boolean() });
  }
}

function changeable(entity: EntityName, version: number): string[] {
  switch (entity) {
    case 'task':
      return ['title', 'description', 'status', ...(version === 1 ? ['due_date'] : ['labels', 'due_at']), 'priority', 'assignee_id', 'position', 'updated_at'];
    case 'comment':
      return ['body', ...(version === 1 ? [] : ['edited_at']), 'updated_at'];
    case 'membership':
      return ['role', 'project_id'];
    case 'project':
      return ['name', 'description', 'archived', 'updated_at'];
  }
}
const TOASTABLE: Record<EntityName, string[]> = { task: ['description', 'title'], comment: ['body'], membership: [], project: ['description'] };

export interface ArbitraryEventOptions {
  kinds?: readonly SampleKind[];
  /** Draw workspaces from this set (to get several events per workspace); default: any uuid. */
  workspaceIds?: readonly string[];
  /** Entity events written against this version of their schema (default: the newest). */
  schemaVersion?: number;
}

/** Random valid events (every kind, nullable and encrypted fields, TOAST-omitted updates). */
export function arbitraryEvent(options: ArbitraryEventOptions = {}): fc.Arbitrary<ChangeEvent> {
  const workspace = options.workspaceIds ? fc.constantFrom(...options.workspaceIds) : fc.uuid();
  return fc.constantFrom(...(options.kinds ?? SAMPLE_KINDS)).chain((kind) => {
    const entity = kind.split('.')[0] as EntityName;
    const version = ENTITIES[entity] ? (options.schemaVersion ?? latestVersion(ENTITIES[entity].schema)) : 1;
    const fields = ENTITIES[entity] ? rowFields(entity, version) : fc.constant({});
    return fc
      .record({
        workspaceId: workspace,
        projectId: entity === 'membership' ? fc.option(fc.uuid(), { nil: null }) : fc.uuid(),
        entityId: fc.uuid(),
        userId: fc.uuid(),
        commitLsn: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        txSize: fc.integer({ min: 1, max: 10_000 }),
        xid: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        time: isoTime,
        row: fields,
        omitted: fc.subarray(TOASTABLE[entity] ?? []),
        changed: fc.subarray(ENTITIES[entity] ? changeable(entity, version) : []),
        txIndexFraction: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      })
      .map(({ txIndexFraction, workspaceId, ...o }) => {
        const txIndex = Math.floor(txIndexFraction * o.txSize);
        const ws = kind === 'table.truncated' || kind === 'gdpr.erasure_requested' ? undefined : workspaceId;
        // `after` of an update carries the changed columns, so none of them can be omitted.
        const changed = o.changed.filter((c) => !o.omitted.includes(c));
        return sampleEvent(kind, { ...o, changed, workspaceId: ws, txIndex, row: o.row as SampleOverrides['row'], schemaVersion: version }) as ChangeEvent;
      });
  });
}
