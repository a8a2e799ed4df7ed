// HTTP server of the demo board: the page, its script (bundled with the SDK on start-up) and
// the small read/write API. Knows nothing of the pipeline beyond the URLs it hands the page.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Pool } from 'pg';
import type { Env } from '../../lib/config.js';
import { requireDevelopment } from '../../lib/dev-mode.js';
import { TaskflowError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import { Histogram } from 'prom-client';
import { createRegistry } from '../../lib/metrics.js';
import { BadRequest, NotFound, addComment, createTask, loadBoard, requireUuid, updateTask } from './api.js';
import { HEALTH_METRICS, HealthSampler, type MetricsSource } from './health.js';

const here = dirname(fileURLToPath(import.meta.url));

export interface BoardSession {
  userId: string;
  workspaceId: string;
  projectId: string;
  token: string;
  mqttUrl: string;
  replayUrl: string;
  /** The search API, when a search service runs. */
  searchUrl?: string;
  /** The analytics API, when the loader serves it. */
  analyticsUrl?: string;
  /** The notifications service's inbox API, when it runs: the page then shows a bell. */
  notificationsUrl?: string;
}

export interface DemoSessionOptions {
  /** Demo users by name (alice → id); the first one is the default. */
  users: Readonly<Record<string, string>>;
  workspaceId: string;
  projectId: string;
  mqttUrl: string;
  replayUrl: string;
  searchUrl?: string;
  analyticsUrl?: string;
  notificationsUrl?: string;
  sign(userId: string): Promise<string>;
  /** Where development mode is read from (lib/dev-mode.ts). */
  env: Env;
}

/**
 * Sessions for the demo: `?user=` names a demo user (or gives its id); anything else is the first
 * user. They hand anyone who asks a token of a workspace owner, so they exist only in development mode.
 */
export function demoSessions(opts: DemoSessionOptions): (user: string | undefined) => Promise<BoardSession> {
  requireDevelopment(opts.env, "the demo board's /api/session (it hands a demo workspace owner's token to anyone who asks)");
  const ids = Object.values(opts.users);
  const fallback = ids[0];
  if (!fallback) throw new TaskflowError('NO_DEMO_USERS', 'the demo board needs at least one demo user');
  return async (user) => {
    const userId = (user && (opts.users[user] ?? (ids.includes(user) ? user : undefined))) || fallback;
    return {
      userId,
      workspaceId: opts.workspaceId,
      projectId: opts.projectId,
      token: await opts.sign(userId),
      mqttUrl: opts.mqttUrl,
      replayUrl: opts.replayUrl.replace(/\/$/, ''),
      ...(opts.searchUrl ? { searchUrl: opts.searchUrl.replace(/\/$/, '') } : {}),
      ...(opts.analyticsUrl ? { analyticsUrl: opts.analyticsUrl.replace(/\/$/, '') } : {}),
      ...(opts.notificationsUrl ? { notificationsUrl: opts.notificationsUrl.replace(/\/$/, '') } : {}),
    };
  };
}

export interface BoardServerOptions {
  pool: Pool;
  port: number;
  host?: string;
  logger: Logger;
  /** The session handed to a page: which demo user it acts as, where the pipeline is. */
  session(userId: string | undefined): Promise<BoardSession>;
  /** The services' /metrics the health page (/health) charts; none: it charts the board's own. */
  healthSources?: readonly MetricsSource[];
  /** How often the health page's figures are sampled (ms). */
  healthEveryMs?: number;
}

/** What the page reports of the changes it showed: commit → screen latency, as seen by browsers. */
function boardMetrics() {
  const registry = createRegistry('board', false);
  const commitToClient = new Histogram({
    name: HEALTH_METRICS.commitToClient,
    help: 'Commit time to the change on a board page, per change, as the pages report it',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
    registers: [registry],
  });
  return { registry, commitToClient };
}

/** A page reports at most this many latencies per request (it sends every couple of seconds). */
const MAX_LATENCIES_PER_REPORT = 1000;

async function bundleApp(): Promise<string> {
  const result = await build({
    entryPoints: [join(here, 'app.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    logLevel: 'silent',
  });
  const out = result.outputFiles[0];
  if (!out) throw new TaskflowError('BUNDLE_FAILED', 'esbuild produced no output for the board app');
  return out.text;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 64 * 1024) throw new BadRequest('body larger than 64 KB');
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new BadRequest('body is not valid JSON');
  }
}

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const payload = type === 'application/json' ? JSON.stringify(body) : String(body);
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' }).end(payload);
}

export async function startBoardServer(opts: BoardServerOptions): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const [html, healthHtml, analyticsHtml, appJs] = await Promise.all([
    readFile(join(here, 'index.html'), 'utf8'),
    readFile(join(here, 'health.html'), 'utf8'),
    readFile(join(here, 'analytics.html'), 'utf8'),
    bundleApp(),
  ]);
  const { pool, logger } = opts;
  const metrics = boardMetrics();
  const sampler = new HealthSampler(() => opts.healthSources ?? [], { everyMs: opts.healthEveryMs ?? 2000, windowMs: 30_000, keep: 300, local: () => metrics.registry.metrics() });
  sampler.start();

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://board');
    const parts = url.pathname.split('/').filter(Boolean);
    const method = req.method ?? 'GET';
    if (method === 'GET' && url.pathname === '/') return send(res, 200, html, 'text/html; charset=utf-8');
    if (method === 'GET' && url.pathname === '/app.js') return send(res, 200, appJs, 'text/javascript; charset=utf-8');
    if (method === 'GET' && url.pathname === '/healthz') return send(res, 200, { ok: true });
    if (method === 'GET' && url.pathname === '/health') return send(res, 200, healthHtml, 'text/html; charset=utf-8');
    if (method === 'GET' && url.pathname === '/analytics') return send(res, 200, analyticsHtml, 'text/html; charset=utf-8');
    if (method === 'GET' && url.pathname === '/api/health') return send(res, 200, sampler.snapshot());
    if (method === 'GET' && url.pathname === '/metrics') return send(res, 200, await metrics.registry.metrics(), metrics.registry.contentType);
    if (method === 'POST' && url.pathname === '/api/client-latency') {
      const body = (await readJson(req)) as { latenciesMs?: unknown };
      const list = body.latenciesMs;
      if (!Array.isArray(list) || list.length > MAX_LATENCIES_PER_REPORT || !list.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0)) {
        throw new BadRequest(`latenciesMs must be an array of at most ${MAX_LATENCIES_PER_REPORT} non-negative numbers`);
      }
      for (const ms of list as number[]) metrics.commitToClient.observe(ms / 1000);
      return send(res, 204, '', 'text/plain');
    }
    if (method === 'GET' && url.pathname === '/favicon.ico') return send(res, 204, '', 'image/x-icon');
    if (method === 'GET' && url.pathname === '/api/session') {
      return send(res, 200, await opts.session(url.searchParams.get('user') ?? undefined));
    }
    // /api/workspaces/{ws}/projects/{p}/board and /api/workspaces/{ws}/projects/{p}/tasks
    if (parts[0] === 'api' && parts[1] === 'workspaces' && parts[3] === 'projects' && parts.length === 6) {
      const ws = requireUuid(parts[2], 'workspace id');
      const project = requireUuid(parts[4], 'project id');
      if (method === 'GET' && parts[5] === 'board') return send(res, 200, await loadBoard(pool, ws, project));
      if (method === 'POST' && parts[5] === 'tasks') {
        const session = await opts.session(url.searchParams.get('user') ?? undefined);
        return send(res, 201, await createTask(pool, ws, project, session.userId, await readJson(req)));
      }
    }
    // /api/workspaces/{ws}/tasks/{id} and /api/workspaces/{ws}/tasks/{id}/comments
    if (parts[0] === 'api' && parts[1] === 'workspaces' && parts[3] === 'tasks' && parts.length >= 5) {
      const ws = requireUuid(parts[2], 'workspace id');
      const task = requireUuid(parts[4], 'task id');
      if (method === 'PATCH' && parts.length === 5) {
        const session = await opts.session(url.searchParams.get('user') ?? undefined);
        await updateTask(pool, ws, task, session.userId, await readJson(req));
        return send(res, 200, { ok: true });
      }
      if (method === 'POST' && parts[5] === 'comments' && parts.length === 6) {
        const session = await opts.session(url.searchParams.get('user') ?? undefined);
        return send(res, 201, await addComment(pool, ws, task, session.userId, await readJson(req)));
      }
    }
    send(res, 404, { error: 'not_found', message: `no route ${method} ${url.pathname}` });
  }

  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      if (err instanceof BadRequest) return send(res, 400, { error: 'bad_request', message: err.message });
      if (err instanceof NotFound) return send(res, 404, { error: 'not_found', message: err.message });
      logger.error({ err, url: req.url }, 'board request failed');
      send(res, 500, { error: 'internal', message: 'internal error' });
    });
  });
  await new Promise<void>((resolve) => server.listen(opts.port, opts.host ?? '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  return {
    server,
    url: `http://${opts.host ?? '127.0.0.1'}:${port}/`,
    close: () => {
      sampler.stop();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
