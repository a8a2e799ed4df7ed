// Which topics have a live subscriber, so the router publishes only where someone listens (the
// changelog is written regardless; a late subscriber catches up through the replay API).
// Fed by broker lifecycle events: aedes' $SYS/<broker>/new/subscribes, …/new/unsubscribes and
// …/disconnect/clients locally; IoT Core's $aws/events/subscriptions/* and presence events in
// production (the local broker emits those too, see infra/local/broker.ts). Parsing is pure and
// separate from the tracker.
//
// Subscriptions are tracked per session, not per client id: when a client reconnects under the
// same id, the broker's disconnect event of the old session can arrive after the new session
// subscribed (IoT Core does not order lifecycle events; aedes reports a taken-over session late).
// Keyed by client id alone, that late disconnect would silence a live subscriber. IoT Core's
// events carry `sessionIdentifier`; aedes' $SYS events do not, so that mode keeps the race.
import { clientIdUser, filterCovers } from './authz.js';

export type SubscriptionEvent =
  | { kind: 'subscribed'; clientId: string; sessionId?: string; filters: string[] }
  | { kind: 'unsubscribed'; clientId: string; sessionId?: string; filters: string[] }
  | { kind: 'disconnected'; clientId: string; sessionId?: string };

/** Topic filters the router subscribes to for the given source of lifecycle events. */
export const LIFECYCLE_FILTERS = {
  aedes: ['$SYS/+/new/subscribes', '$SYS/+/new/unsubscribes', '$SYS/+/disconnect/clients'],
  iot: ['$aws/events/subscriptions/subscribed/+', '$aws/events/subscriptions/unsubscribed/+', '$aws/events/presence/disconnected/+'],
} as const;

export function parseLifecycleMessage(topic: string, payload: Buffer): SubscriptionEvent | undefined {
  try {
    if (topic.startsWith('$SYS/')) {
      if (topic.endsWith('/disconnect/clients')) return { kind: 'disconnected', clientId: payload.toString('utf8') };
      const body = JSON.parse(payload.toString('utf8')) as { clientId: string; subs: ({ topic: string; qos: number } | string)[] };
      if (topic.endsWith('/new/subscribes')) {
        // Refused subscriptions (granted 128) are reported too: they do not count.
        const filters = body.subs.flatMap((s) => (typeof s === 'object' && s.qos !== 128 ? [s.topic] : []));
        return { kind: 'subscribed', clientId: body.clientId, filters };
      }
      if (topic.endsWith('/new/unsubscribes')) return { kind: 'unsubscribed', clientId: body.clientId, filters: body.subs.filter((s): s is string => typeof s === 'string') };
      return undefined;
    }
    if (topic.startsWith('$aws/events/')) {
      const body = JSON.parse(payload.toString('utf8')) as { clientId: string; sessionIdentifier?: string; topics?: string[]; eventType: string };
      const session = typeof body.sessionIdentifier === 'string' && body.sessionIdentifier !== '' ? { sessionId: body.sessionIdentifier } : {};
      if (body.eventType === 'subscribed') return { kind: 'subscribed', clientId: body.clientId, ...session, filters: body.topics ?? [] };
      if (body.eventType === 'unsubscribed') return { kind: 'unsubscribed', clientId: body.clientId, ...session, filters: body.topics ?? [] };
      if (body.eventType === 'disconnected') return { kind: 'disconnected', clientId: body.clientId, ...session };
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/** The tracker's key of a client's session ('' for sources without session ids). */
export function sessionKey(event: { clientId: string; sessionId?: string }): string {
  return event.sessionId === undefined ? event.clientId : `${event.clientId}#${event.sessionId}`;
}

/** Ended sessions remembered to ignore their late subscribe events (unordered sources). */
const ENDED_SESSIONS_KEPT = 10_000;

export class LiveSubscriptions {
  private readonly bySession = new Map<string, Set<string>>();
  /** user id (the prefix of a bound client id) → its sessions' keys → client id */
  private readonly byUser = new Map<string, Map<string, string>>();
  /** filter → number of sessions holding it */
  private readonly filters = new Map<string, number>();
  private readonly ended = new Set<string>();

  apply(event: SubscriptionEvent): void {
    const key = sessionKey(event);
    if (event.kind === 'disconnected') {
      for (const f of this.bySession.get(key) ?? []) this.release(f);
      this.endSession(key, event.clientId);
      if (event.sessionId !== undefined) this.remember(key);
      return;
    }
    if (this.ended.has(key)) return;
    let held = this.bySession.get(key);
    if (!held) {
      this.bySession.set(key, (held = new Set()));
      const userId = clientIdUser(event.clientId);
      if (userId !== undefined) {
        let sessions = this.byUser.get(userId);
        if (!sessions) this.byUser.set(userId, (sessions = new Map()));
        sessions.set(key, event.clientId);
      }
    }
    for (const f of event.filters) {
      if (event.kind === 'subscribed' && !held.has(f)) {
        held.add(f);
        this.filters.set(f, (this.filters.get(f) ?? 0) + 1);
      } else if (event.kind === 'unsubscribed' && held.delete(f)) {
        this.release(f);
      }
    }
    if (held.size === 0) this.endSession(key, event.clientId);
  }

  /** Client ids of the user's sessions that hold subscriptions (what revocation disconnects). */
  connectionsOf(userId: string): string[] {
    return [...new Set(this.byUser.get(userId)?.values() ?? [])];
  }

  hasSubscriber(topic: string): boolean {
    if (this.filters.has(topic)) return true;
    for (const f of this.filters.keys()) if (filterCovers(f, topic)) return true;
    return false;
  }

  /** Sessions holding at least one subscription. */
  get sessionCount(): number {
    return this.bySession.size;
  }

  private endSession(key: string, clientId: string): void {
    this.bySession.delete(key);
    const userId = clientIdUser(clientId);
    const sessions = userId === undefined ? undefined : this.byUser.get(userId);
    if (!sessions) return;
    sessions.delete(key);
    if (sessions.size === 0) this.byUser.delete(userId!);
  }

  private remember(key: string): void {
    this.ended.add(key);
    if (this.ended.size > ENDED_SESSIONS_KEPT) this.ended.delete(this.ended.values().next().value as string);
  }

  private release(filter: string): void {
    const n = (this.filters.get(filter) ?? 0) - 1;
    if (n <= 0) this.filters.delete(filter);
    else this.filters.set(filter, n);
  }
}
