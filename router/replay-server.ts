// The replay API over HTTP (schemas/CONTRACTS.md "Replay API"):
//   GET /v1/workspaces/{ws}/projects/{project}/changes?after={seq}&limit={n}
// Bearer TaskFlow JWT; the same grant rule as the broker (lib/authz.ts canReadProject).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { canReadProject, type Membership } from '../lib/authz.js';
import type { TokenVerifier } from '../lib/jwt.js';
import type { Logger } from '../lib/logger.js';
import type { ChangelogStore } from './changelog.js';
import { replayAnswer } from './replay.js';
import type { PerUserLimiter } from './user-limits.js';

export interface ReplayDeps {
  store: ChangelogStore;
  verify: TokenVerifier;
  memberships: (userId: string) => Promise<Membership[]>;
  maxLimit: number;
  /** Per-user rate and concurrency limits (429 beyond them). */
  limiter?: PerUserLimiter;
  logger?: Logger;
}

const ROUTE = /^\/v1\/workspaces\/([^/]+)\/projects\/([^/]+)\/changes$/;
/** Ids are UUIDs; anything longer, or carrying topic wildcards, separators or NUL, is not an id. */
export const MAX_ID_LENGTH = 64;
const FORBIDDEN_IN_ID = ['/', '+', '#', '\0'];

/** The decoded id, or undefined when it is not one (malformed %-escape, too long, bad characters). */
function idParam(raw: string | undefined): string | undefined {
  let id: string;
  try {
    id = decodeURIComponent(raw ?? '');
  } catch {
    return undefined;
  }
  return id !== '' && id.length <= MAX_ID_LENGTH && !FORBIDDEN_IN_ID.some((c) => id.includes(c)) ? id : undefined;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

export function createReplayHandler(deps: ReplayDeps): (req: IncomingMessage, res: ServerResponse) => void {
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Browsers call this from the app's origin with an Authorization header.
    res.setHeader('access-control-allow-origin', '*');
    res.setHeader('access-control-allow-headers', 'authorization');
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/healthz') return send(res, 200, { ok: true });
    const m = ROUTE.exec(url.pathname);
    if (req.method !== 'GET' || !m) return send(res, 404, { error: 'not_found' });
    const workspaceId = idParam(m[1]);
    const projectId = idParam(m[2]);
    if (workspaceId === undefined || projectId === undefined) {
      return send(res, 400, { error: 'bad_request', message: `${workspaceId === undefined ? 'workspace' : 'project'} id must be at most ${MAX_ID_LENGTH} characters, without / + # or NUL` });
    }
    const after = Number(url.searchParams.get('after') ?? '0');
    const limit = Math.min(deps.maxLimit, Number(url.searchParams.get('limit') ?? String(deps.maxLimit)));
    if (!Number.isInteger(after) || after < 0 || !Number.isInteger(limit) || limit < 1) {
      return send(res, 400, { error: 'bad_request', message: 'after must be an integer ≥ 0 and limit an integer ≥ 1' });
    }
    const auth = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '');
    if (!auth?.[1]) return send(res, 401, { error: 'unauthenticated' });
    let userId: string;
    try {
      userId = (await deps.verify(auth[1])).userId;
    } catch {
      return send(res, 401, { error: 'unauthenticated' });
    }
    const admission = deps.limiter?.admit(userId) ?? { ok: true as const, release: () => undefined };
    if (!admission.ok) {
      res.setHeader('retry-after', String(Math.max(1, Math.ceil(admission.retryAfterMs / 1000))));
      return send(res, 429, { error: 'too_many_requests', message: admission.reason === 'rate' ? 'too many replay requests for this user' : 'too many replay requests in flight for this user' });
    }
    try {
      if (!canReadProject(userId, await deps.memberships(userId), workspaceId, projectId)) return send(res, 403, { error: 'forbidden' });
      const answer = replayAnswer(await deps.store.read({ workspaceId, projectId }, after, limit), after);
      send(res, answer.status, answer.body);
    } finally {
      admission.release();
    }
  }
  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      deps.logger?.error({ err }, 'replay request failed');
      if (!res.headersSent) send(res, 500, { error: 'internal' });
      else res.end();
    });
  };
}

export async function startReplayServer(deps: ReplayDeps, port: number, host = '127.0.0.1'): Promise<{ server: Server; url: string }> {
  const server = createServer(createReplayHandler(deps));
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const addr = server.address();
  return { server, url: `http://${host}:${typeof addr === 'object' && addr ? addr.port : port}` };
}
