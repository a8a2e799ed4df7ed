// Publishing to browsers, behind one interface: a pool of MQTT connections (local aedes,
// Mosquitto, IoT Core over MQTT) or IoT Core's data-plane HTTPS Publish. A topic always uses the
// same connection, so one project's messages leave in order; each connection keeps IoT Core's
// 100 publishes/s through a token bucket.
import { PublishCommand, type IoTDataPlaneClient } from '@aws-sdk/client-iot-data-plane';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { createBucket, take, type TokenBucket } from '../lib/rate-limit.js';

export interface Publisher {
  publish(topic: string, payload: Buffer): Promise<void>;
  close(): Promise<void>;
}

export interface MqttPoolOptions {
  url: string;
  size: number;
  username?: string;
  password?: string;
  clientIdPrefix: string;
  publishesPerSecond: number;
  /** mTLS (an `mqtts://` URL): the client's certificate and key — IoT Core's device authentication — and the CA to trust (default: Node's store). */
  tls?: { ca?: Buffer; cert: Buffer; key: Buffer };
  /** Called with every message on topics the pool subscribes to (subscription lifecycle events). */
  onMessage?: (topic: string, payload: Buffer) => void;
  subscribe?: readonly string[];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function topicHash(topic: string): number {
  let h = 2166136261;
  for (let i = 0; i < topic.length; i += 1) h = Math.imul(h ^ topic.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** The options of every connection of a pool (and of the broker tier's lifecycle connections). */
export function mqttClientOptions(opts: Pick<MqttPoolOptions, 'username' | 'password' | 'tls'>, clientId: string): IClientOptions {
  return {
    clientId,
    ...(opts.username ? { username: opts.username } : {}),
    ...(opts.password ? { password: opts.password } : {}),
    ...(opts.tls ? { ...(opts.tls.ca ? { ca: opts.tls.ca } : {}), cert: opts.tls.cert, key: opts.tls.key, rejectUnauthorized: true } : {}),
    clean: true,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
  };
}

interface PooledConnection {
  client: MqttClient;
  bucket: TokenBucket;
  /** Serializes token taking so a waiting publish keeps its place. */
  queue: Promise<void>;
}

/** How long close() waits for the broker to acknowledge the publishes in flight. */
export const CLOSE_GRACE_MS = 2000;

export class MqttPublisherPool implements Publisher {
  /** Fails a publish in flight (close() gave up waiting for its acknowledgement). */
  private readonly inFlight = new Set<(err: Error) => void>();
  private closing: Promise<void> | undefined;

  private constructor(private readonly connections: PooledConnection[]) {}

  static async connect(opts: MqttPoolOptions): Promise<MqttPublisherPool> {
    const connections = await Promise.all(
      Array.from({ length: opts.size }, async (_, i) => {
        const client = await mqtt.connectAsync(opts.url, mqttClientOptions(opts, `${opts.clientIdPrefix}-${i}`));
        return { client, bucket: createBucket(opts.publishesPerSecond, opts.publishesPerSecond, Date.now()), queue: Promise.resolve() };
      }),
    );
    const first = connections[0];
    if (first && opts.subscribe?.length) {
      first.client.on('message', (topic, payload) => opts.onMessage?.(topic, payload));
      await first.client.subscribeAsync([...opts.subscribe], { qos: 0 });
    }
    return new MqttPublisherPool(connections);
  }

  /**
   * Without waiting for the connections (a broker node that may be down: mqtt.js keeps trying and
   * sends what was published meanwhile once connected). No lifecycle subscription.
   */
  static open(opts: Omit<MqttPoolOptions, 'onMessage' | 'subscribe'>): MqttPublisherPool {
    return new MqttPublisherPool(
      Array.from({ length: opts.size }, (_, i) => ({
        client: mqtt.connect(opts.url, mqttClientOptions(opts, `${opts.clientIdPrefix}-${i}`)),
        bucket: createBucket(opts.publishesPerSecond, opts.publishesPerSecond, Date.now()),
        queue: Promise.resolve(),
      })),
    );
  }

  async publish(topic: string, payload: Buffer): Promise<void> {
    const conn = this.connections[topicHash(topic) % this.connections.length];
    if (!conn) throw new Error('publisher pool has no connections');
    const turn = conn.queue.then(async () => {
      for (;;) {
        if (this.closing) return;
        const r = take(conn.bucket, Date.now());
        if (r.ok) return;
        await sleep(r.waitMs);
      }
    });
    conn.queue = turn;
    await turn;
    if (this.closing) throw new Error('publisher closed');
    await new Promise<void>((resolve, reject) => {
      this.inFlight.add(reject);
      conn.client.publishAsync(topic, payload, { qos: 1 }).then(() => resolve(), reject).finally(() => this.inFlight.delete(reject));
    });
  }

  /**
   * Waits up to `graceMs` for the publishes in flight to be acknowledged, then fails the rest and
   * closes the connections. A publish the broker refused is never acknowledged — the broker (aedes,
   * IoT Core) closes the connection and mqtt.js sends it again after every reconnect — and a plain
   * end() would wait for it forever; a service's graceful stop calls this when its in-flight
   * batches do not finish (notifications/service.ts), so the stop ends and the batch is re-read
   * from the last checkpoint by the next holder.
   */
  close(graceMs = CLOSE_GRACE_MS): Promise<void> {
    this.closing ??= (async () => {
      const acknowledged = Promise.all(this.connections.map((c) => new Promise<void>((resolve) => (Object.keys(c.client.outgoing).length === 0 ? resolve() : c.client.once('outgoingEmpty', () => resolve())))));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([acknowledged.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)))]);
      clearTimeout(timer);
      for (const fail of this.inFlight) fail(new Error('publisher closed before the broker acknowledged the publish'));
      this.inFlight.clear();
      await Promise.all(this.connections.map((c) => c.client.endAsync(timedOut)));
    })();
    return this.closing;
  }
}

/** IoT Core data-plane Publish over HTTPS (locally: the broker's POST /topics/{topic} route). */
export class IotDataPublisher implements Publisher {
  constructor(private readonly client: IoTDataPlaneClient) {}

  async publish(topic: string, payload: Buffer): Promise<void> {
    await this.client.send(new PublishCommand({ topic, qos: 1, payload }));
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
