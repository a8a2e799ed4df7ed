// The notifications subscription's rules, pure (like subscription-machine.ts): live notifications
// from the user's topic and the inbox API's answers in, deliveries and requests out.
//
// A notification's id is its event's id, so ids order a user's notifications of a workspace, and
// the service stores a notification in the inbox before it publishes it. Live messages carry no
// sequence number: one lost on the way (QoS 0, a reconnect) cannot be seen as a hole, and
// delivering the next one would put it out of order for good. So a live message is only a signal:
// the feed asks the inbox for everything after the last id it delivered — on every
// (re)subscription too — and delivers the answer, ascending, each id once. A message that comes
// while a request is in flight asks for one more request after it. Older ids than the last
// delivered one are redeliveries (a retried batch, a replay) and change nothing.
import { fullJitterDelay, type BackoffOptions } from './backoff.js';

export interface Notification {
  /** The event's id (`<commit LSN>-<index>`): orders a user's notifications, unique in the inbox. */
  readonly id: string;
  readonly userId: string;
  readonly kind: string;
  readonly workspaceId: string;
  readonly projectId: string;
  readonly taskId: string;
  readonly commentId?: string;
  readonly actorId?: string;
  /** The event's commit time. */
  readonly time: string;
  readonly text?: string;
  /** As the inbox knows it (live messages: false). */
  readonly read?: boolean;
}

export interface FeedState {
  phase: 'waiting' | 'syncing' | 'live';
  /** The highest id delivered. */
  lastId: string | undefined;
  /** A live message newer than lastId came during the request in flight (or while waiting). */
  dirty: boolean;
  unread: number | undefined;
  /** Of the request in flight; answers to older ones are ignored. */
  requestId: number;
  attempt: number;
  retryAt: number | undefined;
}

export type FeedEvent =
  | { type: 'subscribed'; now: number }
  | { type: 'disconnected' }
  | { type: 'live'; notification: Pick<Notification, 'id'> }
  | { type: 'syncOk'; requestId: number; notifications: readonly Notification[]; unread: number }
  | { type: 'syncFailed'; requestId: number; now: number; random: number }
  | { type: 'unread'; unread: number }
  | { type: 'refresh' }
  | { type: 'tick'; now: number };

export type FeedEffect =
  | { type: 'deliver'; notifications: Notification[] }
  | { type: 'unread'; unread: number }
  /** Fetch the inbox after `after` (all its pages; the newest page only when undefined). */
  | { type: 'sync'; requestId: number; after: string | undefined }
  | { type: 'status'; status: 'connecting' | 'recovering' | 'live' | 'offline' };

export function initialFeed(afterId?: string): FeedState {
  return { phase: 'waiting', lastId: afterId, dirty: false, unread: undefined, requestId: 0, attempt: 0, retryAt: undefined };
}

const newer = (lastId: string | undefined, id: string) => lastId === undefined || id > lastId;

function startSync(state: FeedState, recovering: boolean): { state: FeedState; effects: FeedEffect[] } {
  const requestId = state.requestId + 1;
  return {
    state: { ...state, phase: 'syncing', dirty: false, requestId, retryAt: undefined },
    effects: [{ type: 'sync', requestId, after: state.lastId }, ...(recovering ? [{ type: 'status' as const, status: 'recovering' as const }] : [])],
  };
}

export function feedTransition(state: FeedState, event: FeedEvent, backoff: BackoffOptions): { state: FeedState; effects: FeedEffect[] } {
  switch (event.type) {
    case 'subscribed':
      return startSync({ ...state, attempt: 0 }, true);
    case 'refresh':
      return state.phase === 'live' ? startSync(state, false) : { state, effects: [] };
    case 'disconnected':
      return { state: { ...state, phase: 'waiting', retryAt: undefined, requestId: state.requestId + 1 }, effects: [{ type: 'status', status: 'offline' }] };
    case 'live':
      if (!newer(state.lastId, event.notification.id)) return { state, effects: [] };
      if (state.phase === 'live') return startSync(state, false);
      return { state: { ...state, dirty: true }, effects: [] };
    case 'syncOk': {
      if (event.requestId !== state.requestId || state.phase !== 'syncing') return { state, effects: [] };
      const byId = new Map<string, Notification>();
      for (const n of event.notifications) if (newer(state.lastId, n.id)) byId.set(n.id, n);
      const fresh = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
      const lastId = fresh.at(-1)?.id ?? state.lastId;
      const effects: FeedEffect[] = [...(fresh.length ? [{ type: 'deliver' as const, notifications: fresh }] : []), { type: 'unread', unread: event.unread }];
      const next: FeedState = { ...state, lastId, unread: event.unread, attempt: 0 };
      if (state.dirty) {
        const again = startSync(next, false);
        return { state: again.state, effects: [...effects, ...again.effects] };
      }
      return { state: { ...next, phase: 'live' }, effects: [...effects, { type: 'status', status: 'live' }] };
    }
    case 'syncFailed': {
      if (event.requestId !== state.requestId || state.phase !== 'syncing') return { state, effects: [] };
      const retryAt = event.now + fullJitterDelay(state.attempt, event.random, backoff);
      return { state: { ...state, attempt: state.attempt + 1, retryAt }, effects: [] };
    }
    case 'tick':
      if (state.phase === 'syncing' && state.retryAt !== undefined && event.now >= state.retryAt) {
        const requestId = state.requestId + 1;
        return { state: { ...state, requestId, retryAt: undefined, dirty: false }, effects: [{ type: 'sync', requestId, after: state.lastId }] };
      }
      return { state, effects: [] };
    case 'unread':
      return { state: { ...state, unread: event.unread }, effects: [{ type: 'unread', unread: event.unread }] };
  }
}
