// The search API over HTTP:
//   GET /v1/workspaces/{ws}/search?q=<words>&limit=<n>
// Bearer TaskFlow JWT (401 without a valid one); the user's memberships, from the index's own
// projection, decide through lib/authz.ts readableProjects which projects' tasks and comments a
// query may return (403 with no membership in the workspace).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readableProjects } from '../lib/authz.js';
import { TaskflowError } from '../lib/errors.js';
import type { TokenVerifier } from '../lib/jwt.js';
import type { Logger } from '../lib/logger.js';
import { noopQueryMetrics, type QueryMetrics, type QueryOutcome } from './metrics.js';
import { parseQueryTerms, type SearchIndex } from './search-index.js';

export interface SearchApiDeps {
  index: SearchIndex;
  verify: TokenVerifier;
  /** Upper bound of `limit`, and its default. */
  maxResults: number;
  metrics?: QueryMetrics;
  logger?: Logger;
}

const ROUTE = /^\/v1\/workspaces\/([^/]+)\/search$/;

export function createSearchHandler(deps: SearchApiDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const metrics = deps.metrics ?? noopQueryMetrics;

  async function handle(req: IncomingMessage, res: ServerResponse, started: number): Promise<void> {
    const send = (status: number, body: unknown, outcome?: QueryOutcome): void => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
      if (outcome) metrics.query(outcome, (performance.now() - started) / 1000);
    };
    // Browsers call this from the board's origin with an Authorization header.
    res.setHeader('access-control-allow-origin', '*');
    res.setHeader('access-control-allow-headers', 'authorization');
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/healthz') return send(200, { ok: true });
    const m = ROUTE.exec(url.pathname);
    if (req.method !== 'GET' || !m) return send(404, { error: 'not_found' });
    const workspaceId = decodeURIComponent(m[1] ?? '');
    let terms: string[];
    try {
      terms = parseQueryTerms(url.searchParams.get('q') ?? '');
    } catch (err) {
      if (!(err instanceof TaskflowError)) throw err;
      return send(400, { error: 'bad_request', message: err.message }, 'bad_request');
    }
    const limitParam = url.searchParams.get('limit');
    const limit = limitParam === null ? deps.maxResults : Number(limitParam);
    if (!Number.isInteger(limit) || limit < 1 || limit > deps.maxResults) {
      return send(400, { error: 'bad_request', message: `limit must be an integer from 1 to ${deps.maxResults}` }, 'bad_request');
    }
    const auth = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '');
    if (!auth?.[1]) return send(401, { error: 'unauthenticated' }, 'unauthenticated');
    let userId: string;
    try {
      userId = (await deps.verify(auth[1])).userId;
    } catch {
      return send(401, { error: 'unauthenticated' }, 'unauthenticated');
    }
    const projects = readableProjects(userId, await deps.index.memberships(userId), workspaceId);
    if (projects !== 'all' && projects.length === 0) return send(403, { error: 'forbidden' }, 'forbidden');
    const hits = await deps.index.search({ workspaceId, terms, projects, limit });
    send(
      200,
      {
        hits: hits.map((h) => ({ type: h.table === 'tasks' ? 'task' : 'comment', id: h.id, projectId: h.projectId, taskId: h.taskId, title: h.title, text: h.text, status: h.status, version: h.version, score: h.score })),
        limit,
      },
      'ok',
    );
  }

  return (req, res) => {
    const started = performance.now();
    handle(req, res, started).catch((err: unknown) => {
      deps.logger?.error({ err }, 'search request failed');
      metrics.query('error', (performance.now() - started) / 1000);
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'internal' }));
      } else res.end();
    });
  };
}

export async function startSearchServer(deps: SearchApiDeps, port: number, host = '127.0.0.1'): Promise<{ server: Server; url: string }> {
  const server = createServer(createSearchHandler(deps));
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const addr = server.address();
  return { server, url: `http://${host}:${typeof addr === 'object' && addr ? addr.port : port}` };
}
