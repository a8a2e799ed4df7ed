// One HTTP frame for the browser-facing JSON APIs (replay, search, notifications), so each checks
// the same things in the same order and a route says only what is its own:
//   CORS preamble and OPTIONS → /healthz → bounded URL and query (414) → route (404) → path ids
//   and query parsed (400, before any token work) → bearer token (401) → per-user rate,
//   concurrency and served limits (429 + Retry-After) → bounded body, refused while streaming
//   (413) → the user's memberships → the route's grant (403) → the route's answer, whose `served`
//   is charged to the user's budget. At most `maxInFlight` requests are worked on at once; the
//   others wait in arrival order, and one whose client went away meanwhile (its timeout) is
//   dropped unanswered (outcome `abandoned`) instead of costing the store a read nobody awaits.
// Anything thrown is a 500 with a generic body and one error-log line.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Membership } from './authz.js';
import type { TokenVerifier } from './jwt.js';
import type { Logger } from './logger.js';
import type { PerUserLimiter } from './user-limits.js';

export interface ApiAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  /** What the answer served (the replay API: changes returned), charged to the user's served budget; not sent. */
  served?: number;
}

/** What a route's parse step says about a request it refuses (always a 400). */
export interface BadRequest {
  badRequest: string;
}

export interface ApiRequest<P, G> {
  userId: string;
  params: P;
  /** What `authorize` granted. */
  grant: G;
  /** The parsed JSON body, for routes that take one (`body: true`); otherwise undefined. */
  body: unknown;
}

export interface ApiRoute<P, G> {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Matched against the path; its groups are the route's ids, %-decoded and checked by `idParam`. */
  path: RegExp;
  /** Names of the groups, for the 400 message ("workspace id must be …"). */
  ids: readonly string[];
  /** Whether the route reads a JSON body (bounded by `maxBodyBytes`); others refuse one. */
  body?: boolean;
  parse(ids: string[], query: URLSearchParams): P | BadRequest;
  /** The grant for this user, or undefined for a 403. */
  authorize(userId: string, memberships: readonly Membership[], params: P): G | undefined;
  handle(req: ApiRequest<P, G>): Promise<ApiAnswer>;
}

export const API_OUTCOMES = ['ok', 'bad_request', 'unauthenticated', 'forbidden', 'not_found', 'gone', 'too_large', 'too_many_requests', 'abandoned', 'error'] as const;
export type ApiOutcome = (typeof API_OUTCOMES)[number];

export interface ApiLimits {
  /** Longest path plus query accepted (414 beyond). */
  maxUrlBytes: number;
  /** Largest request body accepted (413 beyond, without buffering the rest). */
  maxBodyBytes: number;
  /**
   * Requests worked on at once; the others wait in order. Without a bound, a burst beyond what the
   * store serves within the clients' timeout is answered too late for every one of them, and
   * their retries pile onto reads nobody awaits any more.
   */
  maxInFlight: number;
}

export const DEFAULT_API_LIMITS: ApiLimits = { maxUrlBytes: 4096, maxBodyBytes: 64 * 1024, maxInFlight: Number.POSITIVE_INFINITY };

export interface ApiDeps {
  /** Names the API in log lines and 429 messages ("replay", "search"). */
  name: string;
  verify: TokenVerifier;
  memberships(userId: string): Promise<Membership[]>;
  /** Per-user rate and concurrency limits; without one, none. */
  limiter?: PerUserLimiter;
  limits?: Partial<ApiLimits>;
  /** Called once per answered request with its outcome and duration. */
  observe?(outcome: ApiOutcome, seconds: number): void;
  logger?: Logger;
}

/** Ids are UUIDs; anything longer, or carrying topic wildcards, separators or NUL, is not an id. */
export const MAX_ID_LENGTH = 64;
const FORBIDDEN_IN_ID = ['/', '+', '#', '\0'];

/** The decoded id, or undefined when it is not one (malformed %-escape, too long, bad characters). */
export function idParam(raw: string | undefined): string | undefined {
  let id: string;
  try {
    id = decodeURIComponent(raw ?? '');
  } catch {
    return undefined;
  }
  return id !== '' && id.length <= MAX_ID_LENGTH && !FORBIDDEN_IN_ID.some((c) => id.includes(c)) ? id : undefined;
}

export function isBadRequest(v: unknown): v is BadRequest {
  return typeof v === 'object' && v !== null && typeof (v as BadRequest).badRequest === 'string';
}

export function outcomeOf(status: number): ApiOutcome {
  if (status < 400) return 'ok';
  const named: Record<number, ApiOutcome> = { 400: 'bad_request', 401: 'unauthenticated', 403: 'forbidden', 404: 'not_found', 410: 'gone', 413: 'too_large', 414: 'too_large', 429: 'too_many_requests' };
  return named[status] ?? 'error';
}

/** Reads a body of at most `max` bytes; undefined (a 413) on a longer declared length or as soon as more arrives. */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  if (Number(req.headers['content-length'] ?? 0) > max) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size <= max) return void chunks.push(c);
      // Keep reading but drop it: the 413 goes out now and the connection closes after it.
      req.off('data', onData);
      req.resume();
      resolve(undefined);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function tooLarge(message: string): ApiAnswer {
  // The rest of the body is not read: close the connection rather than drain it.
  return { status: 413, body: { error: 'too_large', message }, headers: { connection: 'close' } };
}

function hasBody(req: IncomingMessage): boolean {
  return Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a list of routes of any params and grant types
export type AnyRoute = ApiRoute<any, any>;

export function createApiHandler(deps: ApiDeps, routes: readonly AnyRoute[]): (req: IncomingMessage, res: ServerResponse) => void {
  const limits = { ...DEFAULT_API_LIMITS, ...deps.limits };

  async function answer(req: IncomingMessage): Promise<ApiAnswer> {
    if ((req.url ?? '/').length > limits.maxUrlBytes) return { status: 414, body: { error: 'too_large', message: `the path and query must be at most ${limits.maxUrlBytes} bytes` } };
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/healthz') return { status: 200, body: { ok: true } };
    let route: AnyRoute | undefined;
    let groups: string[] = [];
    for (const r of routes) {
      const m = r.method === req.method ? r.path.exec(url.pathname) : null;
      if (m) [route, groups] = [r, m.slice(1)];
    }
    if (!route) return { status: 404, body: { error: 'not_found' } };
    const ids: string[] = [];
    for (const [i, raw] of groups.entries()) {
      const id = idParam(raw);
      if (id === undefined) return { status: 400, body: { error: 'bad_request', message: `${route.ids[i] ?? 'id'} id must be at most ${MAX_ID_LENGTH} characters, without / + # or NUL` } };
      ids.push(id);
    }
    const params: unknown = route.parse(ids, url.searchParams);
    if (isBadRequest(params)) return { status: 400, body: { error: 'bad_request', message: params.badRequest } };
    if (!route.body && hasBody(req)) return tooLarge('this request takes no body');

    const auth = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '');
    if (!auth?.[1]) return { status: 401, body: { error: 'unauthenticated' } };
    let userId: string;
    try {
      userId = (await deps.verify(auth[1])).userId;
    } catch {
      return { status: 401, body: { error: 'unauthenticated' } };
    }
    const admission = deps.limiter?.admit(userId) ?? { ok: true as const, release: () => undefined };
    if (!admission.ok) {
      const what = { rate: `too many ${deps.name} requests for this user`, concurrency: `too many ${deps.name} requests in flight for this user`, served: `this user's ${deps.name} answers went beyond its budget` }[admission.reason];
      return { status: 429, body: { error: 'too_many_requests', message: what }, headers: { 'retry-after': String(Math.max(1, Math.ceil(admission.retryAfterMs / 1000))) } };
    }
    let served = 0;
    try {
      let body: unknown;
      if (route.body) {
        const bytes = await readBody(req, limits.maxBodyBytes);
        if (!bytes) return tooLarge(`the request body must be at most ${limits.maxBodyBytes} bytes`);
        try {
          body = bytes.length === 0 ? undefined : JSON.parse(bytes.toString('utf8'));
        } catch {
          return { status: 400, body: { error: 'bad_request', message: 'the body must be JSON' } };
        }
      }
      const grant: unknown = route.authorize(userId, await deps.memberships(userId), params);
      if (grant === undefined) return { status: 403, body: { error: 'forbidden' } };
      const answered = await route.handle({ userId, params, grant, body });
      served = answered.served ?? 0;
      return answered;
    } finally {
      admission.release(served);
    }
  }

  function send(res: ServerResponse, a: ApiAnswer, started: number): void {
    res.writeHead(a.status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...a.headers });
    res.end(JSON.stringify(a.body));
    deps.observe?.(outcomeOf(a.status), (performance.now() - started) / 1000);
  }

  let inFlight = 0;
  const waiting: (() => void)[] = [];
  /** Waits for a slot; false if the client went away meanwhile (the slot is then not taken). */
  async function admit(req: IncomingMessage): Promise<boolean> {
    if (inFlight < limits.maxInFlight) {
      inFlight += 1;
      return true;
    }
    await new Promise<void>((resolve) => waiting.push(resolve));
    if (!req.socket.destroyed) return true;
    release();
    return false;
  }
  function release(): void {
    const next = waiting.shift();
    // The slot passes to the next waiter as it is.
    if (next) next();
    else inFlight -= 1;
  }

  return (req, res) => {
    const started = performance.now();
    // Browsers call these APIs from the app's origin with an Authorization header (no cookies).
    res.setHeader('access-control-allow-origin', '*');
    res.setHeader('access-control-allow-headers', 'authorization, content-type');
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end();
      return;
    }
    void admit(req).then((admitted) => {
      if (!admitted) {
        deps.observe?.('abandoned', (performance.now() - started) / 1000);
        return;
      }
      answer(req)
        .then(
          (a) => send(res, a, started),
          (err: unknown) => {
            deps.logger?.error({ err }, `${deps.name} request failed`);
            if (!res.headersSent) send(res, { status: 500, body: { error: 'internal' } }, started);
            else res.end();
          },
        )
        .finally(release);
    });
  };
}

/** Bounds on a slow client: headers within 10 s, the whole request within 30 s (Node's defaults are 60 s and 300 s). */
export const API_TIMEOUTS = { headersTimeout: 10_000, requestTimeout: 30_000 };

export async function startApiServer(handler: (req: IncomingMessage, res: ServerResponse) => void, port: number, host = '127.0.0.1'): Promise<{ server: Server; url: string }> {
  const server = createServer(API_TIMEOUTS, handler);
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const addr = server.address();
  return { server, url: `http://${host}:${typeof addr === 'object' && addr ? addr.port : port}` };
}
