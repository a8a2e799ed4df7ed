// Authorization for the local MQTT broker (aedes), mirroring what the IoT Core custom authorizer
// does in production: the TaskFlow JWT travels as the MQTT password (username: anything), topic
// subscriptions are decided by lib/authz.ts from the membership projection, and only the
// router's service identity may publish. A connection's client id must be bound to its token's
// user (`<userId>.<suffix>`, lib/authz.ts `canConnect`), so nobody can take over another user's
// session by connecting with its id.
//
// Revocation. The router closes a revoked member's connections itself (DELETE /connections on
// the nodes it knows hold them, lib/broker-tier.ts) and holds the workspace's later changes
// until that is confirmed. What this node adds, so that nothing rests on the router alone:
// - token expiry, checked every tick (1 s) against the verified `exp` kept at connect: no read;
// - a safety net: each connection's live subscriptions read again against its memberships once
//   every `recheckMs` (recheck-schedule.ts: each connection at its own phase, so the reads are
//   spread over the interval; the broker service reads eventually consistent there, half the
//   read units, since a read a moment stale is read again an interval later). It closes, within
//   that interval, what the router's revocation leaves open: a hold that timed out (a node the
//   router could not reach or that stayed loading, DeleteConnection failing), a node that loads
//   more than the router's replay window after the revocation (router/connection-revoker.ts:
//   a node loading when it revoked holds the revocation until it has loaded, one loading later
//   gets the last 10 minutes' revocations replayed), a SUBSCRIBE authorized from a read made
//   just before the projection's write but granted after the router looked for the user's
//   sessions, and `TRUNCATE memberships` (the router disconnects no one for it).
// A user found revoked is disconnected; its SDK reconnects and can then subscribe only where it
// still may. A membership removed while the router is down or behind is not such a gap: the
// projection is the router's, so neither the router nor this check sees the removal before the
// router processes it, and no later change of the workspace is published before then either.
// Connects are rate-limited per user (token bucket after the token is verified, so nobody can
// spend another user's budget): beyond it CONNACK 3 "server unavailable", which the SDK retries
// with backoff, a log line and `taskflow_broker_connects_refused_total{reason="rate"}`. IoT Core
// has its own connect limits (docs/THREAT_MODEL.md §1).
import type { Client } from 'aedes';
import { Counter, type Registry } from 'prom-client';
import { canConnect, canSubscribe, clientIdPrefix, type Membership } from '../../lib/authz.js';
import { type AuthorizerMetrics, noopAuthorizerMetrics } from '../../lib/authorizer-metrics.js';
import type { TokenVerifier } from '../../lib/jwt.js';
import type { Logger } from '../../lib/logger.js';
import { retry } from '../../lib/retry.js';
import { PerUserLimiter } from '../../lib/user-limits.js';
import type { BrokerHooks } from './broker.js';
import { RecheckSchedule } from './recheck-schedule.js';

/** Connects per second and burst one user may make: ten tabs reconnecting at once pass, a loop does not. */
export const DEFAULT_CONNECT_LIMITS = { ratePerSec: 2, burst: 20 };

/** The safety net's interval: the IoT Core custom authorizer's shortest refresh (300 s), the bound the managed broker gives. */
export const DEFAULT_RECHECK_MS = 300_000;
/** How often expired tokens are looked for and due connections re-checked (no read unless one is due). */
const TICK_MS = 1000;

export const BROKER_METRICS = { connectsRefused: 'taskflow_broker_connects_refused_total' } as const;

export type ConnectRefusal = 'token' | 'client_id' | 'rate';

export interface BrokerAuthOptions {
  verify: TokenVerifier;
  memberships: (userId: string) => Promise<Membership[]>;
  /** The periodic re-check's read (default `memberships`): it may be eventually consistent, a read a moment stale is read again an interval later. */
  recheckMemberships?: (userId: string) => Promise<Membership[]>;
  /** Token subjects that may publish and subscribe anywhere (the router). */
  serviceUserIds: readonly string[];
  /** Each connection's subscriptions are read again against its memberships once per this interval (default DEFAULT_RECHECK_MS). */
  recheckMs?: number;
  /** The phase each connection's re-check is drawn at (tests). */
  random?: () => number;
  /** Per-user connect rate; service identities are not limited. */
  connectLimits?: { ratePerSec: number; burst: number };
  /** Where `taskflow_broker_connects_refused_total{reason}` is registered, if anywhere. */
  registry?: Registry;
  logger?: Logger;
  now?: () => number;
  /** Decisions and their latency (alarms TaskflowAuthorizerErrors / TaskflowAuthorizerLatency). */
  metrics?: AuthorizerMetrics;
}

export interface BrokerAuth {
  hooks: BrokerHooks;
  /**
   * One pass of the timer: disconnects the clients whose token expired (no read) and those due for
   * their re-check that lost a membership; resolves to the number disconnected.
   */
  tick(): Promise<number>;
  stop(): void;
}

interface Identity {
  userId: string;
  service: boolean;
  expiresAt: number;
}

const NOT_AUTHORIZED = 5;
const BAD_USERNAME_OR_PASSWORD = 4;
const SERVER_UNAVAILABLE = 3;
const IDENTIFIER_REJECTED = 2;

function authError(message: string, returnCode: number): Error & { returnCode: number } {
  return Object.assign(new Error(message), { returnCode });
}

const LOOKUP_ATTEMPTS = 3;
const LOOKUP_BACKOFF = { baseMs: 100, maxMs: 400 };

export function createBrokerAuth(options: BrokerAuthOptions): BrokerAuth {
  const identities = new Map<Client, Identity>();
  const now = options.now ?? Date.now;
  const recheckMs = options.recheckMs ?? DEFAULT_RECHECK_MS;
  const recheckMemberships = options.recheckMemberships ?? options.memberships;
  const schedule = new RecheckSchedule<Client>(recheckMs, options.random);
  const inFlight = new Map<string, Promise<Membership[]>>();
  const metrics = options.metrics ?? noopAuthorizerMetrics;
  const startDecision = () => {
    const started = performance.now();
    return (step: 'connect' | 'subscribe' | 'publish', outcome: 'allow' | 'deny' | 'error') => metrics.decided(step, outcome, (performance.now() - started) / 1000);
  };
  const connectLimits = options.connectLimits ?? DEFAULT_CONNECT_LIMITS;
  // Only the rate applies: a connect is admitted and released at once.
  const connects = new PerUserLimiter({ ...connectLimits, maxConcurrent: 1, maxUsers: 100_000 }, now);
  const refusedCounter = options.registry ? new Counter({ name: BROKER_METRICS.connectsRefused, help: 'MQTT connects the local broker refused, by reason', labelNames: ['reason'], registers: [options.registry] }) : undefined;
  const refuse = (done: (err: never, ok: false) => void, reason: ConnectRefusal, message: string, code: number): void => {
    refusedCounter?.inc({ reason });
    done(authError(message, code) as never, false);
  };

  /**
   * The user's memberships for a subscription decision, retried on errors. Concurrent look-ups of
   * one user share one read (a reconnecting client subscribes to many topics at once); nothing is
   * kept after it settles, so a revoked membership is refused at once.
   */
  function membershipsOf(userId: string): Promise<Membership[]> {
    const pending = inFlight.get(userId);
    if (pending) return pending;
    // Any failure of the projection's table is worth another try, up to LOOKUP_ATTEMPTS.
    const lookup = retry(() => options.memberships(userId), { policy: LOOKUP_BACKOFF, maxAttempts: LOOKUP_ATTEMPTS, shouldRetry: () => true });
    inFlight.set(userId, lookup);
    const settled = () => inFlight.delete(userId);
    lookup.then(settled, settled);
    return lookup;
  }

  const hooks: BrokerHooks = {
    authenticate(client, _username, password, done) {
      const decided = startDecision();
      if (!password || password.length === 0) {
        decided('connect', 'deny');
        refuse(done, 'token', 'a TaskFlow token is required as the MQTT password', BAD_USERNAME_OR_PASSWORD);
        return;
      }
      options.verify(password.toString('utf8')).then(
        (t) => {
          const service = options.serviceUserIds.includes(t.userId);
          // Every authenticated attempt counts, refused ids included.
          const admitted = service ? { ok: true as const, release: () => undefined } : connects.admit(t.userId);
          if (!admitted.ok) {
            options.logger?.info({ userId: t.userId, clientId: client.id, retryAfterMs: admitted.retryAfterMs }, 'connect rate exceeded: refused');
            decided('connect', 'deny');
            refuse(done, 'rate', `too many connects for this user: at most ${connectLimits.ratePerSec}/s after a burst of ${connectLimits.burst}`, SERVER_UNAVAILABLE);
            return;
          }
          admitted.release();
          // Checked before aedes registers the client: a refused id never takes over the session holding it.
          if (!canConnect(t.userId, client.id)) {
            decided('connect', 'deny');
            options.logger?.info({ userId: t.userId, clientId: client.id }, 'client id not bound to the token\'s user: refused');
            refuse(done, 'client_id', `client id must start with "${clientIdPrefix(t.userId)}" (the token's user id and a suffix)`, IDENTIFIER_REJECTED);
            return;
          }
          identities.set(client, { userId: t.userId, service, expiresAt: t.expiresAt });
          if (!service) schedule.add(client, now());
          decided('connect', 'allow');
          done(null, true);
        },
        () => {
          decided('connect', 'deny');
          refuse(done, 'token', 'invalid token', BAD_USERNAME_OR_PASSWORD);
        },
      );
    },
    authorizeSubscribe(client, subscription, done) {
      const decided = startDecision();
      const who = identities.get(client);
      if (!who) {
        decided('subscribe', 'deny');
        done(authError('not authenticated', NOT_AUTHORIZED), null);
        return;
      }
      if (who.service) {
        decided('subscribe', 'allow');
        done(null, subscription);
        return;
      }
      membershipsOf(who.userId).then(
        (ms) => {
          const allowed = canSubscribe(who.userId, ms, subscription.topic);
          decided('subscribe', allowed ? 'allow' : 'deny');
          if (!allowed) options.logger?.info({ userId: who.userId, topic: subscription.topic }, 'subscription denied');
          // null → SUBACK failure (0x80) for this topic; the connection stays up.
          done(null, allowed ? subscription : null);
        },
        (err: unknown) => {
          // Not a denial: the projection could not be read. A SUBACK failure would tell the client
          // "forbidden" for good; closing the connection makes it reconnect and subscribe again.
          decided('subscribe', 'error');
          options.logger?.warn({ err, userId: who.userId, topic: subscription.topic }, 'membership look-up failed: closing the connection');
          client.close();
          done(err as Error, null);
        },
      );
    },
    authorizePublish(client, packet, done) {
      // client null: published by the broker itself (e.g. the IoT publish route, $SYS).
      const allowed = client === null || identities.get(client)?.service === true;
      if (client !== null) metrics.decided('publish', allowed ? 'allow' : 'deny', 0);
      if (allowed) done(null);
      else done(authError(`publishing to ${packet.topic} is reserved for the router`, NOT_AUTHORIZED));
    },
  };

  async function tick(): Promise<number> {
    const at = now();
    const due = new Set(schedule.due(at));
    const byUser = new Map<string, Promise<Membership[]>>();
    let disconnected = 0;
    const disconnect = (client: Client, who: Identity, why: string): void => {
      options.logger?.info({ userId: who.userId, clientId: client.id }, `${why}: disconnecting`);
      forget(client);
      client.close();
      disconnected += 1;
    };
    await Promise.all(
      [...identities].map(async ([client, who]) => {
        if (client.closed) {
          forget(client);
          return;
        }
        if (who.service) return;
        if (who.expiresAt * 1000 <= at) {
          disconnect(client, who, 'token expired');
          return;
        }
        if (!due.has(client)) return;
        // Tabs of one user due in the same tick share one read.
        let ms = byUser.get(who.userId);
        if (!ms) byUser.set(who.userId, (ms = recheckMemberships(who.userId)));
        let memberships: Membership[];
        try {
          memberships = await ms;
        } catch (err) {
          // Not a revocation: due again next tick, so a failed read does not stretch the bound by an interval.
          schedule.retry(client, now());
          options.logger?.warn({ err, userId: who.userId }, 'membership re-check failed: retrying');
          return;
        }
        if (!client.closed && liveSubscriptions(client).some((topic) => !canSubscribe(who.userId, memberships, topic))) disconnect(client, who, 'access revoked');
      }),
    );
    return disconnected;
  }

  function forget(client: Client): void {
    identities.delete(client);
    schedule.delete(client);
  }

  let running = false;
  const timer = setInterval(() => {
    // A pass still reading: the next one picks up what fell due meanwhile.
    if (running) return;
    running = true;
    tick()
      .catch((err: unknown) => options.logger?.warn({ err }, 'revocation check failed'))
      .finally(() => {
        running = false;
      });
  }, Math.min(TICK_MS, recheckMs));
  timer.unref();

  return { hooks, tick, stop: () => clearInterval(timer) };
}

/** aedes keeps a client's subscriptions on `client.subscriptions` (not in its typings). */
function liveSubscriptions(client: Client): string[] {
  return Object.keys((client as Client & { subscriptions?: Record<string, unknown> }).subscriptions ?? {});
}
