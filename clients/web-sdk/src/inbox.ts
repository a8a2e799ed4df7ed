// The notifications service's inbox API (notifications/api.ts): the pages after a notification
// id (the API lists newest first, `before` an id), the unread count, marking read.
import type { Notification } from './notification-feed.js';

export type InboxOutcome<T> = ({ kind: 'ok' } & T) | { kind: 'unauthorized' | 'forbidden' | 'transient'; detail: string };

export interface InboxRequest {
  notificationsUrl: string;
  workspaceId: string;
  token: string;
  timeoutMs: number;
}

/** Pages read at most per sync: a user away for long gets the newest MAX_SYNC_PAGES pages. */
export const MAX_SYNC_PAGES = 10;

function base(r: InboxRequest): string {
  return `${r.notificationsUrl.replace(/\/+$/, '')}/v1/workspaces/${encodeURIComponent(r.workspaceId)}/notifications`;
}

async function call<T>(r: InboxRequest, path: string, init: RequestInit, parse: (body: unknown) => T): Promise<InboxOutcome<T>> {
  let response: Response;
  try {
    response = await fetch(`${base(r)}${path}`, { ...init, headers: { authorization: `Bearer ${r.token}`, accept: 'application/json', ...(init.body ? { 'content-type': 'application/json' } : {}) }, signal: AbortSignal.timeout(r.timeoutMs) });
  } catch (err) {
    return { kind: 'transient', detail: `inbox request failed: ${String(err)}` };
  }
  if (response.status === 401) return { kind: 'unauthorized', detail: '401 from the inbox API' };
  if (response.status === 403) return { kind: 'forbidden', detail: '403 from the inbox API' };
  if (response.status !== 200) {
    await response.body?.cancel();
    return { kind: 'transient', detail: `inbox API answered ${response.status}` };
  }
  try {
    return { kind: 'ok', ...parse(await response.json()) };
  } catch (err) {
    return { kind: 'transient', detail: `malformed inbox answer: ${String(err)}` };
  }
}

const isNotification = (n: unknown): n is Notification => typeof n === 'object' && n !== null && typeof (n as Notification).id === 'string' && typeof (n as Notification).time === 'string';

function parsePage(body: unknown): { notifications: Notification[]; unread: number; next?: string } {
  const b = body as { notifications?: unknown; unread?: unknown; next?: unknown };
  if (!Array.isArray(b.notifications) || !b.notifications.every(isNotification) || typeof b.unread !== 'number') throw new Error('not an inbox page');
  return { notifications: b.notifications, unread: b.unread, ...(typeof b.next === 'string' ? { next: b.next } : {}) };
}

/** Every notification after `after` (the newest page only without it), and the unread count of the first page. */
export async function fetchInboxSince(r: InboxRequest & { after: string | undefined }): Promise<InboxOutcome<{ notifications: Notification[]; unread: number }>> {
  const out: Notification[] = [];
  let unread: number | undefined;
  let before: string | undefined;
  for (let page = 0; page < MAX_SYNC_PAGES; page++) {
    // No `limit`: pages of the service's own size (NOTIFICATIONS_MAX_PAGE).
    const answer = await call(r, before ? `?before=${encodeURIComponent(before)}` : '', {}, parsePage);
    if (answer.kind !== 'ok') return answer;
    unread ??= answer.unread;
    const newer = r.after === undefined ? answer.notifications : answer.notifications.filter((n) => n.id > r.after!);
    out.push(...newer);
    const reachedKnown = r.after === undefined || newer.length < answer.notifications.length;
    if (reachedKnown || answer.next === undefined) break;
    before = answer.next;
  }
  return { kind: 'ok', notifications: out, unread: unread ?? 0 };
}

export function markInboxRead(r: InboxRequest & { ids: readonly string[] }): Promise<InboxOutcome<{ unread: number }>> {
  return call(r, '/read', { method: 'POST', body: JSON.stringify({ ids: r.ids }) }, (body) => {
    const unread = (body as { unread?: unknown }).unread;
    if (typeof unread !== 'number') throw new Error('no unread count');
    return { unread };
  });
}
