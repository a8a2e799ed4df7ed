// Which topics have a live subscriber, so the router publishes only where someone listens (the
// changelog is written regardless; a late subscriber catches up through the replay API).
// Fed by broker lifecycle events: aedes' $SYS/<broker>/new/subscribes, …/new/unsubscribes and
// …/disconnect/clients locally; IoT Core's $aws/events/subscriptions/* and presence events in
// production. Parsing is pure and separate from the tracker.
import { filterCovers } from '../lib/authz.js';

export type SubscriptionEvent =
  | { kind: 'subscribed'; clientId: string; filters: string[] }
  | { kind: 'unsubscribed'; clientId: string; filters: string[] }
  | { kind: 'disconnected'; clientId: string };

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
      const body = JSON.parse(payload.toString('utf8')) as { clientId: string; topics?: string[]; eventType: string };
      if (body.eventType === 'subscribed') return { kind: 'subscribed', clientId: body.clientId, filters: body.topics ?? [] };
      if (body.eventType === 'unsubscribed') return { kind: 'unsubscribed', clientId: body.clientId, filters: body.topics ?? [] };
      if (body.eventType === 'disconnected') return { kind: 'disconnected', clientId: body.clientId };
    }
  } catch {
    return undefined;
  }
  return undefined;
}

export class LiveSubscriptions {
  private readonly byClient = new Map<string, Set<string>>();
  /** filter → number of clients holding it */
  private readonly filters = new Map<string, number>();

  apply(event: SubscriptionEvent): void {
    if (event.kind === 'disconnected') {
      for (const f of this.byClient.get(event.clientId) ?? []) this.release(f);
      this.byClient.delete(event.clientId);
      return;
    }
    let held = this.byClient.get(event.clientId);
    if (!held) this.byClient.set(event.clientId, (held = new Set()));
    for (const f of event.filters) {
      if (event.kind === 'subscribed' && !held.has(f)) {
        held.add(f);
        this.filters.set(f, (this.filters.get(f) ?? 0) + 1);
      } else if (event.kind === 'unsubscribed' && held.delete(f)) {
        this.release(f);
      }
    }
    if (held.size === 0) this.byClient.delete(event.clientId);
  }

  hasSubscriber(topic: string): boolean {
    if (this.filters.has(topic)) return true;
    for (const f of this.filters.keys()) if (filterCovers(f, topic)) return true;
    return false;
  }

  get clientCount(): number {
    return this.byClient.size;
  }

  private release(filter: string): void {
    const n = (this.filters.get(filter) ?? 0) - 1;
    if (n <= 0) this.filters.delete(filter);
    else this.filters.set(filter, n);
  }
}
