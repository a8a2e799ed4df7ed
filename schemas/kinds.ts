// The event types on the stream and what each one's `data` looks like. Pure data, browser-safe.

export const ENTITIES = {
  task: { table: 'tasks', schema: 'task', hasProject: true },
  comment: { table: 'comments', schema: 'comment', hasProject: true },
  membership: { table: 'memberships', schema: 'membership', hasProject: false },
  project: { table: 'projects', schema: 'project', hasProject: true },
} as const;

export type EntityName = keyof typeof ENTITIES;

/** Event type verb → the `data.op` it carries. */
export const VERBS = { created: 'c', updated: 'u', deleted: 'd', snapshot: 'r' } as const;
export type Verb = keyof typeof VERBS;
export type Op = (typeof VERBS)[Verb];

export const TRUNCATE_TYPE = 'taskflow.table.truncated';
export const GDPR_ERASURE_TYPE = 'taskflow.gdpr.erasure_requested';
/** The source table whose inserts capture turns into GDPR_ERASURE_TYPE events (db/migrations/0008). */
export const GDPR_ERASURE_TABLE = 'gdpr_erasure_requests';

export type EventKind =
  | { kind: 'entity'; type: string; entity: EntityName; verb: Verb; op: Op; schema: string }
  | { kind: 'truncate'; type: typeof TRUNCATE_TYPE; schema: 'truncate' }
  | { kind: 'gdpr-erasure'; type: typeof GDPR_ERASURE_TYPE; schema: 'gdpr-erasure' };

function buildKinds(): Map<string, EventKind> {
  const kinds = new Map<string, EventKind>();
  for (const entity of Object.keys(ENTITIES) as EntityName[]) {
    for (const verb of Object.keys(VERBS) as Verb[]) {
      const type = `taskflow.${entity}.${verb}`;
      kinds.set(type, { kind: 'entity', type, entity, verb, op: VERBS[verb], schema: ENTITIES[entity].schema });
    }
  }
  kinds.set(TRUNCATE_TYPE, { kind: 'truncate', type: TRUNCATE_TYPE, schema: 'truncate' });
  kinds.set(GDPR_ERASURE_TYPE, { kind: 'gdpr-erasure', type: GDPR_ERASURE_TYPE, schema: 'gdpr-erasure' });
  return kinds;
}

/** Every known event type, keyed by the CloudEvents `type`. */
export const EVENT_KINDS: ReadonlyMap<string, EventKind> = buildKinds();
