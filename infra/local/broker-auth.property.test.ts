// The node's side of revocation as a model, against random interleavings of connects (a tab
// reconnecting takes over its client id), SUBSCRIBEs whose grant lands late (authorized from a
// read made before a revocation, registered after it), the revocation, the router closing some,
// all or none of the user's connections (an outage, a node it could not reach), token expiry and
// the clock: a revoked member never keeps a subscription of the revoked project more than one
// interval plus a tick past the later of the revocation and the grant; an expired token is cut at
// the first tick past its expiry; nobody else is ever disconnected.
import { describe, expect, it } from '@jest/globals';
import type { Client } from 'aedes';
import fc from 'fast-check';
import { projectTopicOf, type Membership } from '../../lib/authz.js';
import { createBrokerAuth } from './broker-auth.js';

const TICK_MS = 1000;
const USER = 'alice';
const REVOKED = projectTopicOf('w1', 'p1');
const KEPT = projectTopicOf('w2', 'p2');

interface FakeClient {
  id: string;
  closed: boolean;
  closedByNode: boolean;
  subscriptions: Record<string, { grantedAt: number }>;
  expiresAtMs: number;
  close(cb?: () => void): void;
}

type Op =
  | { kind: 'connect'; tab: number; ttlMs: number }
  | { kind: 'subscribe'; tab: number; revoked: boolean }
  | { kind: 'grant' }
  | { kind: 'revoke' }
  | { kind: 'routerCloses'; tabs: number[] }
  | { kind: 'tick'; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('connect' as const), tab: fc.nat(3), ttlMs: fc.integer({ min: 1, max: 60_000 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('subscribe' as const), tab: fc.nat(3), revoked: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('grant' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('revoke' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('routerCloses' as const), tabs: fc.array(fc.nat(3), { maxLength: 4 }) }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: TICK_MS }) }) },
);

const hook = <A extends unknown[]>(fn: (...args: [...A, (err: unknown, v: unknown) => void]) => void, ...args: A) =>
  new Promise<[unknown, unknown]>((resolve) => fn(...args, (err, v) => resolve([err, v])));

describe('broker-auth revocation and expiry (model)', () => {
  it('cuts a revoked subscription within an interval plus a tick and an expired token at the next tick, whatever the router did; nobody else', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: TICK_MS, max: 10 * TICK_MS }), fc.array(op, { minLength: 30, maxLength: 100, size: 'max' }), fc.infiniteStream(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })), async (intervalMs, ops, randoms) => {
        let now = 0;
        let memberships: Membership[] = [
          { workspaceId: 'w1', projectId: 'p1', role: 'member' },
          { workspaceId: 'w2', projectId: 'p2', role: 'member' },
        ];
        let revokedAt: number | undefined;
        const auth = createBrokerAuth({
          verify: async (token) => ({ userId: USER, expiresAt: Number(token) / 1000 }) as Awaited<ReturnType<Parameters<typeof createBrokerAuth>[0]['verify']>>,
          // A snapshot of the projection as it is when read.
          memberships: async () => [...memberships],
          serviceUserIds: [],
          recheckMs: intervalMs,
          random: () => randoms.next().value,
          now: () => now,
          connectLimits: { ratePerSec: 1e6, burst: 1e6 },
        });
        auth.stop(); // the model drives the ticks
        const h = auth.hooks as unknown as Record<string, (...a: unknown[]) => void>;
        const tabs = new Map<number, FakeClient>();
        const all: FakeClient[] = [];
        /** Grants authorized but not yet registered by the broker, oldest first. */
        const pendingGrants: (() => void)[] = [];
        for (const o of ops) {
          if (o.kind === 'connect') {
            // A takeover: the broker closes the connection that held the id.
            const taken = tabs.get(o.tab);
            if (taken) taken.closed = true;
            const client: FakeClient = {
              id: `${USER}.tab${o.tab}`,
              closed: false,
              closedByNode: false,
              subscriptions: {},
              expiresAtMs: now + o.ttlMs,
              close() {
                this.closed = true;
              },
            };
            await hook(h.authenticate!, client, 'u', Buffer.from(String(client.expiresAtMs)));
            // Only what the node itself closes from here on counts as its disconnect.
            client.close = function () {
              if (!this.closed) this.closedByNode = true;
              this.closed = true;
            };
            tabs.set(o.tab, client);
            all.push(client);
          } else if (o.kind === 'subscribe') {
            const client = tabs.get(o.tab);
            if (!client || client.closed) continue;
            const topic = o.revoked ? REVOKED : KEPT;
            const [, granted] = await hook(h.authorizeSubscribe!, client as unknown as Client, { topic, qos: 1 });
            if (granted) pendingGrants.push(() => !client.closed && (client.subscriptions[topic] = { grantedAt: now }));
          } else if (o.kind === 'grant') {
            pendingGrants.shift()?.();
          } else if (o.kind === 'revoke') {
            memberships = memberships.filter((m) => m.workspaceId !== 'w1');
            revokedAt ??= now;
          } else if (o.kind === 'routerCloses') {
            for (const t of o.tabs) {
              const c = tabs.get(t);
              if (c) c.closed = true;
            }
          } else {
            now += o.ms;
            await auth.tick();
            for (const c of all.filter((x) => !x.closed)) {
              expect(c.expiresAtMs).toBeGreaterThan(now);
              const held = c.subscriptions[REVOKED];
              if (revokedAt !== undefined && held) expect(now - Math.max(revokedAt, held.grantedAt)).toBeLessThan(intervalMs + TICK_MS);
            }
          }
          for (const c of all.filter((x) => x.closedByNode)) {
            // The node cut it for a reason: an expired token, or a subscription the membership no longer allows.
            expect(c.expiresAtMs <= now || (revokedAt !== undefined && c.subscriptions[REVOKED] !== undefined)).toBe(true);
          }
        }
      }),
      { numRuns: 100 },
    );
  });
});
