import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { request, type Server } from 'node:http';
import type { Membership } from './authz.js';
import { TaskflowError } from './errors.js';
import { type ApiRoute, createApiHandler, type ApiOutcome, startApiServer } from './http-api.js';
import { PerUserLimiter } from './user-limits.js';

// A toy API on the frame: GET /v1/workspaces/{ws}/echo?n=… and POST /v1/workspaces/{ws}/notes.
const members: Record<string, Membership[]> = { alice: [{ workspaceId: 'ws1', projectId: null, role: 'member' }], dave: [{ workspaceId: 'ws1', projectId: null, role: 'member' }] };
const echo: ApiRoute<{ ws: string; n: number }, true> = {
  method: 'GET',
  path: /^\/v1\/workspaces\/([^/]+)\/echo$/,
  ids: ['workspace'],
  parse: ([ws = ''], q) => {
    const n = Number(q.get('n') ?? '1');
    return Number.isInteger(n) ? { ws, n } : { badRequest: 'n must be an integer' };
  },
  authorize: (_u, ms, p) => (ms.some((m) => m.workspaceId === p.ws) ? true : undefined),
  handle: async ({ userId, params }) => {
    if (params.n === 500) throw new Error('boom');
    // Serves n units (as a replay serves changes), charged to the user's served budget.
    return { status: 200, body: { userId, n: params.n }, served: Math.max(0, params.n) };
  },
};
const notes: ApiRoute<{ ws: string }, true> = {
  method: 'POST',
  path: /^\/v1\/workspaces\/([^/]+)\/notes$/,
  ids: ['workspace'],
  body: true,
  parse: ([ws = '']) => ({ ws }),
  authorize: (_u, ms, p) => (ms.some((m) => m.workspaceId === p.ws) ? true : undefined),
  handle: async ({ body }) => ({ status: 201, body: { got: body } }),
};

const outcomes: ApiOutcome[] = [];
let server: Server;
let port: number;

beforeAll(async () => {
  const handler = createApiHandler(
    {
      name: 'toy',
      verify: async (token) => {
        if (!['alice', 'bob', 'carol', 'dave'].includes(token)) throw new TaskflowError('UNAUTHENTICATED', 'invalid token');
        return { userId: token, expiresAt: 9e9 };
      },
      memberships: async (u) => members[u] ?? [],
      // carol is the abuser in the limit test, dave in the served one; alice and bob have room to spare.
      limiter: new PerUserLimiter({ ratePerSec: 0.001, burst: 50, maxConcurrent: 100, maxUsers: 10, served: { perSec: 0.001, burst: 1000 } }),
      limits: { maxUrlBytes: 256, maxBodyBytes: 1024 },
      observe: (o) => outcomes.push(o),
    },
    [echo, notes],
  );
  ({ server } = await startApiServer(handler, 0));
  const addr = server.address();
  port = typeof addr === 'object' && addr ? addr.port : 0;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request; `chunks` are written as they come (chunked encoding) and `end` says whether to finish the body. */
function call(method: string, path: string, opts: { token?: string; body?: string; chunks?: string[]; end?: boolean } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
    if (opts.chunks) headers['transfer-encoding'] = 'chunked';
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    for (const c of opts.chunks ?? []) req.write(c);
    if (opts.end !== false) req.end();
  });
}

describe('lib/http-api frame', () => {
  it('answers the CORS preflight and sets CORS on every answer', async () => {
    const pre = await call('OPTIONS', '/v1/workspaces/ws1/echo');
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-headers']).toContain('authorization');
    const ok = await call('GET', '/v1/workspaces/ws1/echo', { token: 'alice' });
    expect(ok.status).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe('*');
    expect(JSON.parse(ok.body)).toEqual({ userId: 'alice', n: 1 });
  });

  it('checks in order: route 404, ids and query 400 (before any token work), token 401, membership 403', async () => {
    expect((await call('GET', '/nowhere', { token: 'alice' })).status).toBe(404);
    expect((await call('DELETE', '/v1/workspaces/ws1/echo', { token: 'alice' })).status).toBe(404);
    expect(await call('GET', '/v1/workspaces/%E0%A4%A/echo')).toMatchObject({ status: 400, body: expect.stringContaining('workspace id') });
    expect(await call('GET', '/v1/workspaces/ws1/echo?n=1.5')).toMatchObject({ status: 400, body: expect.stringContaining('n must be') });
    expect((await call('GET', '/v1/workspaces/ws1/echo')).status).toBe(401);
    expect((await call('GET', '/v1/workspaces/ws1/echo', { token: 'mallory' })).status).toBe(401);
    expect((await call('GET', '/v1/workspaces/ws2/echo', { token: 'alice' })).status).toBe(403);
    expect((await call('GET', '/v1/workspaces/ws1/echo', { token: 'bob' })).status).toBe(403);
  });

  it('bounds the path and query (414) and refuses a body where the route takes none (413)', async () => {
    expect((await call('GET', `/v1/workspaces/ws1/echo?n=1&pad=${'x'.repeat(300)}`, { token: 'alice' })).status).toBe(414);
    expect((await call('GET', '/v1/workspaces/ws1/echo', { token: 'alice', body: 'hello' })).status).toBe(413);
  });

  it('reads a JSON body up to the bound, and refuses a longer one while it is still streaming', async () => {
    expect(await call('POST', '/v1/workspaces/ws1/notes', { token: 'alice', body: JSON.stringify({ text: 'hi' }) })).toMatchObject({ status: 201, body: '{"got":{"text":"hi"}}' });
    expect((await call('POST', '/v1/workspaces/ws1/notes', { token: 'alice', body: '{not json' })).status).toBe(400);
    // Declared too long: refused from the header.
    expect((await call('POST', '/v1/workspaces/ws1/notes', { token: 'alice', body: 'x'.repeat(2000) })).status).toBe(413);
    // Chunked, never finished: the answer comes while the client is still sending, and the
    // connection is closed rather than drained.
    const streaming = await call('POST', '/v1/workspaces/ws1/notes', { token: 'alice', chunks: ['x'.repeat(800), 'x'.repeat(800)], end: false });
    expect(streaming.status).toBe(413);
    expect(streaming.headers.connection).toBe('close');
  });

  it('answers 429 with Retry-After to one user over its limits while another is served', async () => {
    const flood = await Promise.all(Array.from({ length: 60 }, () => call('GET', '/v1/workspaces/ws1/echo', { token: 'carol' })));
    const refused = flood.filter((r) => r.status === 429);
    expect(flood.filter((r) => r.status === 403)).toHaveLength(50); // carol has no membership: the limit comes first
    expect(refused).toHaveLength(10);
    expect(Number(refused[0]?.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((await call('GET', '/v1/workspaces/ws1/echo', { token: 'alice' })).status).toBe(200);
  });

  it("charges what an answer served: a user whose answers went beyond its budget gets 429 until the debt is paid", async () => {
    expect((await call('GET', '/v1/workspaces/ws1/echo?n=600', { token: 'dave' })).status).toBe(200);
    expect((await call('GET', '/v1/workspaces/ws1/echo?n=600', { token: 'dave' })).status).toBe(200); // not in debt when admitted
    const refused = await call('GET', '/v1/workspaces/ws1/echo?n=1', { token: 'dave' });
    expect(refused).toMatchObject({ status: 429 });
    expect(refused.body).toContain('went beyond its budget');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1000);
    expect((await call('GET', '/v1/workspaces/ws1/echo?n=600', { token: 'alice' })).status).toBe(200);
  });

  it('answers a thrown error with a bare 500 and counts every outcome', async () => {
    outcomes.length = 0;
    expect(await call('GET', '/v1/workspaces/ws1/echo?n=500', { token: 'alice' })).toMatchObject({ status: 500, body: '{"error":"internal"}' });
    await call('GET', '/nowhere');
    expect(outcomes).toEqual(['error', 'not_found']);
  });
});

describe('lib/http-api maxInFlight', () => {
  it('works on at most maxInFlight requests at once, in arrival order, and drops unread one whose client left while it waited', async () => {
    const release: (() => void)[] = [];
    const handled: number[] = [];
    let inHandler = 0;
    let peak = 0;
    const seen: ApiOutcome[] = [];
    const slow: ApiRoute<{ n: number }, true> = {
      method: 'GET',
      path: /^\/slow$/,
      ids: [],
      parse: (_ids, q) => ({ n: Number(q.get('n')) }),
      authorize: () => true,
      handle: async ({ params }) => {
        handled.push(params.n);
        peak = Math.max(peak, (inHandler += 1));
        await new Promise<void>((resolve) => release.push(resolve));
        inHandler -= 1;
        return { status: 200, body: { n: params.n } };
      },
    };
    const handler = createApiHandler({ name: 'slow', verify: async (t) => ({ userId: t, expiresAt: 9e9 }), memberships: async () => [], limits: { maxInFlight: 2 }, observe: (o) => seen.push(o) }, [slow]);
    const { server: s } = await startApiServer(handler, 0);
    const sockets: import('node:net').Socket[] = [];
    s.on('connection', (socket) => sockets.push(socket));
    const p = (s.address() as { port: number }).port;
    const get = (n: number, signal?: AbortSignal) => fetch(`http://127.0.0.1:${p}/slow?n=${n}`, { headers: { authorization: 'Bearer u' }, ...(signal ? { signal } : {}) });
    try {
      const first = [get(1), get(2)];
      await waitUntil(() => handled.length === 2);
      const gone = new AbortController();
      const abandoned = get(3, gone.signal).catch(() => 'aborted');
      const last = get(4);
      await waitUntil(() => sockets.length === 4); // 3 and 4 wait behind 1 and 2
      gone.abort();
      expect(await abandoned).toBe('aborted');
      await waitUntil(() => sockets.some((socket) => socket.destroyed)); // the server saw 3's client leave
      release.shift()!(); // 1 done: 3 is dropped, 4 gets the slot
      await waitUntil(() => handled.length === 3);
      for (const r of release.splice(0)) r();
      expect((await Promise.all([...first, last])).map((r) => r.status)).toEqual([200, 200, 200]);
      expect(handled).toEqual([1, 2, 4]);
      expect(peak).toBe(2);
      expect(seen.filter((o) => o === 'abandoned')).toHaveLength(1);
    } finally {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });
});

async function waitUntil(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !ok(); i += 1) await new Promise((r) => setTimeout(r, 10));
  if (!ok()) throw new Error('timed out');
}
