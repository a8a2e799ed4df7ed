// createClient: wires the pure machines to mqtt.js, fetch and timers. Each subscribeProject call
// owns one subscription machine; topics are spread over MQTT connections of at most
// `maxSubscriptionsPerConnection` topics (IoT Core allows 50 per connection), a further
// connection being opened when one is full.
import { defaultBackoff, type BackoffOptions } from './backoff.js';
import type { ConnectionPhase } from './connection-machine.js';
import { MqttConnection, type IotCoreAuth } from './connection.js';
import { decodeBatch } from './decode.js';
import { RealtimeError } from './errors.js';
import { DebugLog, type DebugSink } from './log.js';
import { fetchInboxSince, markInboxRead } from './inbox.js';
import { feedTransition, initialFeed, type FeedEffect, type FeedEvent, type FeedState, type Notification } from './notification-feed.js';
import { fetchReplay } from './replay.js';
import { RequestGate } from './request-gate.js';
import {
  defaultSubscriptionConfig,
  initialState,
  nextDeadline,
  transition,
  type SubscriptionConfig,
  type SubscriptionEffect,
  type SubscriptionEvent,
  type SubscriptionState,
} from './subscription-machine.js';
import { jwtSubject, randomClientSuffix, TokenSource, type TokenProvider } from './token.js';
import { projectTopic, userTopicOf } from './topics.js';
import type { Change, Status } from './types.js';

export interface ClientOptions {
  /** MQTT over WebSocket endpoint: `ws://localhost:8883` locally, `wss://<prefix>-ats.iot.<region>.amazonaws.com/mqtt` on IoT Core. */
  url: string;
  /** A TaskFlow JWT. Prefer getToken: a static token cannot be refreshed. */
  token?: string;
  /** Called for the first token, when the current one is within tokenRefreshMarginMs of its `exp`, and after a rejection. */
  getToken?: TokenProvider;
  /** Base URL of the replay API (`…/v1/workspaces/…` is appended). */
  replayUrl: string;
  /** Base URL of the notifications service's inbox API; needed by subscribeNotifications only. */
  notificationsUrl?: string;
  /**
   * The part of the MQTT client id after `<user id>.` (brokers accept only `<token's sub>.<suffix>`).
   * Further connections get `-2`, `-3` … appended. Default: 16 random bytes (crypto.getRandomValues), hex.
   */
  clientIdSuffix?: string;
  /** Debug logging: true for console.debug, or a function. Silent by default; see setDebug. */
  debug?: boolean | DebugSink;
  /** Connect through an AWS IoT Core custom authorizer: the token goes in the URL query string. */
  iot?: IotCoreAuth;
  /**
   * QoS of the SDK's subscriptions (default 0). A delivery goes at the lower of the publish's and
   * the subscription's QoS: at 0 the browser sends no PUBACK (on IoT Core each one is a metered
   * message), and a message lost on the way is a hole the subscription fetches from the replay
   * API like any other. 1 asks the broker to resend unacknowledged deliveries on this connection.
   */
  subscribeQos?: 0 | 1;
  /** Topics per MQTT connection before another connection is opened (IoT Core's limit: 50). */
  maxSubscriptionsPerConnection?: number;
  backoff?: Partial<BackoffOptions>;
  /** Reorder window, buffer size, replay page size and retry backoff of each subscription. */
  subscription?: Partial<SubscriptionConfig>;
  /** Refresh a getToken token this long before its `exp` (default 60 s). */
  tokenRefreshMarginMs?: number;
  /** Timeout of one replay request (default 10 s), counted from when it is sent. */
  replayTimeoutMs?: number;
  /**
   * Replay requests of this client in flight at once (default 4, the replay API's default
   * REPLAY_CONCURRENCY_PER_USER); the others wait in order. After a reconnect every subscription
   * asks at once: 50 requests would mostly come back 429 and be retried.
   */
  maxConcurrentReplays?: number;
  /** Problems the SDK cannot fix itself (access denied, rejected static token, failing handlers). */
  onError?: (error: RealtimeError) => void;
}

export interface ResyncInfo {
  /** The last seq delivered before the jump. */
  lastDelivered: number;
  /** The oldest seq the replay API still holds. */
  oldestSeq: number;
  /** Reload the project; changes continue with latestSeq + 1. */
  latestSeq: number;
}

export interface ProjectHandlers {
  /** First seq wanted (the application already has everything before it). Omitted: from the first message received. */
  fromSeq?: number;
  /** Each change, exactly once, in seq order. */
  onChange: (change: Change) => void;
  /** The history could not be replayed: reload the project's state; changes continue after info.latestSeq. */
  onResync: (info: ResyncInfo) => void;
  onStatus?: (status: Status) => void;
  /** This subscription's errors (e.g. `forbidden`); the client's onError hears them too. */
  onError?: (error: RealtimeError) => void;
}

export type Unsubscribe = () => void;

export interface NotificationHandlers {
  /** The user whose notifications these are. Default: the token's `sub`. */
  userId?: string;
  /** The last notification id the application has; omitted: from the newest page of the inbox. */
  afterId?: string;
  /** Each notification once, in id (= event) order: the missed ones first after a (re)connect. */
  onNotification: (notification: Notification) => void;
  /** The unread count, after every sync, new notification and markRead. */
  onUnreadCount?: (unread: number) => void;
  onStatus?: (status: Status) => void;
  onError?: (error: RealtimeError) => void;
}

export interface NotificationSubscription {
  unsubscribe(): void;
  /** Marks these notifications read in the inbox; resolves to the unread count. */
  markRead(ids: readonly string[]): Promise<number>;
  /** Fetches what the inbox has after the last delivered id now (a live message may have been lost). */
  refresh(): void;
  /** The unread count as last known; undefined before the first sync. */
  readonly unread: number | undefined;
}

export interface RealtimeClient {
  subscribeProject(workspaceId: string, projectId: string, handlers: ProjectHandlers): Unsubscribe;
  /** The user's notifications of a workspace (their topic, and the inbox API on every (re)connect). */
  subscribeNotifications(workspaceId: string, handlers: NotificationHandlers): NotificationSubscription;
  /** Turn debug logging on or off at run time. */
  setDebug(debug: boolean | DebugSink): void;
  /** Number of MQTT connections currently open or opening. */
  readonly connectionCount: number;
  /** Unsubscribe everything and close every connection. */
  close(): void;
}

export function createClient(options: ClientOptions): RealtimeClient {
  return new Client(options);
}

const now = (): number => Date.now();

/** An error of a subscription: logged, then to its own onError, then to the client's. */
function reportError(client: Client, topic: string | undefined, onError: ((error: RealtimeError) => void) | undefined, error: RealtimeError): void {
  client.log.log('error', { topic, code: error.code, message: error.message });
  try {
    onError?.(error);
  } finally {
    client.options.onError?.(error);
  }
}

/** Runs an application handler; if it throws, that is reported as the subscription's error, not thrown into the SDK. */
function callReporting(report: (error: RealtimeError) => void, name: string, call: () => void): void {
  try {
    call();
  } catch (err) {
    report(new RealtimeError('handler_failed', `${name} threw`, true, { cause: err }));
  }
}

class ProjectSubscription {
  private state: SubscriptionState;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(
    readonly topic: string,
    readonly workspaceId: string,
    readonly projectId: string,
    private readonly handlers: ProjectHandlers,
    private readonly client: Client,
  ) {
    this.state = initialState(handlers.fromSeq);
    this.perform({ type: 'status', status: this.state.status });
  }

  send(event: SubscriptionEvent): void {
    if (this.closed) return;
    const { state, effects } = transition(this.state, event, this.client.subscriptionConfig);
    this.state = state;
    for (const effect of effects) this.perform(effect);
    clearTimeout(this.timer);
    this.timer = undefined;
    const deadline = nextDeadline(state, this.client.subscriptionConfig);
    if (deadline !== null && !this.closed) {
      this.timer = setTimeout(() => this.send({ type: 'tick', now: now() }), Math.max(0, deadline - now()));
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  private perform(effect: SubscriptionEffect): void {
    const log = this.client.log;
    switch (effect.type) {
      case 'deliver':
        this.callHandler('onChange', () => this.handlers.onChange(effect.change));
        break;
      case 'resync':
        log.log('resync', { topic: this.topic, ...effect });
        this.callHandler('onResync', () =>
          this.handlers.onResync({ lastDelivered: effect.lastDelivered, oldestSeq: effect.oldestSeq, latestSeq: effect.latestSeq }),
        );
        break;
      case 'status':
        log.log('subscription status', { topic: this.topic, status: effect.status });
        this.callHandler('onStatus', () => this.handlers.onStatus?.(effect.status));
        break;
      case 'fetch':
        void this.fetch(effect);
        break;
      case 'resubscribe':
        log.log('subscribing again after a refusal the replay API did not confirm', { topic: this.topic });
        this.client.resubscribe(this.topic);
        break;
      case 'failed':
        this.report(new RealtimeError('forbidden', `access to project ${this.projectId} was refused`, false));
        this.client.release(this);
        break;
    }
  }

  private async fetch(effect: Extract<SubscriptionEffect, { type: 'fetch' }>): Promise<void> {
    const { requestId } = effect;
    this.client.log.log('replay request', { topic: this.topic, after: effect.after, limit: effect.limit });
    let token: string;
    try {
      token = await this.client.tokens.get(effect.refreshToken);
    } catch (err) {
      this.report(new RealtimeError('token_provider_failed', 'getToken() failed', true, { cause: err }));
      this.send({ type: 'replayFailed', requestId, reason: 'transient', now: now(), random: Math.random() });
      return;
    }
    const outcome = await this.client.replayGate.run(() =>
      fetchReplay({
        replayUrl: this.client.options.replayUrl,
        workspaceId: this.workspaceId,
        projectId: this.projectId,
        after: effect.after,
        limit: effect.limit,
        token,
        timeoutMs: this.client.options.replayTimeoutMs ?? 10_000,
      }),
    );
    this.client.log.log('replay answer', { topic: this.topic, after: effect.after, kind: outcome.kind });
    switch (outcome.kind) {
      case 'ok':
        this.send({ type: 'replayOk', requestId, changes: outcome.changes, latestSeq: outcome.latestSeq, now: now() });
        break;
      case 'tooOld':
        this.send({ type: 'replayTooOld', requestId, oldestSeq: outcome.oldestSeq, latestSeq: outcome.latestSeq, now: now() });
        break;
      default:
        if (outcome.kind === 'unauthorized' && !this.client.tokens.refreshable) {
          this.report(new RealtimeError('unauthorized', 'the replay API rejected the token and no getToken was given', true));
        }
        this.send({ type: 'replayFailed', requestId, reason: outcome.kind, now: now(), random: Math.random() });
    }
  }

  private callHandler(name: string, call: () => void): void {
    callReporting((error) => this.report(error), name, call);
  }

  report(error: RealtimeError): void {
    reportError(this.client, this.topic, this.handlers.onError, error);
  }
}


class NotificationFeed implements NotificationSubscription {
  private state: FeedState;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  topic: string | undefined;

  constructor(
    readonly workspaceId: string,
    private readonly handlers: NotificationHandlers,
    private readonly client: Client,
  ) {
    this.state = initialFeed(handlers.afterId);
    this.callHandler('onStatus', () => handlers.onStatus?.('connecting'));
  }

  get unread(): number | undefined {
    return this.state.unread;
  }

  /** The topic, once the user is known (from the token when not given). */
  async resolveTopic(): Promise<string> {
    const userId = this.handlers.userId ?? jwtSubject(await this.client.tokens.get());
    if (!userId) throw new RealtimeError('unauthorized', 'the token has no `sub` to subscribe to notifications with: pass userId', false);
    for (const id of [this.workspaceId, userId]) if (id === '' || /[/+#]/.test(id)) throw new TypeError(`invalid id for a topic: ${JSON.stringify(id)}`);
    this.topic = userTopicOf(this.workspaceId, userId);
    return this.topic;
  }

  send(event: FeedEvent): void {
    if (this.closed) return;
    const { state, effects } = feedTransition(this.state, event, this.client.subscriptionConfig.retry);
    this.state = state;
    for (const effect of effects) this.perform(effect);
    clearTimeout(this.timer);
    this.timer = undefined;
    if (state.retryAt !== undefined && !this.closed) this.timer = setTimeout(() => this.send({ type: 'tick', now: now() }), Math.max(0, state.retryAt - now()));
  }

  unsubscribe(): void {
    this.client.releaseFeed(this);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  refresh(): void {
    this.send({ type: 'refresh' });
  }

  async markRead(ids: readonly string[]): Promise<number> {
    const outcome = await markInboxRead({ ...(await this.request(false)), ids });
    if (outcome.kind !== 'ok') throw new RealtimeError(outcome.kind === 'forbidden' ? 'forbidden' : outcome.kind === 'unauthorized' ? 'unauthorized' : 'inbox_unavailable', outcome.detail, outcome.kind === 'transient');
    this.send({ type: 'unread', unread: outcome.unread });
    return outcome.unread;
  }

  private async request(refresh: boolean) {
    const url = this.client.options.notificationsUrl;
    if (url === undefined) throw new TypeError('createClient: notificationsUrl is needed for notifications');
    return { notificationsUrl: url, workspaceId: this.workspaceId, token: await this.client.tokens.get(refresh), timeoutMs: this.client.options.replayTimeoutMs ?? 10_000 };
  }

  private perform(effect: FeedEffect): void {
    switch (effect.type) {
      case 'deliver':
        for (const n of effect.notifications) this.callHandler('onNotification', () => this.handlers.onNotification(n));
        break;
      case 'unread':
        this.callHandler('onUnreadCount', () => this.handlers.onUnreadCount?.(effect.unread));
        break;
      case 'status':
        this.client.log.log('notifications status', { topic: this.topic, status: effect.status });
        this.callHandler('onStatus', () => this.handlers.onStatus?.(effect.status));
        break;
      case 'sync':
        void this.sync(effect.requestId, effect.after);
        break;
    }
  }

  private async sync(requestId: number, after: string | undefined): Promise<void> {
    let outcome;
    try {
      outcome = await fetchInboxSince({ ...(await this.request(false)), after });
    } catch (err) {
      this.report(err instanceof RealtimeError ? err : new RealtimeError('token_provider_failed', 'getToken() failed', true, { cause: err }));
      this.send({ type: 'syncFailed', requestId, now: now(), random: Math.random() });
      return;
    }
    this.client.log.log('inbox answer', { topic: this.topic, after, kind: outcome.kind, ...(outcome.kind === 'ok' ? {} : { detail: outcome.detail }) });
    if (outcome.kind === 'ok') return this.send({ type: 'syncOk', requestId, notifications: outcome.notifications, unread: outcome.unread });
    if (outcome.kind === 'forbidden') this.report(new RealtimeError('forbidden', `the inbox of workspace ${this.workspaceId} was refused`, false));
    if (outcome.kind === 'unauthorized') await this.client.tokens.get(true).catch(() => undefined);
    this.send({ type: 'syncFailed', requestId, now: now(), random: Math.random() });
  }

  private callHandler(name: string, call: () => void): void {
    callReporting((error) => this.report(error), name, call);
  }

  report(error: RealtimeError): void {
    reportError(this.client, this.topic, this.handlers.onError, error);
  }
}

class Client implements RealtimeClient {
  readonly log: DebugLog;
  readonly tokens: TokenSource;
  readonly subscriptionConfig: SubscriptionConfig;
  readonly replayGate: RequestGate;
  private readonly backoff: BackoffOptions;
  private readonly maxPerConnection: number;
  private readonly clientIdSuffix: string;
  private readonly connections: MqttConnection[] = [];
  private readonly subscriptions = new Set<ProjectSubscription>();
  private readonly feeds = new Set<NotificationFeed>();
  /** Decoding is async (gzip): a chain keeps messages in arrival order. */
  private decoding: Promise<void> = Promise.resolve();
  private readonly removeNetworkListeners: () => void;

  constructor(readonly options: ClientOptions) {
    this.log = new DebugLog(options.debug);
    this.tokens = new TokenSource({
      ...(options.token === undefined ? {} : { token: options.token }),
      ...(options.getToken === undefined ? {} : { getToken: options.getToken }),
      refreshMarginMs: options.tokenRefreshMarginMs ?? 60_000,
      now,
    });
    this.subscriptionConfig = { ...defaultSubscriptionConfig, ...options.subscription };
    this.backoff = { ...defaultBackoff, ...options.backoff };
    this.replayGate = new RequestGate(options.maxConcurrentReplays ?? 4);
    this.maxPerConnection = options.maxSubscriptionsPerConnection ?? 50;
    this.clientIdSuffix = options.clientIdSuffix ?? randomClientSuffix();
    this.removeNetworkListeners = this.listenToNetwork();
  }

  get connectionCount(): number {
    return this.connections.length;
  }

  setDebug(debug: boolean | DebugSink): void {
    this.log.set(debug);
  }

  subscribeProject(workspaceId: string, projectId: string, handlers: ProjectHandlers): Unsubscribe {
    const topic = projectTopic(workspaceId, projectId);
    const sub = new ProjectSubscription(topic, workspaceId, projectId, handlers, this);
    this.subscriptions.add(sub);
    const connection = this.connectionFor(topic);
    sub.send(connection.phase === 'waiting' ? { type: 'connection', status: 'offline', now: now() } : { type: 'connection', status: 'connecting', now: now() });
    if (connection.isAcked(topic)) sub.send({ type: 'subscribed', now: now() });
    else connection.subscribe(topic);
    return () => this.release(sub);
  }

  subscribeNotifications(workspaceId: string, handlers: NotificationHandlers): NotificationSubscription {
    const feed = new NotificationFeed(workspaceId, handlers, this);
    this.feeds.add(feed);
    feed.resolveTopic().then(
      (topic) => {
        if (!this.feeds.has(feed)) return;
        const connection = this.connectionFor(topic);
        if (connection.isAcked(topic)) feed.send({ type: 'subscribed', now: now() });
        else connection.subscribe(topic);
      },
      (err: unknown) => feed.report(err instanceof RealtimeError ? err : new RealtimeError('token_provider_failed', 'getToken() failed', true, { cause: err })),
    );
    return feed;
  }

  releaseFeed(feed: NotificationFeed): void {
    if (!this.feeds.delete(feed)) return;
    feed.close();
    if (feed.topic !== undefined) this.releaseTopic(feed.topic);
  }

  /** SUBSCRIBE again for a topic the broker refused (no-op unless connected and still refused). */
  resubscribe(topic: string): void {
    this.connections.find((c) => c.has(topic))?.retrySubscribe(topic);
  }

  release(sub: ProjectSubscription): void {
    if (!this.subscriptions.delete(sub)) return;
    sub.close();
    this.releaseTopic(sub.topic);
  }

  /** Unsubscribes a topic nobody wants any more; closes a connection left empty (not the last). */
  private releaseTopic(topic: string): void {
    if ([...this.subscriptions].some((s) => s.topic === topic) || [...this.feeds].some((f) => f.topic === topic)) return;
    const index = this.connections.findIndex((c) => c.has(topic));
    const connection = this.connections[index];
    if (connection === undefined) return;
    connection.unsubscribe(topic);
    if (connection.topicCount === 0 && this.connections.length > 1) {
      connection.close();
      this.connections.splice(index, 1);
    }
  }

  close(): void {
    for (const sub of [...this.subscriptions]) this.release(sub);
    for (const feed of [...this.feeds]) this.releaseFeed(feed);
    for (const connection of this.connections.splice(0)) connection.close();
    this.removeNetworkListeners();
  }

  private connectionFor(topic: string): MqttConnection {
    const existing = this.connections.find((c) => c.has(topic)) ?? this.connections.find((c) => c.topicCount < this.maxPerConnection);
    if (existing !== undefined) return existing;
    const n = this.connections.length;
    const connection = new MqttConnection({
      url: this.options.url,
      clientIdSuffix: n === 0 ? this.clientIdSuffix : `${this.clientIdSuffix}-${n + 1}`,
      iot: this.options.iot,
      subscribeQos: this.options.subscribeQos ?? 0,
      tokens: this.tokens,
      backoff: this.backoff,
      log: this.log,
      now,
      random: Math.random,
      onPhase: (phase) => this.onPhase(connection, phase),
      onSubscribed: (t, granted) => {
        this.forTopic(t, (s) => s.send(granted ? { type: 'subscribed', now: now() } : { type: 'rejected', now: now(), random: Math.random() }));
        for (const f of this.feeds) {
          if (f.topic !== t) continue;
          if (granted) f.send({ type: 'subscribed', now: now() });
          else f.report(new RealtimeError('forbidden', `the broker refused ${t}`, true));
        }
      },
      onMessage: (t, payload) => this.onMessage(t, payload),
      onAuthError: (err) => this.reportAll(new RealtimeError(this.tokens.refreshable ? 'token_provider_failed' : 'unauthorized', 'the broker rejected the token', true, { cause: err })),
    });
    this.connections.push(connection);
    connection.start();
    return connection;
  }

  private onPhase(connection: MqttConnection, phase: ConnectionPhase): void {
    if (phase === 'connected') return; // subscriptions hear `subscribed` per topic at SUBACK
    const status = phase === 'connecting' ? 'connecting' : 'offline';
    for (const sub of this.subscriptions) if (connection.has(sub.topic)) sub.send({ type: 'connection', status, now: now() });
    for (const feed of this.feeds) if (feed.topic !== undefined && connection.has(feed.topic)) feed.send({ type: 'disconnected' });
  }

  private onMessage(topic: string, payload: Uint8Array): void {
    const feeds = [...this.feeds].filter((f) => f.topic === topic);
    if (feeds.length > 0) {
      let message: { type?: unknown; notification?: Notification };
      try {
        message = JSON.parse(new TextDecoder().decode(payload)) as typeof message;
      } catch {
        message = {};
      }
      const n = message.notification;
      if (message.type !== 'taskflow.notification' || typeof n?.id !== 'string') {
        // Dropped: the next sync fetches it from the inbox.
        this.log.log('undecodable notification dropped', { topic });
        return;
      }
      for (const f of feeds) f.send({ type: 'live', notification: n });
      return;
    }
    this.decoding = this.decoding.then(async () => {
      try {
        const batch = await decodeBatch(payload);
        this.log.log('message', { topic, fromSeq: batch.fromSeq, toSeq: batch.toSeq, mode: batch.mode });
        if (projectTopic(batch.ws, batch.project) !== topic) throw new Error(`batch for ${batch.ws}/${batch.project} on ${topic}`);
        this.forTopic(topic, (s) => s.send({ type: 'message', changes: batch.changes, now: now() }));
      } catch (err) {
        // Dropped: the subscription sees a hole and fetches the range from the replay API.
        this.log.log('undecodable message dropped', { topic, error: String(err) });
        const error = new RealtimeError('bad_message', `an undecodable message on ${topic} was dropped; its changes are fetched from the replay API`, true, { cause: err });
        this.forTopic(topic, (s) => s.report(error));
      }
    });
  }

  private forTopic(topic: string, f: (sub: ProjectSubscription) => void): void {
    for (const sub of [...this.subscriptions]) if (sub.topic === topic) f(sub);
  }

  private reportAll(error: RealtimeError): void {
    if (this.subscriptions.size === 0 && this.feeds.size === 0) this.options.onError?.(error);
    for (const sub of this.subscriptions) sub.report(error);
    for (const feed of this.feeds) feed.report(error);
  }

  private listenToNetwork(): () => void {
    const target = globalThis as unknown as Partial<Pick<Window, 'addEventListener' | 'removeEventListener'>>;
    if (typeof target.addEventListener !== 'function' || typeof target.removeEventListener !== 'function') return () => {};
    const online = (): void => this.connections.forEach((c) => c.online());
    const offline = (): void => this.connections.forEach((c) => c.offline());
    target.addEventListener('online', online);
    target.addEventListener('offline', offline);
    return () => {
      target.removeEventListener?.('online', online);
      target.removeEventListener?.('offline', offline);
    };
  }
}
