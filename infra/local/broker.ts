// The MQTT broker: an aedes MQTT 3.1.1 broker on TCP and on WebSocket, plus IoT's data-plane
// routes on the WebSocket port: publish (POST /topics/{topic}?qos=N, body = payload),
// DeleteConnection (DELETE /connections/{clientId}?cleanSession=…, answering once the client is
// disconnected; 404 ResourceNotFoundException when no client has that id) and the node's live
// sessions (GET /subscriptions). It is the local stand-in for AWS IoT Core and, run by
// `taskflow broker` (broker/), the production broker tier. Authorization hooks are pluggable so
// the same membership policy that backs the IoT Core custom authorizer guards it; the HTTP routes
// are open unless `routeAuth` names the token subject allowed (the router; the service requires
// it) and those that may also read GET /subscriptions (the other publishers: notifications). The
// broker can be stopped and started again on the same ports while the rest of the stack keeps
// running (tests of reconnects).
import { Aedes, type AedesOptions, type Client } from 'aedes';
import { Counter, Gauge, type Registry } from 'prom-client';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { randomUUID } from 'node:crypto';
import type { TokenVerifier } from '../../lib/jwt.js';
import { listen } from './processes.js';

export type BrokerHooks = Pick<AedesOptions, 'authenticate' | 'authorizeSubscribe' | 'authorizePublish' | 'authorizeForward' | 'preConnect'>;

export interface BrokerOptions {
  /** 0 = any free port. After the first start the ports stay fixed across restarts. */
  tcpPort: number;
  wsPort: number;
  /** Address both listeners bind (default loopback; 0.0.0.0 in a pod). */
  host?: string;
  hooks?: BrokerHooks;
  /** The node's identity: aedes' id (so `$SYS/<id>/…`) and every lifecycle event's `brokerId`. Default: aedes' random id. */
  id?: string;
  /**
   * When set, the HTTP routes require `Authorization: Bearer <JWT>` whose verified subject is
   * `subject`, or for GET /subscriptions alone (a read-only listing) one of `readers`; otherwise they are open.
   */
  routeAuth?: { verify: TokenVerifier; subject: string; readers?: readonly string[] };
  /** Where the broker's gauges and counters (BROKER_NODE_METRICS) are registered, if anywhere. */
  registry?: Registry;
}

/** One live connection and the subscription filters it was granted (GET /subscriptions). */
export interface SessionView {
  clientId: string;
  /** The `sessionIdentifier` its lifecycle events carry. */
  sessionId: string;
  filters: string[];
}

export const BROKER_NODE_METRICS = {
  clients: 'taskflow_broker_clients',
  subscriptions: 'taskflow_broker_subscriptions',
  messagesIn: 'taskflow_broker_messages_in_total',
  messagesOut: 'taskflow_broker_messages_out_total',
} as const;

export interface Broker {
  readonly tcpUrl: string;
  readonly wsUrl: string;
  /** Base URL of the IoT data-plane routes, publish and DeleteConnection (IOT_DATA_ENDPOINT). */
  readonly publishUrl: string;
  readonly running: boolean;
  /** The node's identity (aedes' id), carried by its lifecycle events as `brokerId`. */
  readonly id: string;
  /** Live connections and their granted subscription filters, as GET /subscriptions answers. */
  sessions(): SessionView[];
  /** Disconnects every client and closes both listeners. */
  stop(): Promise<void>;
  /**
   * Graceful stop: refuses new connections at once, then closes the connected clients spread
   * evenly over `spreadMs` (so they reconnect to the other nodes without arriving at once),
   * then stops.
   */
  drain(spreadMs: number): Promise<void>;
  /** Listens again on the same ports with a fresh broker (retained messages and sessions are gone). */
  start(): Promise<void>;
  restart(): Promise<void>;
}

interface Running {
  aedes: Aedes;
  sessionOf(client: object): string;
  tcp: TcpServer;
  http: HttpServer;
  wss: WebSocketServer;
  sockets: Set<Socket>;
}

const MAX_PUBLISH_BYTES = 128 * 1024; // IoT Core's message size limit
const DRAIN_TICK_MS = 100;

/**
 * Publishes IoT Core's lifecycle events ($aws/events/subscriptions/…, $aws/events/presence/…)
 * with a session identifier per connection, as IoT Core does, so the router tracks live
 * subscriptions the same way locally and in production. Refused subscriptions (granted 128) are
 * not reported.
 */
function emitIotLifecycleEvents(aedes: Aedes): (client: object) => string {
  const sessions = new WeakMap<object, string>();
  const sessionOf = (client: object): string => {
    let id = sessions.get(client);
    if (!id) sessions.set(client, (id = randomUUID()));
    return id;
  };
  const emit = (topic: string, body: Record<string, unknown>): void => {
    aedes.publish({ cmd: 'publish', topic, payload: Buffer.from(JSON.stringify({ ...body, brokerId: aedes.id, timestamp: Date.now() })), qos: 0, retain: false, dup: false }, () => {});
  };
  aedes.on('subscribe', (subs, client) => {
    if (!client) return;
    const topics = subs.filter((s) => (s.qos as number) !== 128).map((s) => s.topic); // aedes marks refused ones 128
    if (topics.length > 0) emit(`$aws/events/subscriptions/subscribed/${client.id}`, { clientId: client.id, eventType: 'subscribed', sessionIdentifier: sessionOf(client), topics });
  });
  aedes.on('unsubscribe', (topics, client) => {
    // aedes also reports a clean session's subscriptions as unsubscribed when it closes; IoT
    // Core reports only the disconnect.
    if (client && !client.closed) emit(`$aws/events/subscriptions/unsubscribed/${client.id}`, { clientId: client.id, eventType: 'unsubscribed', sessionIdentifier: sessionOf(client), topics });
  });
  aedes.on('clientDisconnect', (client) => {
    emit(`$aws/events/presence/disconnected/${client.id}`, { clientId: client.id, eventType: 'disconnected', sessionIdentifier: sessionOf(client) });
  });
  return sessionOf;
}

/** aedes keeps its registered clients and each one's granted subscriptions on fields its typings omit. */
type AedesInternals = Aedes & { clients: Record<string, (Client & { subscriptions?: Record<string, unknown> }) | undefined> };

/**
 * The node's live sessions read from aedes itself, not rebuilt from events: aedes adds a filter
 * only once authorizeSubscribe granted it, and during a takeover keeps the old connection
 * registered until it is closed, so this never shows two sessions of one client id.
 */
function liveSessions(aedes: Aedes, sessionOf: (client: object) => string): SessionView[] {
  const clients = Object.values((aedes as AedesInternals).clients).filter((c): c is NonNullable<typeof c> => c !== undefined && !c.closed);
  return clients.map((c) => ({ clientId: c.id, sessionId: sessionOf(c), filters: Object.keys(c.subscriptions ?? {}) }));
}

/** Counters bumped by the running broker; the gauges read it when scraped. */
interface NodeMetrics {
  messagesIn: Counter<'via'>;
  messagesOut: Counter;
}

function registerNodeMetrics(registry: Registry, current: () => Running | undefined): NodeMetrics {
  new Gauge({
    name: BROKER_NODE_METRICS.clients,
    help: 'MQTT clients connected to this broker node',
    registers: [registry],
    collect() {
      this.set(current()?.aedes.connectedClients ?? 0);
    },
  });
  new Gauge({
    name: BROKER_NODE_METRICS.subscriptions,
    help: 'Granted subscription filters of the connected clients of this broker node',
    registers: [registry],
    collect() {
      const r = current();
      this.set(r ? liveSessions(r.aedes, r.sessionOf).reduce((n, s) => n + s.filters.length, 0) : 0);
    },
  });
  return {
    messagesIn: new Counter({ name: BROKER_NODE_METRICS.messagesIn, help: 'Messages published to this broker node, by way in (mqtt: a client; http: POST /topics)', labelNames: ['via'], registers: [registry] }),
    messagesOut: new Counter({ name: BROKER_NODE_METRICS.messagesOut, help: 'Messages this broker node delivered to subscribers (one per subscriber)', registers: [registry] }),
  };
}

/** authorizeForward is called once per delivery to a subscriber: the place to count messages out. */
function countingForwards(hooks: BrokerHooks | undefined, metrics: NodeMetrics | undefined): BrokerHooks {
  const forward = hooks?.authorizeForward;
  if (!metrics) return { ...hooks };
  return {
    ...hooks,
    authorizeForward(client, packet) {
      const out = forward ? forward(client, packet) : packet;
      if (out) metrics.messagesOut.inc();
      return out;
    },
  };
}

export async function startBroker(options: BrokerOptions): Promise<Broker> {
  let tcpPort = options.tcpPort;
  let wsPort = options.wsPort;
  const host = options.host ?? '127.0.0.1';
  let current: Running | undefined;
  const metrics = options.registry ? registerNodeMetrics(options.registry, () => current) : undefined;
  let id = options.id;

  async function start(): Promise<void> {
    if (current) return;
    const aedes = await Aedes.createBroker({ ...countingForwards(options.hooks, metrics), ...(options.id ? { id: options.id } : {}) });
    id = aedes.id;
    const sessionOf = emitIotLifecycleEvents(aedes);
    if (metrics) aedes.on('publish', (_packet, client) => client && metrics.messagesIn.inc({ via: 'mqtt' }));
    const sockets = new Set<Socket>();
    const track = (socket: Socket): void => {
      // Nagle plus delayed ACKs costs 10–16 ms per small MQTT packet.
      socket.setNoDelay(true);
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    };
    const tcp = createTcpServer((socket) => {
      track(socket);
      aedes.handle(socket);
    });
    const routes: DataPlane = { aedes, sessionOf, auth: options.routeAuth, published: () => metrics?.messagesIn.inc({ via: 'http' }) };
    const http = createHttpServer((req, res) => void handleDataPlane(routes, req, res));
    http.on('connection', track);
    const wss = new WebSocketServer({ server: http });
    wss.on('connection', (ws, req) => aedes.handle(createWebSocketStream(ws), req));
    try {
      tcpPort = await listen(tcp, tcpPort, host);
      wsPort = await listen(http, wsPort, host);
    } catch (err) {
      tcp.close();
      http.close();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      throw err;
    }
    current = { aedes, sessionOf, tcp, http, wss, sockets };
  }

  const closeServer = (server: TcpServer | HttpServer): Promise<void> => new Promise((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));

  async function stop(): Promise<void> {
    const r = current;
    if (!r) return;
    current = undefined;
    await new Promise<void>((resolve) => r.aedes.close(() => resolve()));
    for (const socket of r.sockets) socket.destroy();
    for (const ws of r.wss.clients) ws.terminate();
    await Promise.all([new Promise<void>((resolve) => r.wss.close(() => resolve())), closeServer(r.tcp), closeServer(r.http)]);
  }

  async function drain(spreadMs: number): Promise<void> {
    const r = current;
    if (!r) return;
    // No new connections (TCP or WebSocket) from here on; the connected ones are closed below.
    const closed = Promise.all([closeServer(r.tcp), closeServer(r.http)]);
    const clients = Object.values((r.aedes as AedesInternals).clients).filter((c) => c !== undefined);
    const ticks = Math.max(1, Math.ceil(spreadMs / DRAIN_TICK_MS));
    for (let tick = 0; tick < ticks && clients.length > 0; tick += 1) {
      // An even share per tick, the rounding carried into the later ticks.
      for (const c of clients.splice(0, Math.ceil(clients.length / (ticks - tick)))) c?.close();
      if (clients.length > 0) await new Promise((resolve) => setTimeout(resolve, DRAIN_TICK_MS));
    }
    await stop();
    await closed;
  }

  await start();
  return {
    get tcpUrl() {
      return `mqtt://127.0.0.1:${tcpPort}`;
    },
    get wsUrl() {
      return `ws://127.0.0.1:${wsPort}/mqtt`;
    },
    get publishUrl() {
      return `http://127.0.0.1:${wsPort}`;
    },
    get running() {
      return current !== undefined;
    },
    get id() {
      return id ?? '';
    },
    sessions: () => (current ? liveSessions(current.aedes, current.sessionOf) : []),
    stop,
    drain,
    start,
    restart: async () => {
      await stop();
      await start();
    },
  };
}

interface DataPlane {
  aedes: Aedes;
  sessionOf(client: object): string;
  auth: BrokerOptions['routeAuth'];
  published(): void;
}

/**
 * 401 without a verified bearer token, 403 for any subject but the allowed one (the router) or,
 * on GET /subscriptions only, one of the readers (the publishers that load a node's sessions);
 * undefined when the request may go on. Bodies as the other APIs' (lib/http-api.ts).
 */
async function refusal(auth: BrokerOptions['routeAuth'], route: 'publish' | 'delete' | 'subscriptions', req: IncomingMessage): Promise<{ status: number; body: object } | undefined> {
  if (!auth) return undefined;
  const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '');
  if (!bearer?.[1]) return { status: 401, body: { error: 'unauthenticated', message: 'Authorization: Bearer <token> is required' } };
  let subject: string;
  try {
    subject = (await auth.verify(bearer[1])).userId;
  } catch {
    return { status: 401, body: { error: 'unauthenticated', message: 'invalid token' } };
  }
  if (subject === auth.subject || (route === 'subscriptions' && auth.readers?.includes(subject))) return undefined;
  const message = route === 'subscriptions' ? `GET /subscriptions is reserved for ${[auth.subject, ...(auth.readers ?? [])].join(', ')}` : `this route of the broker is reserved for ${auth.subject}`;
  return { status: 403, body: { error: 'forbidden', message } };
}

async function handleDataPlane(plane: DataPlane, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const publish = /^\/topics\/(.+)$/.exec(url.pathname);
  const connection = /^\/connections\/([^/]+)$/.exec(url.pathname);
  const route =
    req.method === 'POST' && publish?.[1] ? 'publish' : req.method === 'DELETE' && connection?.[1] ? 'delete' : req.method === 'GET' && url.pathname === '/subscriptions' ? 'subscriptions' : undefined;
  if (!route) {
    reply(res, 404, { error: 'not_found', message: 'the broker serves POST /topics/{topic}, DELETE /connections/{clientId} and GET /subscriptions' });
    return;
  }
  const refused = await refusal(plane.auth, route, req);
  if (refused) {
    req.resume(); // a refused publish's body is not read
    reply(res, refused.status, refused.body);
    return;
  }
  if (route === 'publish') handlePublish(plane, decodeURIComponent(publish![1]!), url, req, res);
  else if (route === 'delete') handleDeleteConnection(plane.aedes, decodeURIComponent(connection![1]!), url, res);
  else reply(res, 200, { brokerId: plane.aedes.id, sessions: liveSessions(plane.aedes, plane.sessionOf) });
}

/**
 * IoT data-plane DeleteConnection: closes the client's network connection and answers after it
 * is closed, so a caller that got 200 knows nothing more reaches that connection.
 * `cleanSession=true` also drops a persistent session's subscriptions, so a reconnect with
 * `clean: false` cannot bring them back without being authorized again.
 */
function handleDeleteConnection(aedes: Aedes, clientId: string, url: URL, res: ServerResponse): void {
  const clients = (aedes as Aedes & { clients: Record<string, Client | undefined> }).clients;
  const client = clients[clientId];
  if (!client || client.closed) {
    res.setHeader('x-amzn-errortype', 'ResourceNotFoundException');
    reply(res, 404, { message: `no connection with client id ${clientId}` });
    return;
  }
  const cleanSession = url.searchParams.get('cleanSession') === 'true';
  client.close(() => {
    if (!cleanSession) {
      reply(res, 200, {});
      return;
    }
    const persistence = (aedes as Aedes & { persistence: { cleanSubscriptions(c: Client, cb: (err?: Error) => void): void } }).persistence;
    persistence.cleanSubscriptions(client, (err) => (err ? reply(res, 500, { message: err.message }) : reply(res, 200, {})));
  });
}

/** IoT data-plane Publish: POST /topics/{url-encoded topic}?qos=0|1, raw payload as body. */
function handlePublish({ aedes, published }: DataPlane, topic: string, url: URL, req: IncomingMessage, res: ServerResponse): void {
  const qos = url.searchParams.get('qos') === '1' ? 1 : 0;
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= MAX_PUBLISH_BYTES) chunks.push(chunk);
  });
  req.on('end', () => {
    if (size > MAX_PUBLISH_BYTES) {
      reply(res, 413, { message: `payload of ${size} bytes exceeds ${MAX_PUBLISH_BYTES}` });
      return;
    }
    aedes.publish({ cmd: 'publish', topic, payload: Buffer.concat(chunks), qos, retain: false, dup: false }, (err) => {
      if (err) reply(res, 500, { message: err.message });
      else {
        published();
        reply(res, 200, {});
      }
    });
  });
}

function reply(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
