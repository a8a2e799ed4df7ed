// Disconnecting a revoked user: IoT Core's data-plane DeleteConnection for each of the user's
// connections (locally the broker serves the same route), which answers once the client is
// disconnected. The user's connections are named by the subscription tracking: client ids are
// bound to their user (`<userId>.<suffix>`, lib/authz.ts), so the prefix says whose they are.
import { DeleteConnectionCommand, ResourceNotFoundException, type IoTDataPlaneClient } from '@aws-sdk/client-iot-data-plane';
import { type BackoffPolicy, sleep } from '../lib/backoff.js';
import type { BrokerTier } from '../lib/broker-tier.js';
import type { Logger } from '../lib/logger.js';
import { retry } from '../lib/retry.js';

export interface ConnectionRevoker {
  /** Resolves once every known connection of the users is gone; retries until `signal` aborts. */
  disconnect(userIds: readonly string[], signal: AbortSignal): Promise<void>;
}

const DELETE_RETRY: BackoffPolicy = { baseMs: 50, maxMs: 1000 };

export class IotConnectionRevoker implements ConnectionRevoker {
  constructor(
    private readonly client: IoTDataPlaneClient,
    private readonly connectionsOf: (userId: string) => readonly string[],
    private readonly retry: BackoffPolicy = DELETE_RETRY,
  ) {}

  async disconnect(userIds: readonly string[], signal: AbortSignal): Promise<void> {
    const clientIds = [...new Set(userIds.flatMap((u) => this.connectionsOf(u)))];
    await Promise.all(clientIds.map((clientId) => this.deleteConnection(clientId, signal)));
  }

  private async deleteConnection(clientId: string, signal: AbortSignal): Promise<void> {
    // Retried until it succeeds or the hold gives up (the signal): a revoked user's connection must go.
    await retry(
      async () => {
        signal.throwIfAborted();
        try {
          // cleanSession: a persistent session's subscriptions must not survive into a reconnect.
          await this.client.send(new DeleteConnectionCommand({ clientId, cleanSession: true, preventWillMessage: true }), { abortSignal: signal });
        } catch (err) {
          if (!(err instanceof ResourceNotFoundException)) throw err; // not connected: nothing reaches it
        }
      },
      { policy: this.retry, signal, shouldRetry: () => true },
    );
  }
}

/** What tier-mode revocation needs of the tier (lib/broker-tier.ts BrokerTier). */
export type RevokerTier = Pick<BrokerTier, 'tracker' | 'deleteConnection' | 'onNodeLoaded'>;

/**
 * How long a revocation is replayed to a node that loads after it: twice the nodes' default
 * membership re-check (BROKER_RECHECK_MS, 300 s), which bounds it from then on anyway.
 */
export const REVOCATION_REPLAY_MS = 600_000;

/** While a node is loading, how often the hold looks whether it has loaded. */
const LOADING_POLL_MS = 25;

/**
 * Revocation in tier mode: DELETE /connections/{clientId} on the nodes holding the user's
 * sessions. The router knows the sessions of loaded nodes only, and a node still loading gets
 * every message (lib/tier-subscriptions.ts): so the hold also waits for the nodes loading when it
 * began to load, then disconnects the user there too; and a node that loads later (the router
 * reconnected to it, or it restarted) has the revocations of the last REVOCATION_REPLAY_MS
 * replayed to it. A replay also ends a session the user opened after the revocation: one extra
 * reconnect, whose subscriptions are authorized again.
 */
export class TierConnectionRevoker implements ConnectionRevoker {
  /** Users revoked within the replay window, with when. */
  private readonly recent = new Map<string, number>();

  constructor(
    private readonly tier: RevokerTier,
    private readonly opts: { replayMs?: number; now?: () => number; logger?: Logger } = {},
  ) {
    tier.onNodeLoaded((node) => void this.replay(node));
  }

  async disconnect(userIds: readonly string[], signal: AbortSignal): Promise<void> {
    const at = this.now();
    for (const u of userIds) this.recent.set(u, at);
    const loading = this.tier.tracker.loadingNodes();
    await this.deleteAll(this.connectionsOf(userIds), signal);
    if (loading.length === 0) return;
    while (loading.some((n) => this.tier.tracker.status(n) === 'loading')) {
      signal.throwIfAborted();
      await sleep(LOADING_POLL_MS, signal);
    }
    await this.deleteAll(this.connectionsOf(userIds, loading), signal);
  }

  /** The recent revocations' sessions on a node that has just loaded. */
  private async replay(node: string): Promise<void> {
    const since = this.now() - (this.opts.replayMs ?? REVOCATION_REPLAY_MS);
    for (const [u, at] of this.recent) if (at < since) this.recent.delete(u);
    const targets = this.connectionsOf([...this.recent.keys()], [node]);
    if (targets.length === 0) return;
    this.opts.logger?.info({ node, connections: targets.length }, 'replaying recent revocations to a broker node that loaded after them');
    try {
      await this.deleteAll(targets, AbortSignal.timeout(this.opts.replayMs ?? REVOCATION_REPLAY_MS), { whileUp: true });
    } catch (err) {
      this.opts.logger?.warn({ node, err }, 'replaying revocations to a broker node did not complete; its membership re-check bounds them');
    }
  }

  /** The users' known connections, on `nodes` only if given. */
  private connectionsOf(userIds: readonly string[], nodes?: readonly string[]): { node: string; clientId: string }[] {
    const all = userIds.flatMap((u) => this.tier.tracker.connectionsOf(u));
    return nodes ? all.filter((t) => nodes.includes(t.node)) : all;
  }

  /** Retried until each is gone or `signal` aborts; `whileUp`: given up on a node that went down (its next load replays it). */
  private deleteAll(targets: readonly { node: string; clientId: string }[], signal: AbortSignal, { whileUp = false } = {}): Promise<unknown> {
    return Promise.all(
      targets.map((t) =>
        retry(
          async () => {
            signal.throwIfAborted();
            if (whileUp && this.tier.tracker.status(t.node) === 'down') return;
            await this.tier.deleteConnection(t.node, t.clientId, signal);
          },
          { policy: DELETE_RETRY, signal, shouldRetry: () => true },
        ),
      ),
    );
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }
}
