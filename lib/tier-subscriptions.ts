// Live subscriptions of a tier of independent (not clustered) broker nodes, tracked per node: a
// message goes only to the nodes where a subscriber of its topic is. Pure: the adapter
// (broker-tier.ts) feeds it each node's connection state, lifecycle events and snapshots.
//
// A node's state is loaded from its GET /subscriptions snapshot each time the router (re)connects
// to it. The lifecycle subscription is made first and the events arriving while the snapshot is
// in flight are buffered, then applied over it: events the snapshot already reflects are applied
// again, which changes nothing (per session and filter the last event wins; a disconnected session
// stays ended), and the ones it missed are not lost. Until the snapshot is in, the node gets every
// message (nothing is known yet; a superfluous publish costs little, a missed one a replay).
// Disconnecting from a node forgets only that node's sessions: its clients reconnect somewhere.
import { LiveSubscriptions, type SubscriptionEvent } from './subscriptions.js';

export interface NodeSession {
  clientId: string;
  sessionId: string;
  filters: string[];
}

type NodeState =
  | { status: 'down' }
  | { status: 'loading'; generation: number; buffered: SubscriptionEvent[] }
  | { status: 'live'; generation: number; live: LiveSubscriptions };

export class TierSubscriptions {
  private readonly nodes = new Map<string, NodeState>();
  private generations = 0;

  constructor(nodeIds: readonly string[]) {
    for (const id of nodeIds) this.nodes.set(id, { status: 'down' });
  }

  /**
   * The router's connection to the node is up (call before subscribing to its lifecycle events):
   * events are buffered from now on. Returns the generation `loaded` must name.
   */
  connected(node: string): number {
    this.state(node);
    const generation = ++this.generations;
    this.nodes.set(node, { status: 'loading', generation, buffered: [] });
    return generation;
  }

  /** The connection to the node dropped (or the node restarted): its sessions are forgotten. */
  disconnected(node: string): void {
    this.state(node);
    this.nodes.set(node, { status: 'down' });
  }

  /** A lifecycle event received on the node's connection. */
  event(node: string, event: SubscriptionEvent): void {
    const s = this.state(node);
    if (s.status === 'loading') s.buffered.push(event);
    else if (s.status === 'live') s.live.apply(event);
  }

  /**
   * The node's snapshot, answered to the request made in `generation`: replaces what was known of
   * the node, then the buffered events are applied. False (ignored) when the connection it was
   * made on has gone since.
   */
  loaded(node: string, generation: number, sessions: readonly NodeSession[]): boolean {
    const s = this.state(node);
    if (s.status !== 'loading' || s.generation !== generation) return false;
    const live = new LiveSubscriptions();
    for (const session of sessions) live.apply({ kind: 'subscribed', clientId: session.clientId, sessionId: session.sessionId, filters: session.filters });
    for (const event of s.buffered) live.apply(event);
    this.nodes.set(node, { status: 'live', generation, live });
    return true;
  }

  /** The nodes the topic's messages go to: the loaded ones with a subscriber covering it, and the loading ones. */
  targets(topic: string): string[] {
    const out: string[] = [];
    for (const [id, s] of this.nodes) if (s.status === 'loading' || (s.status === 'live' && s.live.hasSubscriber(topic))) out.push(id);
    return out;
  }

  hasSubscriber(topic: string): boolean {
    for (const s of this.nodes.values()) if (s.status === 'loading' || (s.status === 'live' && s.live.hasSubscriber(topic))) return true;
    return false;
  }

  /** The user's subscribed connections per node (what revocation disconnects). */
  connectionsOf(userId: string): { node: string; clientId: string }[] {
    const out: { node: string; clientId: string }[] = [];
    for (const [node, s] of this.nodes) if (s.status === 'live') for (const clientId of s.live.connectionsOf(userId)) out.push({ node, clientId });
    return out;
  }

  /** Nodes connected but not loaded yet: they get every message, and their sessions are not known. */
  loadingNodes(): string[] {
    return [...this.nodes].filter(([, s]) => s.status === 'loading').map(([id]) => id);
  }

  status(node: string): NodeState['status'] {
    return this.state(node).status;
  }

  /** Nodes the router is connected to (loading or loaded). */
  get nodesConnected(): number {
    let n = 0;
    for (const s of this.nodes.values()) if (s.status !== 'down') n += 1;
    return n;
  }

  /** Sessions holding subscriptions, over the loaded nodes. */
  get sessionCount(): number {
    let n = 0;
    for (const s of this.nodes.values()) if (s.status === 'live') n += s.live.sessionCount;
    return n;
  }

  private state(node: string): NodeState {
    const s = this.nodes.get(node);
    if (!s) throw new Error(`unknown broker node ${node}`);
    return s;
  }
}
