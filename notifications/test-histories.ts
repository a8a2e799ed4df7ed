// Random commit-ordered histories of a few tasks and their comments, as valid envelopes, and the
// notifications they must produce according to a plain in-order reading of the rules (a model
// written apart from rules.ts: it keeps its own copy of each task instead of trusting `changed`,
// and keeps watchers as sets). The rules' and the pipeline's property tests share them.
import fc from 'fast-check';
import { decodeEvent, type StreamEvent } from '@taskflow/stream/events';
import { sampleEvent } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import type { Notification } from './rules.js';

export const WS = '11111111-1111-4111-8111-0000000000b1';
export const PROJECT = '22222222-2222-4222-8222-0000000000b1';
export const USERS = ['66666666-6666-4666-8666-0000000000b1', '66666666-6666-4666-8666-0000000000b2', '66666666-6666-4666-8666-0000000000b3', '66666666-6666-4666-8666-0000000000b4'] as const;
/** Mentioned, but never a member of anything. */
export const STRANGER = '66666666-6666-4666-8666-0000000000ff';
export const TASKS = ['33333333-3333-4333-8333-0000000000b1', '33333333-3333-4333-8333-0000000000b2'] as const;

type Actor = { kind: 'none' } | { kind: 'user'; user: number };

export type Step =
  | { kind: 'create'; task: number; creator: number; assignee: number | null; actor: Actor; sameTx: boolean; snapshot: boolean }
  | { kind: 'assign'; task: number; assignee: number | null; actor: Actor; sameTx: boolean }
  | { kind: 'retitle'; task: number; actor: Actor; sameTx: boolean }
  | { kind: 'comment'; task: number; author: number; mentions: number[]; mentionStranger: boolean; actor: Actor; sameTx: boolean; snapshot: boolean }
  | { kind: 'delete-task'; task: number; sameTx: boolean };

const user = fc.nat({ max: USERS.length - 1 });
const task = fc.nat({ max: TASKS.length - 1 });
const actor: fc.Arbitrary<Actor> = fc.oneof(fc.constant({ kind: 'none' as const }), fc.record({ kind: fc.constant('user' as const), user }));

export const steps: fc.Arbitrary<Step[]> = fc.array(
  fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('create' as const), task, creator: user, assignee: fc.option(user, { nil: null }), actor, sameTx: fc.boolean(), snapshot: fc.boolean() }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('assign' as const), task, assignee: fc.option(user, { nil: null }), actor, sameTx: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('retitle' as const), task, actor, sameTx: fc.boolean() }) },
    {
      weight: 5,
      arbitrary: fc.record({ kind: fc.constant('comment' as const), task, author: user, mentions: fc.subarray([0, 1, 2, 3]), mentionStranger: fc.boolean(), actor, sameTx: fc.boolean(), snapshot: fc.boolean() }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete-task' as const), task, sameTx: fc.boolean() }) },
  ),
  { maxLength: 40 },
);

/** The rules' excerpt: at most 140 characters. */
const excerpt = (t: string) => (t.length <= 140 ? t : `${t.slice(0, 139)}…`);

function decoded(e: unknown): StreamEvent {
  const d = decodeEvent(Buffer.from(JSON.stringify(e)), validateEvent);
  if (!d.ok) throw new Error(`test history made an invalid event: ${d.message}`);
  return d.event;
}

function withActor<T extends { data: { source?: unknown } }>(e: T, a: Actor): T {
  if (a.kind === 'user') (e.data.source as Record<string, unknown>).actor = { userId: USERS[a.user], via: 'test' };
  return e;
}

export interface History {
  events: StreamEvent[];
  /** What the rules must produce, in event order. */
  notifications: Notification[];
}

/** Interprets steps as the database would (a comment needs its task; a snapshot only while nothing was written yet), and the model alongside. */
export function historyOf(list: readonly Step[]): History {
  const rows = new Map<number, { title: string; assignee: string | null; creator: string }>();
  // Task ids are never reused (UUIDs): a deleted task is not created again.
  const deleted = new Set<number>();
  const watchers = new Map<number, Set<string>>();
  const events: StreamEvent[] = [];
  const notifications: Notification[] = [];
  let lsn = 0x2000n;
  let txIndex = 0;
  let comments = 0;
  let streaming = false;
  const at = (sameTx: boolean) => {
    if (sameTx && events.length > 0) txIndex += 1;
    else {
      lsn += 0x100n;
      txIndex = 0;
    }
    return { commitLsn: lsn, txIndex, txSize: 1000, workspaceId: WS, projectId: PROJECT, time: new Date(Number(lsn)).toISOString() };
  };
  const actorId = (a: Actor) => (a.kind === 'user' ? USERS[a.user] : undefined);
  // Task and comment events alternate between schema v1 and v2 (as across a schema change): a
  // reader must notify the same either way.
  const mixedVersion = (n: number) => ({ schemaVersion: n % 2 === 0 ? 1 : 2 });
  for (const s of list) {
    const current = rows.get(s.task);
    const taskId = TASKS[s.task]!;
    // A snapshot reads rows that exist before capture starts: only at the beginning.
    const snapshot = (s.kind === 'create' || s.kind === 'comment') && s.snapshot && !streaming;
    if (!snapshot) streaming = true;
    if (s.kind === 'create') {
      if (current || deleted.has(s.task)) continue;
      const creator = USERS[s.creator]!;
      const assignee = s.assignee === null ? null : USERS[s.assignee]!;
      const title = `Task ${events.length}`;
      const e = decoded(withActor(sampleEvent(snapshot ? 'task.snapshot' : 'task.created', { ...at(s.sameTx), ...mixedVersion(events.length), entityId: taskId, row: { title, assignee_id: assignee, created_by: creator } }), s.actor));
      events.push(e);
      rows.set(s.task, { title, assignee, creator });
      const by = actorId(s.actor) ?? creator;
      if (!snapshot && assignee && assignee !== by) notifications.push({ id: e.id, userId: assignee, kind: 'assigned', workspaceId: WS, projectId: PROJECT, taskId, actorId: by, time: e.envelope.time, text: title });
      watchers.set(s.task, new Set([creator, ...(assignee ? [assignee] : [])]));
      continue;
    }
    if (!current) continue;
    if (s.kind === 'assign' || s.kind === 'retitle') {
      const assignee = s.kind === 'assign' ? (s.assignee === null ? null : USERS[s.assignee]!) : current.assignee;
      const title = s.kind === 'retitle' ? `${current.title}!` : current.title;
      const changed = [...(assignee !== current.assignee ? ['assignee_id'] : []), ...(title !== current.title ? ['title'] : []), 'updated_at'];
      const e = decoded(withActor(sampleEvent('task.updated', { ...at(s.sameTx), ...mixedVersion(events.length), entityId: taskId, row: { title, assignee_id: assignee, created_by: current.creator }, changed }), s.actor));
      events.push(e);
      const by = actorId(s.actor);
      if (assignee && assignee !== current.assignee && assignee !== by) {
        notifications.push({ id: e.id, userId: assignee, kind: 'assigned', workspaceId: WS, projectId: PROJECT, taskId, ...(by ? { actorId: by } : {}), time: e.envelope.time, text: title });
      }
      if (assignee) watchers.get(s.task)!.add(assignee);
      rows.set(s.task, { ...current, title, assignee });
      continue;
    }
    if (s.kind === 'delete-task') {
      events.push(decoded(sampleEvent('task.deleted', { ...at(s.sameTx), ...mixedVersion(events.length), entityId: taskId })));
      rows.delete(s.task);
      deleted.add(s.task);
      continue;
    }
    // A comment.
    const author = USERS[s.author]!;
    const mentioned = [...s.mentions.map((m) => USERS[m]!), ...(s.mentionStranger ? [STRANGER] : [])];
    const body = `Please look ${mentioned.map((m) => `@${m}`).join(' and ')}.`;
    const commentId = `44444444-4444-4444-8444-${String(comments++).padStart(12, '0')}`;
    const e = decoded(withActor(sampleEvent(snapshot ? 'comment.snapshot' : 'comment.created', { ...at(s.sameTx), ...mixedVersion(events.length), entityId: commentId, row: { task_id: taskId, author_id: author, body } }), s.actor));
    events.push(e);
    if (!snapshot) {
      const skip = new Set<string | undefined>([author, actorId(s.actor)]);
      const notify = (userId: string, kind: Notification['kind']) => {
        if (skip.has(userId)) return;
        skip.add(userId);
        notifications.push({ id: e.id, userId, kind, workspaceId: WS, projectId: PROJECT, taskId, commentId, actorId: author, time: e.envelope.time, text: excerpt(body) });
      };
      for (const m of mentioned) notify(m, 'mentioned');
      for (const w of [...watchers.get(s.task)!].sort()) notify(w, 'commented');
    }
    watchers.get(s.task)!.add(author);
  }
  return { events, notifications };
}
