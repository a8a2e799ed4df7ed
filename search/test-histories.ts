// Random commit-ordered histories of a few tasks, a comment, memberships and truncates, as valid
// envelopes, with the in-order truth a search index must end up with: the index's property tests
// (documents.property.test.ts, sqlite-index.test.ts, opensearch-index.test.ts) share them. Writes
// are drawn as task/comment v1 or v2 events (mixed within one history, as across a schema change):
// the index must end the same either way. A task write carries labels and a due date: a v2 event
// as labels and due_at, a v1 event as due_date (a day, so the drawn due is that day at 00:00 UTC)
// and no labels (upcast to []), which is what the truth expects of it.
import fc from 'fast-check';
import type { Membership } from '../lib/authz.js';
import { decodeEvent, type StreamEvent } from '@taskflow/stream/events';
import { sampleEvent } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import type { SearchDocument } from './documents.js';
import { hasFilter, type SearchFilter } from './search-index.js';

export const WS = '11111111-1111-4111-8111-0000000000a1';
export const PROJECT = '22222222-2222-4222-8222-0000000000a1';
export const USER = '66666666-6666-4666-8666-0000000000a1';
const ENTITIES = [
  { kind: 'task', table: 'tasks', id: '33333333-3333-4333-8333-0000000000a1' },
  { kind: 'task', table: 'tasks', id: '33333333-3333-4333-8333-0000000000a2' },
  { kind: 'comment', table: 'comments', id: '44444444-4444-4444-8444-0000000000a1' },
  { kind: 'membership', table: 'memberships', id: '55555555-5555-4555-8555-0000000000a1' },
] as const;
const TASK_ID = ENTITIES[0].id;

type Step =
  | { kind: 'write'; entity: number; title: string; text: string; omitText: boolean; sameTx: boolean; v1: boolean; labels: string[]; due: number | null }
  | { kind: 'delete'; entity: number; sameTx: boolean }
  | { kind: 'truncate'; tables: string[]; sameTx: boolean };

const word = fc.constantFrom('alpha', 'beta', 'gamma', 'delta');
export const LABELS = ['bug', 'Bug', 'ops', 'needs review'] as const;
/** Due dates as days after 2026-12-01 plus a time of day (v2) — a v1 event keeps the day only. */
const DUE_BASE = Date.UTC(2026, 11, 1);
const DAY_MS = 86_400_000;
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('write' as const), entity: fc.nat({ max: ENTITIES.length - 1 }), title: word, text: word, omitText: fc.boolean(), sameTx: fc.boolean(), v1: fc.boolean(), labels: fc.subarray([...LABELS]), due: fc.option(fc.nat({ max: 9 * DAY_MS }), { nil: null }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), entity: fc.nat({ max: ENTITIES.length - 1 }), sameTx: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), tables: fc.subarray(['tasks', 'comments', 'memberships', 'projects'], { minLength: 1 }), sameTx: fc.boolean() }) },
);

export interface History {
  events: StreamEvent[];
  /** What a correct index shows at the end, by document key order. */
  documents: SearchDocument[];
  memberships: Membership[];
}

function decoded(e: unknown): StreamEvent {
  const d = decodeEvent(Buffer.from(JSON.stringify(e)), validateEvent);
  if (!d.ok) throw new Error(`test history made an invalid event: ${d.message}`);
  return d.event;
}

/** Interprets steps as a database would: creates, updates (TOASTed text left out when unchanged), deletes, truncates. */
export function historyOf(steps: readonly Step[]): History {
  const rows = new Map<number, { title: string; text: string; version: string; role: string; labels: string[]; dueAt: string | null }>();
  const events: StreamEvent[] = [];
  let lsn = 0x1000n;
  let txIndex = 0;
  for (const s of steps) {
    if (s.sameTx && events.length > 0) txIndex += 1;
    else {
      lsn += 0x100n;
      txIndex = 0;
    }
    const at = { commitLsn: lsn, txIndex, txSize: 1000 };
    if (s.kind === 'truncate') {
      events.push(decoded(sampleEvent('table.truncated', { ...at, tables: s.tables })));
      for (const [i] of rows) if (s.tables.includes(ENTITIES[i]!.table)) rows.delete(i);
      continue;
    }
    const entity = ENTITIES[s.entity]!;
    const base = { ...at, workspaceId: WS, projectId: entity.kind === 'membership' ? null : PROJECT, entityId: entity.id, userId: USER };
    const current = rows.get(s.entity);
    if (s.kind === 'delete') {
      if (!current) continue;
      events.push(decoded(sampleEvent(`${entity.kind}.deleted`, base)));
      rows.delete(s.entity);
      continue;
    }
    const textColumn = entity.kind === 'task' ? 'description' : 'body';
    const omit = current !== undefined && s.omitText && entity.kind !== 'membership';
    const text = omit ? current.text : s.text;
    const role = s.title === 'alpha' ? 'viewer' : 'member';
    const v1 = s.v1 && entity.kind !== 'membership';
    const labels = v1 ? [] : s.labels;
    const due = s.due === null ? null : new Date(v1 ? DUE_BASE + Math.floor(s.due / DAY_MS) * DAY_MS : DUE_BASE + s.due);
    const dueColumns = v1 ? { due_date: due?.toISOString().slice(0, 10) ?? null } : { labels, due_at: due?.toISOString().replace('.000Z', '+00:00') ?? null };
    const row = entity.kind === 'task' ? { title: s.title, description: text, ...dueColumns } : entity.kind === 'comment' ? { body: text, task_id: TASK_ID } : { role };
    const version = v1 ? { schemaVersion: 1 } : {};
    const e = current
      ? sampleEvent(`${entity.kind}.updated`, { ...base, ...version, row: row as never, omitted: omit ? [textColumn] : [], changed: entity.kind === 'task' ? ['title'] : entity.kind === 'comment' ? ['updated_at'] : ['role'] })
      : sampleEvent(`${entity.kind}.created`, { ...base, ...version, row: row as never });
    const event = decoded(e);
    events.push(event);
    rows.set(s.entity, { title: s.title, text, version: event.id, role, labels, dueAt: due?.toISOString() ?? null });
  }
  const documents: SearchDocument[] = [];
  const memberships: Membership[] = [];
  for (const [i, r] of rows) {
    const entity = ENTITIES[i]!;
    if (entity.kind === 'membership') {
      memberships.push({ workspaceId: WS, projectId: null, role: r.role as Membership['role'] });
      continue;
    }
    const isTask = entity.kind === 'task';
    documents.push({
      workspaceId: WS,
      table: entity.table,
      id: entity.id,
      version: r.version,
      projectId: PROJECT,
      title: isTask ? r.title : '',
      text: r.text,
      status: isTask ? 'todo' : null,
      taskId: isTask ? null : TASK_ID,
      labels: isTask ? r.labels : [],
      dueAt: isTask ? r.dueAt : null,
    });
  }
  documents.sort((a, b) => `${a.table}/${a.id}`.localeCompare(`${b.table}/${b.id}`));
  return { events, documents, memberships };
}

/** A label/due filter over the histories' values (bounds on or between the drawn dues). */
export const arbitraryFilter: fc.Arbitrary<SearchFilter> = fc
  .record(
    {
      labels: fc.subarray([...LABELS], { maxLength: 2 }),
      dueAfter: fc.nat({ max: 10 * DAY_MS }).map((ms) => new Date(DUE_BASE + ms - (ms % 3_600_000)).toISOString()),
      dueBefore: fc.nat({ max: 10 * DAY_MS }).map((ms) => new Date(DUE_BASE + ms - (ms % 3_600_000)).toISOString()),
    },
    { requiredKeys: [] },
  )
  .filter(hasFilter);

export const arbitraryHistory: fc.Arbitrary<History> = fc.array(step, { maxLength: 30 }).map(historyOf);

/** A history plus a delivery of it: every event at least once, in any order, cut into batches. */
export const arbitraryDelivery: fc.Arbitrary<{ history: History; delivered: StreamEvent[][] }> = arbitraryHistory.chain((history) => {
  const n = history.events.length;
  if (n === 0) return fc.constant({ history, delivered: [] });
  return fc.array(fc.nat({ max: n - 1 }), { maxLength: n }).chain((duplicates) => {
    const copies = [...history.events.keys(), ...duplicates];
    const positions = [...copies.keys()];
    return fc
      .tuple(fc.shuffledSubarray(positions, { minLength: positions.length, maxLength: positions.length }), fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1 }))
      .map(([order, sizes]) => {
        const sequence = order.map((p) => history.events[copies[p]!]!);
        const delivered: StreamEvent[][] = [];
        for (let i = 0, k = 0; i < sequence.length; k += 1) {
          const size = sizes[k % sizes.length]!;
          delivered.push(sequence.slice(i, i + size));
          i += size;
        }
        return { history, delivered };
      });
  });
});
