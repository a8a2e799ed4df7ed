// The local stand-in for AWS IoT Core: an aedes MQTT 3.1.1 broker on TCP and on WebSocket, plus
// IoT's data-plane routes on the WebSocket port: publish (POST /topics/{topic}?qos=N, body =
// payload) and DeleteConnection (DELETE /connections/{clientId}?cleanSession=…, answering once
// the client is disconnected; 404 ResourceNotFoundException when no client has that id). Authorization hooks are pluggable so the same membership policy that backs the IoT Core
// custom authorizer can guard the local broker. The broker can be stopped and started again on
// the same ports while the rest of the stack keeps running (tests of reconnects).
import { Aedes, type AedesOptions, type Client } from 'aedes';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { randomUUID } from 'node:crypto';
import { listen } from './processes.js';

export type BrokerHooks = Pick<AedesOptions, 'authenticate' | 'authorizeSubscribe' | 'authorizePublish' | 'authorizeForward' | 'preConnect'>;

export interface BrokerOptions {
  /** 0 = any free port. After the first start the ports stay fixed across restarts. */
  tcpPort: number;
  wsPort: number;
  hooks?: BrokerHooks;
}

export interface Broker {
  readonly tcpUrl: string;
  readonly wsUrl: string;
  /** Base URL of the IoT data-plane routes, publish and DeleteConnection (IOT_DATA_ENDPOINT). */
  readonly publishUrl: string;
  readonly running: boolean;
  /** Disconnects every client and closes both listeners. */
  stop(): Promise<void>;
  /** Listens again on the same ports with a fresh broker (retained messages and sessions are gone). */
  start(): Promise<void>;
  restart(): Promise<void>;
}

interface Running {
  aedes: Aedes;
  tcp: TcpServer;
  http: HttpServer;
  wss: WebSocketServer;
  sockets: Set<Socket>;
}

const MAX_PUBLISH_BYTES = 128 * 1024; // IoT Core's message size limit

/**
 * Publishes IoT Core's lifecycle events ($aws/events/subscriptions/…, $aws/events/presence/…)
 * with a session identifier per connection, as IoT Core does, so the router tracks live
 * subscriptions the same way locally and in production. Refused subscriptions (granted 128) are
 * not reported.
 */
function emitIotLifecycleEvents(aedes: Aedes): void {
  const sessions = new WeakMap<object, string>();
  const sessionOf = (client: object): string => {
    let id = sessions.get(client);
    if (!id) sessions.set(client, (id = randomUUID()));
    return id;
  };
  const emit = (topic: string, body: Record<string, unknown>): void => {
    aedes.publish({ cmd: 'publish', topic, payload: Buffer.from(JSON.stringify({ ...body, timestamp: Date.now() })), qos: 0, retain: false, dup: false }, () => {});
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
}

export async function startBroker(options: BrokerOptions): Promise<Broker> {
  let tcpPort = options.tcpPort;
  let wsPort = options.wsPort;
  let current: Running | undefined;

  async function start(): Promise<void> {
    if (current) return;
    const aedes = await Aedes.createBroker({ ...options.hooks });
    emitIotLifecycleEvents(aedes);
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
    const http = createHttpServer((req, res) => handleDataPlane(aedes, req, res));
    http.on('connection', track);
    const wss = new WebSocketServer({ server: http });
    wss.on('connection', (ws, req) => aedes.handle(createWebSocketStream(ws), req));
    try {
      tcpPort = await listen(tcp, tcpPort);
      wsPort = await listen(http, wsPort);
    } catch (err) {
      tcp.close();
      http.close();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      throw err;
    }
    current = { aedes, tcp, http, wss, sockets };
  }

  async function stop(): Promise<void> {
    const r = current;
    if (!r) return;
    current = undefined;
    await new Promise<void>((resolve) => r.aedes.close(() => resolve()));
    for (const socket of r.sockets) socket.destroy();
    for (const ws of r.wss.clients) ws.terminate();
    await Promise.all([
      new Promise<void>((resolve) => r.wss.close(() => resolve())),
      new Promise<void>((resolve) => r.tcp.close(() => resolve())),
      new Promise<void>((resolve) => r.http.close(() => resolve())),
    ]);
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
    stop,
    start,
    restart: async () => {
      await stop();
      await start();
    },
  };
}

function handleDataPlane(aedes: Aedes, req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const publish = /^\/topics\/(.+)$/.exec(url.pathname);
  if (req.method === 'POST' && publish?.[1]) {
    handlePublish(aedes, decodeURIComponent(publish[1]), url, req, res);
    return;
  }
  const connection = /^\/connections\/([^/]+)$/.exec(url.pathname);
  if (req.method === 'DELETE' && connection?.[1]) {
    handleDeleteConnection(aedes, decodeURIComponent(connection[1]), url, res);
    return;
  }
  reply(res, 404, { message: 'not found: the local IoT data plane serves POST /topics/{topic} and DELETE /connections/{clientId}' });
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
function handlePublish(aedes: Aedes, topic: string, url: URL, req: IncomingMessage, res: ServerResponse): void {
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
      else reply(res, 200, {});
    });
  });
}

function reply(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
