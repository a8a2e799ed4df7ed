// Disconnecting a revoked user: IoT Core's data-plane DeleteConnection for each of the user's
// connections (locally the broker serves the same route), which answers once the client is
// disconnected. The user's connections are named by the subscription tracking: client ids are
// bound to their user (`<userId>.<suffix>`, lib/authz.ts), so the prefix says whose they are.
import { DeleteConnectionCommand, ResourceNotFoundException, type IoTDataPlaneClient } from '@aws-sdk/client-iot-data-plane';
import type { BackoffPolicy } from '../lib/backoff.js';
import type { BrokerTier } from '../lib/broker-tier.js';
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

/** Revocation in tier mode: DELETE /connections/{clientId} on the nodes holding the user's sessions. */
export class TierConnectionRevoker implements ConnectionRevoker {
  constructor(private readonly tier: BrokerTier) {}

  async disconnect(userIds: readonly string[], signal: AbortSignal): Promise<void> {
    const targets = userIds.flatMap((u) => this.tier.tracker.connectionsOf(u));
    await Promise.all(
      targets.map((t) =>
        retry(
          async () => {
            signal.throwIfAborted();
            await this.tier.deleteConnection(t.node, t.clientId, signal);
          },
          { policy: { baseMs: 50, maxMs: 1000 }, signal, shouldRetry: () => true },
        ),
      ),
    );
  }
}
