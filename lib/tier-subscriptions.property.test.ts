// The per-node tracker against a model of the nodes themselves: any interleaving of clients
// subscribing, unsubscribing and disconnecting on any node, the router connecting to a node
// (lifecycle subscription first, then GET /subscriptions, whose snapshot is taken and answered at
// any later point, also after the connection it was made on is gone), lifecycle events delivered
// late, connections dropping and nodes restarting. At every step a node the router is not
// connected to gets nothing and one still loading gets everything; once a loaded node's events
// have all arrived, it is a topic's target exactly when a live session of the node covers it,
// and the revocation list is its sessions' client ids.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { clientIdUser, filterCovers } from './authz.js';
import type { SubscriptionEvent } from './subscriptions.js';
import { type NodeSession, TierSubscriptions } from './tier-subscriptions.js';

const NODES = ['n0', 'n1'];
const FILTERS = ['taskflow/v1/ws/w1/projects/+', 'taskflow/v1/ws/w1/projects/p1', 'taskflow/v1/ws/w2/projects/p2', 'taskflow/v1/ws/w1/users/u0'];
const TOPICS = ['taskflow/v1/ws/w1/projects/p1', 'taskflow/v1/ws/w1/projects/p3', 'taskflow/v1/ws/w2/projects/p2', 'taskflow/v1/ws/w1/users/u0'];
const CLIENTS = 4;
const clientId = (c: number) => `u${c % 2}.c${c}`;

type Op =
  | { op: 'subscribe' | 'unsubscribe'; node: number; client: number; filter: number }
  | { op: 'clientDisconnect' | 'connect' | 'takeSnapshot' | 'deliver' | 'drop' | 'restart'; node: number; client: number; filter: number }
  | { op: 'answer'; node: number; client: number; filter: number };

const opArb: fc.Arbitrary<Op> = fc.record({
  op: fc.constantFrom('subscribe', 'subscribe', 'unsubscribe', 'clientDisconnect', 'connect', 'takeSnapshot', 'answer', 'deliver', 'deliver', 'deliver', 'drop', 'restart'),
  node: fc.nat(NODES.length - 1),
  client: fc.nat(CLIENTS - 1),
  filter: fc.nat(FILTERS.length - 1),
}) as fc.Arbitrary<Op>;

/** One broker node as it is, and what is in flight between it and the router. */
interface ModelNode {
  sessions: Map<number, { sessionId: string; filters: Set<string> }>;
  /** The router's connection: its lifecycle subscription is made as it comes up. */
  up: boolean;
  generation: number;
  inFlight: SubscriptionEvent[];
  gets: { generation: number; snapshot?: NodeSession[] }[];
  /** The current generation's snapshot was answered. */
  loaded: boolean;
}

function run(ops: readonly Op[]): void {
  const tracker = new TierSubscriptions(NODES);
  let sessionSeq = 0;
  const nodes: ModelNode[] = NODES.map(() => ({ sessions: new Map(), up: false, generation: 0, inFlight: [], gets: [], loaded: false }));
  const emit = (n: ModelNode, e: SubscriptionEvent) => {
    if (n.up) n.inFlight.push(e);
  };
  const drop = (i: number) => {
    const n = nodes[i]!;
    if (!n.up) return;
    n.up = false;
    n.inFlight = [];
    n.loaded = false;
    tracker.disconnected(NODES[i]!);
  };
  for (const o of ops) {
    const n = nodes[o.node]!;
    const node = NODES[o.node]!;
    const filter = FILTERS[o.filter]!;
    const id = clientId(o.client);
    switch (o.op) {
      case 'subscribe': {
        let s = n.sessions.get(o.client);
        if (!s) n.sessions.set(o.client, (s = { sessionId: `s${++sessionSeq}`, filters: new Set() }));
        s.filters.add(filter);
        emit(n, { kind: 'subscribed', clientId: id, sessionId: s.sessionId, filters: [filter] });
        break;
      }
      case 'unsubscribe': {
        const s = n.sessions.get(o.client);
        if (!s) break;
        s.filters.delete(filter);
        emit(n, { kind: 'unsubscribed', clientId: id, sessionId: s.sessionId, filters: [filter] });
        break;
      }
      case 'clientDisconnect': {
        const s = n.sessions.get(o.client);
        if (!s) break;
        n.sessions.delete(o.client);
        emit(n, { kind: 'disconnected', clientId: id, sessionId: s.sessionId });
        break;
      }
      case 'connect':
        if (n.up) break;
        n.up = true;
        n.loaded = false;
        n.generation = tracker.connected(node);
        n.gets.push({ generation: n.generation });
        break;
      case 'takeSnapshot': {
        const get = n.gets.find((g) => !g.snapshot);
        if (get) get.snapshot = [...n.sessions].map(([c, s]) => ({ clientId: clientId(c), sessionId: s.sessionId, filters: [...s.filters] }));
        break;
      }
      case 'answer': {
        // Answers may come in any order, also after their connection is gone.
        const answered = n.gets.filter((g) => g.snapshot);
        const get = answered[o.client % Math.max(1, answered.length)];
        if (!get) break;
        n.gets.splice(n.gets.indexOf(get), 1);
        const applied = tracker.loaded(node, get.generation, get.snapshot!);
        expect(applied).toBe(n.up && !n.loaded && get.generation === n.generation);
        if (applied) n.loaded = true;
        break;
      }
      case 'deliver': {
        const e = n.inFlight.shift();
        if (e) tracker.event(node, e);
        break;
      }
      case 'drop':
        drop(o.node);
        break;
      case 'restart':
        for (const [c, s] of n.sessions) emit(n, { kind: 'disconnected', clientId: clientId(c), sessionId: s.sessionId });
        n.sessions.clear();
        drop(o.node);
        break;
    }
    check(tracker, nodes);
  }
  // Everything arrives: every node is then exact.
  for (const [i, n] of nodes.entries()) {
    for (const e of n.inFlight.splice(0)) tracker.event(NODES[i]!, e);
    if (n.up && !n.loaded) {
      expect(tracker.loaded(NODES[i]!, n.generation, [...n.sessions].map(([c, s]) => ({ clientId: clientId(c), sessionId: s.sessionId, filters: [...s.filters] })))).toBe(true);
      n.loaded = true;
    }
  }
  check(tracker, nodes);
}

function check(tracker: TierSubscriptions, nodes: readonly ModelNode[]): void {
  for (const [i, n] of nodes.entries()) expect(tracker.status(NODES[i]!)).toBe(!n.up ? 'down' : n.loaded ? 'live' : 'loading');
  for (const topic of TOPICS) {
    const targets = new Set(tracker.targets(topic));
    expect(tracker.hasSubscriber(topic)).toBe(targets.size > 0);
    for (const [i, n] of nodes.entries()) {
      const node = NODES[i]!;
      if (!n.up) expect(targets.has(node)).toBe(false);
      else if (!n.loaded) expect(targets.has(node)).toBe(true);
      else if (n.inFlight.length === 0) expect(targets.has(node)).toBe([...n.sessions.values()].some((s) => [...s.filters].some((f) => filterCovers(f, topic))));
    }
  }
  for (const user of ['u0', 'u1']) {
    const expected = nodes.flatMap((n, i) =>
      n.up && n.loaded && n.inFlight.length === 0 ? [...n.sessions].filter(([c, s]) => clientIdUser(clientId(c)) === user && s.filters.size > 0).map(([c]) => `${NODES[i]}/${clientId(c)}`) : [],
    );
    const quiet = new Set(nodes.flatMap((n, i) => (n.up && n.loaded && n.inFlight.length === 0 ? [NODES[i]] : [])));
    const got = tracker.connectionsOf(user).filter((c) => quiet.has(c.node)).map((c) => `${c.node}/${c.clientId}`);
    expect(got.sort()).toEqual(expected.sort());
  }
}

describe('TierSubscriptions', () => {
  it('targets exactly the nodes with a live subscriber, whatever the interleaving of connects, snapshots, lifecycle events and disconnects', () => {
    fc.assert(fc.property(fc.array(opArb, { maxLength: 100, size: 'max' }), (ops) => run(ops)), { numRuns: 200 });
  });

  it('applies lifecycle events that arrive while the snapshot is in flight over it', () => {
    const tracker = new TierSubscriptions(['a', 'b']);
    const g = tracker.connected('a');
    const t = 'taskflow/v1/ws/w/projects/p';
    tracker.event('a', { kind: 'subscribed', clientId: 'u.1', sessionId: 's2', filters: [t] });
    tracker.event('a', { kind: 'disconnected', clientId: 'u.0', sessionId: 's1' });
    expect(tracker.targets(t)).toEqual(['a']); // loading: everything goes there
    // The snapshot was taken before both events: s1 still subscribed, s2 not yet.
    expect(tracker.loaded('a', g, [{ clientId: 'u.0', sessionId: 's1', filters: ['taskflow/v1/ws/w/projects/+'] }])).toBe(true);
    expect(tracker.connectionsOf('u')).toEqual([{ node: 'a', clientId: 'u.1' }]);
    expect(tracker.targets('taskflow/v1/ws/w/projects/q')).toEqual([]);
    expect(tracker.targets(t)).toEqual(['a']);
    tracker.disconnected('a');
    expect(tracker.targets(t)).toEqual([]);
    expect(tracker.loaded('a', g, [])).toBe(false); // a late answer of a connection gone
  });
});
