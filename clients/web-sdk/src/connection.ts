// One MQTT-over-WebSocket connection: the thin adapter between mqtt.js and the connection
// machine. mqtt.js never reconnects by itself (reconnectPeriod 0); every attempt is a fresh
// client built with the current token, so a refreshed token also reaches URL-borne credentials
// (IoT Core custom authorizers read the token from the query string: browsers cannot set
// WebSocket headers).
import mqtt from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import { connectionTransition, initialConnectionState, type ConnectionEvent, type ConnectionPhase } from './connection-machine.js';
import type { BackoffOptions } from './backoff.js';
import type { DebugLog } from './log.js';
import { boundClientId, type TokenSource } from './token.js';

export interface IotCoreAuth {
  /** Name of the IoT Core custom authorizer. */
  authorizerName: string;
  /** Query parameter the authorizer's token key reads (default `token`). */
  tokenKeyName?: string;
}

export interface ConnectionDeps {
  url: string;
  /** The client id's own part; the id is `<token's sub>.<suffix>` (token.ts boundClientId). */
  clientIdSuffix: string;
  iot: IotCoreAuth | undefined;
  /** QoS of every SUBSCRIBE (ClientOptions.subscribeQos). */
  subscribeQos: 0 | 1;
  tokens: TokenSource;
  backoff: BackoffOptions;
  log: DebugLog;
  now: () => number;
  random: () => number;
  /** Test seam: extra mqtt.js options (never reconnectPeriod). */
  mqttOptions?: Partial<IClientOptions>;
  onPhase(phase: ConnectionPhase): void;
  /** SUBACK for `topic`: granted, or refused by the broker. */
  onSubscribed(topic: string, granted: boolean): void;
  onMessage(topic: string, payload: Uint8Array): void;
  onAuthError(error: unknown): void;
}

// CONNACK return codes 4/5 (MQTT 3.1.1) and 0x86/0x87 (MQTT 5): bad credentials / not authorized.
const AUTH_CONNACK_CODES = new Set([4, 5, 0x86, 0x87]);

function isAuthFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'number' && AUTH_CONNACK_CODES.has(code)) return true;
  // A custom authorizer that denies answers the WebSocket upgrade with 401/403.
  return /Unexpected server response: 40[13]/.test(String((err as Error | null)?.message ?? err));
}

/** The WebSocket URL for an attempt: the token rides in the query string for IoT Core. */
export function connectUrl(url: string, iot: IotCoreAuth | undefined, token: string): string {
  if (iot === undefined) return url;
  const u = new URL(url);
  u.searchParams.set('x-amz-customauthorizer-name', iot.authorizerName);
  u.searchParams.set(iot.tokenKeyName ?? 'token', token);
  return u.toString();
}

export class MqttConnection {
  private state = initialConnectionState;
  private client: MqttClient | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly topics = new Set<string>();
  private readonly acked = new Set<string>();

  constructor(private readonly deps: ConnectionDeps) {}

  get phase(): ConnectionPhase {
    return this.state.phase;
  }

  get topicCount(): number {
    return this.topics.size;
  }

  has(topic: string): boolean {
    return this.topics.has(topic);
  }

  isAcked(topic: string): boolean {
    return this.acked.has(topic);
  }

  start(): void {
    this.dispatch({ type: 'start', now: this.deps.now() });
  }

  /** The network is back (browser `online`): retry now instead of sitting out the backoff. */
  online(): void {
    this.dispatch({ type: 'online', now: this.deps.now() });
  }

  /** The network went away (browser `offline`): drop the socket rather than wait for keepalive. */
  offline(): void {
    if (this.client !== undefined) this.lost(this.state.attempt, 'network', this.client);
  }

  subscribe(topic: string): void {
    if (this.topics.has(topic)) return;
    this.topics.add(topic);
    if (this.state.phase === 'connected' && this.client !== undefined) this.sendSubscribe(this.client, topic);
  }

  /** Sends SUBSCRIBE again for a wanted topic the broker refused on this connection. */
  retrySubscribe(topic: string): void {
    if (this.topics.has(topic) && !this.acked.has(topic) && this.state.phase === 'connected' && this.client !== undefined) this.sendSubscribe(this.client, topic);
  }

  unsubscribe(topic: string): void {
    if (!this.topics.delete(topic)) return;
    this.acked.delete(topic);
    if (this.state.phase === 'connected') this.client?.unsubscribe(topic);
  }

  close(): void {
    this.dispatch({ type: 'stop' });
  }

  private dispatch(event: ConnectionEvent): void {
    const { state, effects } = connectionTransition(this.state, event, this.deps.backoff);
    this.state = state;
    for (const effect of effects) {
      switch (effect.type) {
        case 'open':
          void this.open(effect.attempt, effect.refreshToken);
          break;
        case 'close':
          this.endClient();
          break;
        case 'phase':
          this.deps.log.log('connection phase', { clientIdSuffix: this.deps.clientIdSuffix, phase: effect.phase, attempt: state.attempt });
          if (effect.phase !== 'connected') this.acked.clear();
          this.deps.onPhase(effect.phase);
          if (effect.phase === 'connected' && this.client !== undefined) {
            for (const topic of this.topics) this.sendSubscribe(this.client, topic);
          }
          break;
      }
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    if (state.phase === 'waiting' && state.retryAt !== null) {
      this.timer = setTimeout(() => this.dispatch({ type: 'tick', now: this.deps.now() }), Math.max(0, state.retryAt - this.deps.now()));
    }
  }

  private async open(attempt: number, refreshToken: boolean): Promise<void> {
    this.endClient();
    let token: string;
    try {
      token = await this.deps.tokens.get(refreshToken);
    } catch (err) {
      this.deps.onAuthError(err);
      this.dispatch({ type: 'lost', attempt, reason: 'network', now: this.deps.now(), random: this.deps.random() });
      return;
    }
    if (attempt !== this.state.attempt || this.state.phase !== 'connecting') return; // superseded meanwhile
    const clientId = boundClientId(token, this.deps.clientIdSuffix);
    const options: IClientOptions = {
      clientId,
      protocolVersion: 4, // MQTT 3.1.1: IoT Core and aedes both speak it
      clean: true,
      keepalive: 30,
      connectTimeout: 10_000,
      ...this.deps.mqttOptions,
      reconnectPeriod: 0, // reconnects are ours (full-jitter backoff), never mqtt.js' fixed period
      resubscribe: false,
      // Local broker: the token is the MQTT password. IoT Core: it rides in the URL instead.
      ...(this.deps.iot === undefined ? { username: 'taskflow', password: token } : {}),
    };
    const client = mqtt.connect(connectUrl(this.deps.url, this.deps.iot, token), options);
    this.client = client;
    let failure: 'auth' | 'network' = 'network';
    client.on('connect', () => {
      if (this.client === client) this.dispatch({ type: 'opened', attempt, now: this.deps.now() });
    });
    client.on('error', (err) => {
      this.deps.log.log('connection error', { clientId, error: String(err) });
      if (isAuthFailure(err)) {
        failure = 'auth';
        if (!this.deps.tokens.refreshable) this.deps.onAuthError(err);
      }
    });
    client.on('close', () => this.lost(attempt, failure, client));
    client.on('message', (topic, payload) => {
      if (this.client === client) this.deps.onMessage(topic, payload);
    });
  }

  private lost(attempt: number, reason: 'auth' | 'network', client: MqttClient): void {
    if (this.client !== client) return;
    this.endClient();
    this.dispatch({ type: 'lost', attempt, reason, now: this.deps.now(), random: this.deps.random() });
  }

  private sendSubscribe(client: MqttClient, topic: string): void {
    client.subscribe(topic, { qos: this.deps.subscribeQos }, (err, granted) => {
      if (this.client !== client || !this.topics.has(topic)) return;
      if (err !== null && err !== undefined) {
        // mqtt.js reports a failure SUBACK as an error carrying the SUBACK packet: a refusal.
        if ((err as { packet?: { cmd?: string } }).packet?.cmd === 'suback') {
          this.deps.onSubscribed(topic, false);
          return;
        }
        // Not an answer from the broker (the connection went away): the next CONNACK resubscribes.
        this.deps.log.log('subscribe failed', { topic, error: String(err) });
        return;
      }
      const ok = granted !== undefined && granted.every((g) => g.qos !== 128);
      if (ok) this.acked.add(topic);
      this.deps.onSubscribed(topic, ok);
    });
  }

  private endClient(): void {
    const client = this.client;
    this.client = undefined;
    client?.removeAllListeners('message');
    client?.end(true);
  }
}
