// The inbox API over HTTP (Bearer TaskFlow JWT, lib/jwt.ts; 401 without a valid one):
//   GET  /v1/workspaces/{ws}/notifications?limit=&before=   newest first, with the unread count
//   GET  /v1/workspaces/{ws}/notifications/unread-count
//   POST /v1/workspaces/{ws}/notifications/read  {"ids":[…]}  marks them read
// Only the caller's own inbox, and of it only notifications of projects the caller may read now
// (lib/authz.ts readableProjects over the service's membership projection; 403 with no
// membership in the workspace): README, "a notification whose task the user can no longer see".
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readableProjects } from '../lib/authz.js';
import type { MembershipReader } from '../lib/dynamo-memberships.js';
import type { TokenVerifier } from '../lib/jwt.js';
import type { Logger } from '../lib/logger.js';
import type { PerUserLimiter } from '../lib/user-limits.js';
import type { DynamoInbox } from './inbox.js';
import { type ApiMetrics, type ApiOutcome, noopApiMetrics } from './metrics.js';

export interface InboxApiDeps {
  inbox: Pick<DynamoInbox, 'list' | 'unreadCount' | 'markRead'>;
  memberships: MembershipReader;
  verify: TokenVerifier;
  /** Upper bound of `limit`, and its default. */
  maxPage: number;
  /** Per-user rate and concurrency limits (429 + Retry-After beyond them). */
  limiter?: PerUserLimiter;
  metrics?: ApiMetrics;
  logger?: Logger;
}

const ROUTE = /^\/v1\/workspaces\/([^/]+)\/notifications(?:\/(unread-count|read))?$/;
const EVENT_ID = /^[0-9A-F]{16}-\d{8}$/;
/** ids per mark-read request, and the body's size bound. */
export const MAX_MARK_IDS = 100;
const MAX_BODY_BYTES = 8 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly outcome: ApiOutcome,
    message: string,
  ) {
    super(message);
  }
}

async function readIds(req: IncomingMessage): Promise<string[]> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'bad_request', `body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'bad_request', 'body must be JSON: {"ids": [notification ids]}');
  }
  const ids = (body as { ids?: unknown } | null)?.ids;
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > MAX_MARK_IDS || !ids.every((id) => typeof id === 'string' && EVENT_ID.test(id))) {
    throw new HttpError(400, 'bad_request', `ids must be 1 to ${MAX_MARK_IDS} notification ids`);
  }
  return ids as string[];
}

export function createInboxHandler(deps: InboxApiDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const metrics = deps.metrics ?? noopApiMetrics;

  async function handle(req: IncomingMessage, res: ServerResponse, route: { name: string }): Promise<ApiOutcome> {
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    // Browsers call this from the board's origin with an Authorization header.
    res.setHeader('access-control-allow-origin', '*');
    res.setHeader('access-control-allow-headers', 'authorization, content-type');
    res.setHeader('access-control-allow-methods', 'GET, POST');
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end();
      return 'ok';
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/healthz') {
      send(200, { ok: true });
      return 'ok';
    }
    const m = ROUTE.exec(url.pathname);
    const sub = m?.[2] ?? 'list';
    route.name = sub;
    if (!m || (sub === 'read') !== (req.method === 'POST') || (req.method !== 'GET' && req.method !== 'POST')) throw new HttpError(404, 'not_found', 'no such route');
    const workspaceId = decodeURIComponent(m[1] ?? '');
    const auth = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '');
    let userId: string;
    try {
      if (!auth?.[1]) throw new Error('no token');
      userId = (await deps.verify(auth[1])).userId;
    } catch {
      throw new HttpError(401, 'unauthenticated', 'a valid TaskFlow token is required');
    }
    // After the token, before any store read: a flooding user spends its own budget only.
    const admission = deps.limiter?.admit(userId);
    if (admission && !admission.ok) {
      res.setHeader('retry-after', String(Math.max(1, Math.ceil(admission.retryAfterMs / 1000))));
      throw new HttpError(429, 'too_many_requests', `too many inbox requests (${admission.reason}); retry later`);
    }
    try {
      return await serve();
    } finally {
      if (admission?.ok) admission.release();
    }

    async function serve(): Promise<ApiOutcome> {
      const projects = readableProjects(userId, await deps.memberships.memberships(userId), workspaceId);
      if (projects !== 'all' && projects.length === 0) throw new HttpError(403, 'forbidden', 'no membership in this workspace');

      if (sub === 'unread-count') {
        send(200, { unread: await deps.inbox.unreadCount(workspaceId, userId, projects) });
        return 'ok';
      }
      if (sub === 'read') {
        const ids = await readIds(req);
        const marked = await deps.inbox.markRead(workspaceId, userId, ids);
        send(200, { marked, unread: await deps.inbox.unreadCount(workspaceId, userId, projects) });
        return 'ok';
      }
      const limitParam = url.searchParams.get('limit');
      const limit = limitParam === null ? deps.maxPage : Number(limitParam);
      if (!Number.isInteger(limit) || limit < 1 || limit > deps.maxPage) throw new HttpError(400, 'bad_request', `limit must be an integer from 1 to ${deps.maxPage}`);
      const before = url.searchParams.get('before') ?? undefined;
      if (before !== undefined && !EVENT_ID.test(before)) throw new HttpError(400, 'bad_request', 'before must be a notification id');
      const [page, unread] = await Promise.all([deps.inbox.list(workspaceId, userId, projects, { limit, ...(before ? { before } : {}) }), deps.inbox.unreadCount(workspaceId, userId, projects)]);
      send(200, { notifications: page.notifications, unread, ...(page.next ? { next: page.next } : {}) });
      return 'ok';
    }
  }

  return (req, res) => {
    const started = performance.now();
    const route = { name: 'none' };
    const done = (outcome: ApiOutcome) => metrics.request(route.name, outcome, (performance.now() - started) / 1000);
    handle(req, res, route).then(done, (err: unknown) => {
      if (err instanceof HttpError) {
        res.writeHead(err.status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify({ error: err.outcome, message: err.message }));
        done(err.outcome);
        return;
      }
      deps.logger?.error({ err }, 'inbox request failed');
      done('error');
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'internal' }));
      } else res.end();
    });
  };
}

export async function startInboxServer(deps: InboxApiDeps, port: number, host = '127.0.0.1'): Promise<{ server: Server; url: string }> {
  const server = createServer(createInboxHandler(deps));
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const addr = server.address();
  return { server, url: `http://${host}:${typeof addr === 'object' && addr ? addr.port : port}` };
}
