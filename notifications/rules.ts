// Which changes notify whom: pure. A task's *watchers* are its creator, everyone ever assigned to
// it and everyone who commented on it, each from the event that made them one (`since`). Then
//   - a task created with an assignee, or an update whose `changed` names assignee_id → the new
//     assignee is notified ('assigned');
//   - a new comment → every user it mentions (`@<user id>`) is notified ('mentioned'), and every
//     other watcher of its task from before the comment ('commented');
// never the one who made the change (the comment's author, the transaction's actor). One
// notification per (user, event) at most, its id the event's id: whatever processes the same
// event again — a retry, a replay, a restart — produces the same notification, and the inbox
// stores it once.
//
// Deterministic under replay: a notification depends only on its event and on watcher facts
// from events before it (since < event id). Facts merge by taking the earliest `since`, so what
// a store holds after any prefix of the stream, re-read any number of times, gives every event
// the same watchers — facts from later events, already stored when a batch is re-read, are
// filtered out by their `since`.
import type { StreamEvent } from '@taskflow/stream/events';
import { isEntityChange } from '../schemas/types.js';

export type NotificationKind = 'assigned' | 'mentioned' | 'commented';

export interface Notification {
  /** The event's id: unique within the recipient's inbox. */
  id: string;
  userId: string;
  kind: NotificationKind;
  workspaceId: string;
  projectId: string;
  taskId: string;
  commentId?: string;
  /** Who made the change, when known. */
  actorId?: string;
  /** The event's commit time. */
  time: string;
  /** The task's title (assignments) or the comment's first characters (comments); absent when encrypted. */
  text?: string;
}

/** `userId` watches `taskId` from event `since` on. */
export interface Watch {
  taskId: string;
  userId: string;
  since: string;
}

/** A task's watchers: user → the earliest event that made them one. */
export type Watchers = ReadonlyMap<string, string>;

const UUID = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';
const MENTION = new RegExp(`(?<![\\w@])@(${UUID})(?![\\w-])`, 'g');
const EXCERPT_CHARS = 140;

/** The user ids a comment body mentions (`@<uuid>`, as a mention picker inserts them), lower-cased, each once. */
export function mentionsIn(body: string): string[] {
  return [...new Set([...body.matchAll(MENTION)].map((m) => m[1]!.toLowerCase()))];
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

function actorOf(e: StreamEvent): string | undefined {
  const source = (e.envelope.data as { source?: { actor?: { userId?: unknown } } }).source;
  return str(source?.actor?.userId);
}

function excerpt(text: string): string {
  return text.length <= EXCERPT_CHARS ? text : `${text.slice(0, EXCERPT_CHARS - 1)}…`;
}

/** The row a task or comment event carries (its new image), or undefined for other events and deletes. */
function rowOf(e: StreamEvent, table: 'tasks' | 'comments'): Record<string, unknown> | undefined {
  const env = e.envelope;
  if (!isEntityChange(env)) return undefined;
  const { table: t, op, after } = env.data;
  if (t !== table || op === 'd' || !after || !e.projectId) return undefined;
  const row: object = after; // any entity's row: columns are read by name
  return row as Readonly<Record<string, unknown>>;
}

/** Who an event makes a watcher of which task (snapshot rows included: they say who created, is assigned, commented). */
export function watchesOf(e: StreamEvent): Watch[] {
  const task = rowOf(e, 'tasks');
  if (task) {
    const taskId = str(task.id);
    if (!taskId) return [];
    return [str(task.created_by), str(task.assignee_id)].filter((u): u is string => u !== undefined).map((userId) => ({ taskId, userId: userId.toLowerCase(), since: e.id }));
  }
  const comment = rowOf(e, 'comments');
  const taskId = str(comment?.task_id);
  const author = str(comment?.author_id);
  return taskId && author ? [{ taskId, userId: author.toLowerCase(), since: e.id }] : [];
}

/** The task a new comment is on: the one whose watchers `notificationsOf` needs. */
export function commentedTask(e: StreamEvent): string | undefined {
  const comment = rowOf(e, 'comments');
  return comment && isEntityChange(e.envelope) && e.envelope.data.op === 'c' ? str(comment.task_id) : undefined;
}

/** The notifications of one event, given its task's watchers (any facts; only those from before the event count). */
export function notificationsOf(e: StreamEvent, watchers: Watchers = new Map()): Notification[] {
  if (!isEntityChange(e.envelope)) return [];
  const { op, changed } = e.envelope.data;
  const actor = actorOf(e)?.toLowerCase();
  const base = (userId: string, kind: NotificationKind, taskId: string, text: string | undefined, actorId: string | undefined): Notification => ({
    id: e.id,
    userId,
    kind,
    workspaceId: e.workspaceId,
    projectId: e.projectId!,
    taskId,
    ...(actorId ? { actorId } : {}),
    time: e.envelope.time,
    ...(text !== undefined ? { text: excerpt(text) } : {}),
  });

  const task = rowOf(e, 'tasks');
  if (task) {
    const taskId = str(task.id);
    const assignee = str(task.assignee_id)?.toLowerCase();
    // `changed` is exact only for tables opted in to changed-column capture (schemas/CONTRACTS.md);
    // otherwise it lists every column of `after` and says nothing: no reassignment can be told.
    const exact = changed !== undefined && Object.keys(task).some((c) => !changed.includes(c));
    const assigned = op === 'c' || (op === 'u' && exact && changed.includes('assignee_id'));
    // Creating a task with yourself as assignee is no news; without an actor the creator made it.
    const by = actor ?? (op === 'c' ? str(task.created_by)?.toLowerCase() : undefined);
    if (!taskId || !assignee || !assigned || assignee === by) return [];
    return [base(assignee, 'assigned', taskId, str(task.title), by)];
  }

  const comment = rowOf(e, 'comments');
  const taskId = commentedTask(e);
  if (!comment || !taskId) return [];
  const author = str(comment.author_id)?.toLowerCase();
  const body = str(comment.body);
  const skip = new Set([author, actor].filter((u) => u !== undefined));
  const out: Notification[] = [];
  const commentId = str(comment.id);
  const add = (userId: string, kind: NotificationKind) => {
    if (skip.has(userId)) return;
    skip.add(userId);
    out.push({ ...base(userId, kind, taskId, body, author ?? actor), ...(commentId ? { commentId } : {}) });
  };
  for (const u of body ? mentionsIn(body) : []) add(u, 'mentioned');
  for (const [u, since] of [...watchers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) if (since < e.id) add(u, 'commented');
  return out;
}

/** Watchers with `more` merged in: the earliest `since` of each user wins. */
export function mergeWatches(watchers: Watchers, more: readonly Watch[]): Map<string, string> {
  const out = new Map(watchers);
  for (const w of more) {
    const known = out.get(w.userId);
    if (known === undefined || w.since < known) out.set(w.userId, w.since);
  }
  return out;
}

export interface BatchPlan {
  notifications: Notification[];
  /** Every watcher fact of the batch, for the store (merged by earliest `since`). */
  watches: Watch[];
}

/**
 * A batch of one shard's events, in stream order: `stored` holds the watchers the store knows for
 * the tasks the batch comments on (`commentedTask`); facts of earlier events in the batch are added
 * as the batch goes.
 */
export function planBatch(events: readonly StreamEvent[], stored: ReadonlyMap<string, Watchers>): BatchPlan {
  const known = new Map<string, Map<string, string>>();
  const notifications: Notification[] = [];
  const watches: Watch[] = [];
  for (const e of events) {
    const taskId = commentedTask(e);
    const watchers = taskId ? (known.get(taskId) ?? new Map(stored.get(taskId) ?? [])) : undefined;
    notifications.push(...notificationsOf(e, watchers));
    const facts = watchesOf(e);
    watches.push(...facts);
    for (const f of facts) known.set(f.taskId, mergeWatches(known.get(f.taskId) ?? stored.get(f.taskId) ?? new Map(), [f]));
  }
  return { notifications, watches };
}
