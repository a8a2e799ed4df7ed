// The publisher for a tier of self-hosted broker nodes (the router's ROUTER_BROKERS, notifications'
// NOTIFICATIONS_BROKERS): not clustered,
// so a message goes to every node where a subscriber of its topic is (tier-subscriptions.ts, the
// rules). Per node: an MQTT pool (lib/publishers.ts) and one lifecycle connection which, on each
// (re)connect, marks the node loading, subscribes to the lifecycle events, then loads the node's
// GET /subscriptions (Bearer: the service's token) and applies what arrived meanwhile.
// No subscription-store writes in this mode: the nodes are the source.
import mqtt, { type MqttClient } from 'mqtt';
import { TaskflowError } from './errors.js';
import { retry } from './retry.js';
import type { Logger } from './logger.js';
import { mqttClientOptions, MqttPublisherPool, type MqttPoolOptions, type Publisher } from './publishers.js';
import { LIFECYCLE_FILTERS, parseLifecycleMessage, type SubscriptionEvent } from './subscriptions.js';
import { type NodeSession, TierSubscriptions } from './tier-subscriptions.js';

export interface BrokerNode {
  /** host:port, the node's label in logs and metrics. */
  id: string;
  mqttUrl: string;
  /** Base of its HTTP routes (same host and port, http(s)). */
  httpUrl: string;
}

/** `ws://host:port` (or wss) → the node; anything else is refused. */
export function brokerNode(url: string): BrokerNode {
  const u = new URL(url);
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new Error(`${url}: a broker node is ws://host:port or wss://host:port`);
  return { id: u.host, mqttUrl: url, httpUrl: `${u.protocol === 'wss:' ? 'https' : 'http'}://${u.host}` };
}

export interface TierMetrics {
  nodePublished(node: string, outcome: 'published' | 'node_down'): void;
  nodePublishFailed(node: string): void;
  /** The nodes connected (loading or loaded) out of the configured ones. */
  nodesConnected(connected: number, configured: number): void;
}

export interface BrokerTierOptions {
  nodes: readonly BrokerNode[];
  pool: Omit<MqttPoolOptions, 'url' | 'onMessage' | 'subscribe'>;
  /** The service's token (the router's or notifications'): MQTT password and Bearer of the HTTP routes. */
  token: string | undefined;
  /** What a refused token's error says to check (default: the router's settings). */
  tokenHint?: string;
  logger: Logger;
  metrics?: TierMetrics;
  onEvent?: (event: SubscriptionEvent) => void;
}

interface Link {
  node: BrokerNode;
  pool: MqttPublisherPool;
  watcher: MqttClient;
  /** Resolves when the connection to the node drops; replaced on each connect. */
  down: Deferred;
  /** Resolves on the node's first load or first failure to connect (start-up waits for it); rejects if the node refuses the service's token then. */
  settled: Deferred;
}

const ROUTER_TOKEN_HINT = "check ROUTER_MQTT_PASSWORD and the node's ROUTER_SERVICE_USER and JWT settings";

/** A node refused the service's token (401/403): a wrong credential, which retrying does not mend. */
export class TokenRefusedError extends TaskflowError {
  constructor(node: string, status: number, body: string, hint = ROUTER_TOKEN_HINT) {
    super('BROKER_TOKEN_REFUSED', `broker node ${node} refused the service token (${status} ${body}): ${hint}`, { details: { node, status } });
    this.name = 'TokenRefusedError';
  }
}

const LOAD_RETRY = { baseMs: 100, maxMs: 5000 };

export class BrokerTier implements Publisher {
  readonly tracker: TierSubscriptions;
  private readonly links = new Map<string, Link>();
  /** A topic's message some nodes already took (the pipeline retries the same payload). */
  private readonly partial = new Map<string, { payload: Buffer; done: Set<string> }>();
  private closed = false;
  private readonly loadListeners: ((nodeId: string) => void)[] = [];

  constructor(private readonly opts: BrokerTierOptions) {
    this.tracker = new TierSubscriptions(opts.nodes.map((n) => n.id));
    for (const node of opts.nodes) this.links.set(node.id, this.link(node));
    // None yet: a tier the router never reaches shows every node missing, not none.
    this.reportConnected();
  }

  /** Every node loaded or found unreachable once (a node down at start is loaded when it comes). */
  async ready(): Promise<void> {
    await Promise.all([...this.links.values()].map((l) => l.settled.promise));
  }

  hasSubscriber(topic: string): boolean {
    return this.tracker.hasSubscriber(topic);
  }

  async publish(topic: string, payload: Buffer): Promise<void> {
    let entry = this.partial.get(topic);
    if (entry?.payload !== payload) entry = { payload, done: new Set() };
    const done = entry.done;
    const targets = this.tracker.targets(topic).filter((id) => !done.has(id));
    const failures: unknown[] = [];
    await Promise.all(
      targets.map(async (id) => {
        const link = this.links.get(id)!;
        const down = link.down.promise;
        try {
          // A node that goes away meanwhile forgot its sessions: its clients reconnect and replay.
          const outcome = await Promise.race([link.pool.publish(topic, payload).then(() => 'published' as const), down.then(() => 'node_down' as const)]);
          done.add(id);
          this.opts.metrics?.nodePublished(id, outcome);
        } catch (err) {
          this.opts.metrics?.nodePublishFailed(id);
          failures.push(err);
        }
      }),
    );
    if (failures.length > 0) {
      this.partial.set(topic, entry);
      throw failures[0];
    }
    this.partial.delete(topic);
  }

  /** DELETE /connections/{clientId} on the node: resolves once it is gone (404: not connected). */
  async deleteConnection(nodeId: string, clientId: string, signal: AbortSignal): Promise<void> {
    const link = this.links.get(nodeId);
    if (!link) return;
    const res = await fetch(`${link.node.httpUrl}/connections/${encodeURIComponent(clientId)}?cleanSession=true&preventWillMessage=true`, { method: 'DELETE', headers: this.auth(), signal });
    await res.body?.cancel();
    if (res.status !== 200 && res.status !== 404) throw new Error(`DELETE /connections/${clientId} on ${nodeId}: ${res.status}`);
  }

  /** Calls `listener` each time a node's subscriptions are loaded (after every (re)connect to it). */
  onNodeLoaded(listener: (nodeId: string) => void): void {
    this.loadListeners.push(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.links.values()].map(async (l) => {
      l.settled.resolve();
      await Promise.all([l.pool.close(), l.watcher.endAsync(true)]);
    }));
  }

  private reportConnected(): void {
    this.opts.metrics?.nodesConnected(this.tracker.nodesConnected, this.opts.nodes.length);
  }

  private auth(): Record<string, string> {
    return this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {};
  }

  private link(node: BrokerNode): Link {
    const { pool: p, token, logger } = this.opts;
    const credentials = { ...(p.username ? { username: p.username } : {}), ...(token ? { password: token } : {}), ...(p.tls ? { tls: p.tls } : {}) };
    const pool = MqttPublisherPool.open({ ...p, ...credentials, url: node.mqttUrl, clientIdPrefix: `${p.clientIdPrefix}-${node.id}` });
    const watcher = mqtt.connect(node.mqttUrl, { ...mqttClientOptions(credentials, `${p.clientIdPrefix}-${node.id}-lifecycle`), resubscribe: false });
    const link: Link = { node, pool, watcher, down: deferred(), settled: deferred() };
    watcher.on('connect', () => {
      const generation = this.tracker.connected(node.id);
      link.down = deferred();
      this.reportConnected();
      void this.load(link, generation);
    });
    watcher.on('close', () => {
      if (this.tracker.status(node.id) !== 'down') {
        this.tracker.disconnected(node.id);
        logger.warn({ node: node.id }, 'broker node disconnected: its sessions are forgotten until it is loaded again');
      }
      link.down.resolve();
      link.settled.resolve();
      this.reportConnected();
    });
    watcher.on('error', (err) => logger.warn({ node: node.id, err: err.message }, 'broker node connection error'));
    watcher.on('message', (topic, payload) => {
      const event = parseLifecycleMessage(topic, payload);
      if (!event) return;
      this.opts.onEvent?.(event);
      this.tracker.event(node.id, event);
    });
    return link;
  }

  /** Lifecycle subscription first, then the snapshot: nothing between them is lost. */
  private async load(link: Link, generation: number): Promise<void> {
    const id = link.node.id;
    const current = () => !this.closed && link.watcher.connected && this.tracker.status(id) === 'loading';
    try {
      await link.watcher.subscribeAsync([...LIFECYCLE_FILTERS.iot], { qos: 0 });
      const sessions = await retry(
        async () => {
          if (!current()) throw new Error('connection gone');
          const res = await fetch(`${link.node.httpUrl}/subscriptions`, { headers: this.auth() });
          if (res.status === 401 || res.status === 403) throw new TokenRefusedError(id, res.status, await res.text(), this.opts.tokenHint);
          if (res.status !== 200) throw new Error(`GET /subscriptions on ${id}: ${res.status} ${await res.text()}`);
          return parseSnapshot(await res.json());
        },
        // At start a refused token fails the service's start-up (ready() rejects); later (a node
        // restarted with other settings) the node stays loading, so it gets every message, and is retried.
        { policy: LOAD_RETRY, shouldRetry: (err) => current() && !(err instanceof TokenRefusedError && !link.settled.done) && (this.opts.logger.warn({ node: id, err: (err as Error).message }, 'could not load the broker node subscriptions; retrying'), true) },
      );
      if (this.tracker.loaded(id, generation, sessions)) {
        this.opts.logger.info({ node: id, sessions: sessions.length }, 'broker node subscriptions loaded');
        for (const listener of this.loadListeners) listener(id);
      }
    } catch (err) {
      if (err instanceof TokenRefusedError && !link.settled.done) {
        this.opts.logger.error({ node: id, err: err.message }, 'broker node refused the service token');
        link.settled.reject(err);
      } else if (current()) this.opts.logger.warn({ node: id, err: (err as Error).message }, 'loading the broker node failed');
    } finally {
      link.settled.resolve();
    }
  }
}

/** GET /subscriptions → its sessions; a malformed answer is refused. */
export function parseSnapshot(body: unknown): NodeSession[] {
  const sessions = (body as { sessions?: unknown }).sessions;
  if (!Array.isArray(sessions)) throw new Error('GET /subscriptions: no sessions array');
  return sessions.map((s: { clientId?: unknown; sessionId?: unknown; filters?: unknown }) => {
    if (typeof s.clientId !== 'string' || typeof s.sessionId !== 'string' || !Array.isArray(s.filters) || !s.filters.every((f) => typeof f === 'string')) throw new Error('GET /subscriptions: malformed session');
    return { clientId: s.clientId, sessionId: s.sessionId, filters: s.filters as string[] };
  });
}

interface Deferred {
  promise: Promise<void>;
  /** Settled (the first resolve or reject wins). */
  readonly done: boolean;
  resolve: () => void;
  reject: (err: Error) => void;
}

function deferred(): Deferred {
  let settle!: { resolve: () => void; reject: (err: Error) => void };
  const promise = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  // Awaited by ready() only: a rejection nobody awaits is not an unhandled one.
  promise.catch(() => {});
  const d = {
    promise,
    done: false,
    resolve: () => {
      d.done = true;
      settle.resolve();
    },
    reject: (err: Error) => {
      if (!d.done) settle.reject(err);
      d.done = true;
    },
  };
  return d;
}
