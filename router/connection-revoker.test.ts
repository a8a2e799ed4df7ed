// Tier-mode revocation against the real subscription tracking (lib/tier-subscriptions.ts) and a
// recorded DELETE /connections: the nodes loaded, loading and loading later.
import { describe, expect, it } from '@jest/globals';
import { TierSubscriptions } from '../lib/tier-subscriptions.js';
import { type RevokerTier, TierConnectionRevoker } from './connection-revoker.js';

const TOPIC = 'taskflow/v1/ws/w/projects/p';
const session = (clientId: string) => ({ clientId, sessionId: `${clientId}-s`, filters: [TOPIC] });

function tier(nodes: string[]) {
  const tracker = new TierSubscriptions(nodes);
  const listeners: ((node: string) => void)[] = [];
  const deleted: string[] = [];
  const fake: RevokerTier & { deleted: string[]; connect(node: string): number; load(node: string, generation: number, clientIds: string[]): void } = {
    tracker,
    deleted,
    onNodeLoaded: (l) => void listeners.push(l),
    deleteConnection: async (node, clientId) => void deleted.push(`${node}/${clientId}`),
    connect: (node) => tracker.connected(node),
    load(node, generation, clientIds) {
      if (tracker.loaded(node, generation, clientIds.map(session))) for (const l of listeners) l(node);
    },
  };
  return fake;
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 60));

describe('tier-mode revocation', () => {
  it("disconnects the user's sessions on the loaded nodes, nobody else's", async () => {
    const t = tier(['a', 'b']);
    t.load('a', t.connect('a'), ['u1.tab1', 'u2.tab1']);
    t.load('b', t.connect('b'), ['u1.tab2']);
    await new TierConnectionRevoker(t).disconnect(['u1'], new AbortController().signal);
    expect(t.deleted.sort()).toEqual(['a/u1.tab1', 'b/u1.tab2']);
  });

  it('holds until a node loading at the revocation has loaded, then disconnects the user there too', async () => {
    const t = tier(['a', 'b']);
    t.load('a', t.connect('a'), ['u1.tab1']);
    const generation = t.connect('b'); // loading: gets every message, its sessions unknown
    let done = false;
    const disconnecting = new TierConnectionRevoker(t).disconnect(['u1'], new AbortController().signal).then(() => (done = true));
    await settle();
    expect({ done, deleted: t.deleted }).toEqual({ done: false, deleted: ['a/u1.tab1'] });
    t.load('b', generation, ['u1.tab9', 'u3.tab1']);
    await disconnecting;
    expect(t.deleted).toContain('b/u1.tab9');
    expect(t.deleted).not.toContain('b/u3.tab1');
  });

  it('gives the hold up when its deadline passes while a node is still loading', async () => {
    const t = tier(['a']);
    t.connect('a');
    await expect(new TierConnectionRevoker(t).disconnect(['u1'], AbortSignal.timeout(50))).rejects.toThrow();
  });

  it('replays recent revocations to a node that loads after them, and not older ones', async () => {
    let now = 0;
    const t = tier(['a', 'b']);
    t.load('a', t.connect('a'), []);
    const revoker = new TierConnectionRevoker(t, { replayMs: 1000, now: () => now });
    await revoker.disconnect(['u1'], new AbortController().signal);
    now = 500;
    await revoker.disconnect(['u2'], new AbortController().signal);
    expect(t.deleted).toEqual([]); // nobody connected on the loaded node
    now = 1200; // u1's revocation is older than the window, u2's is not
    t.load('b', t.connect('b'), ['u1.tab1', 'u2.tab1', 'u3.tab1']);
    await settle();
    expect(t.deleted).toEqual(['b/u2.tab1']);
  });
});
