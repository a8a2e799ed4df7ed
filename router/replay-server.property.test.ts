// Fuzzing the replay API's parameters: any path, query and Authorization header gets a 2xx/4xx
// answer with a JSON body — never a 500 (which would also flood the error log) — and the store is
// only ever asked for ids the changelog can key (DynamoDB refuses partition keys over 2,048 bytes).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { request } from 'node:http';
import type { Server } from 'node:http';
import { TaskflowError } from '../lib/errors.js';
import { type ProjectRef } from './changelog.js';
import { MemoryChangelogStore } from './memory-changelog.js';
import { MAX_ID_LENGTH } from '../lib/http-api.js';
import { startReplayServer } from './replay-server.js';
import { PerUserLimiter } from '../lib/user-limits.js';

const asked: ProjectRef[] = [];
const store = new MemoryChangelogStore();
const read = store.read.bind(store);
store.read = (project, after, limit) => {
  asked.push(project);
  return read(project, after, limit);
};

let server: Server;
let port: number;

beforeAll(async () => {
  const started = await startReplayServer(
    {
      store,
      verify: async (token) => {
        if (token !== 'good') throw new TaskflowError('UNAUTHENTICATED', 'invalid token');
        return { userId: 'u1', expiresAt: 9e9 };
      },
      // Workspace-wide: every project id of ws1 passes authorization and reaches the store.
      memberships: async () => [{ workspaceId: 'ws1', projectId: null, role: 'member' }],
      maxLimit: 100,
    },
    0,
  );
  server = started.server;
  port = Number(new URL(started.url).port);
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

function get(path: string, authorization?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', headers: authorization === undefined ? {} : { authorization } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const segment = fc.oneof(
  fc.constantFrom('ws1', 'p1', '%E0%A4%A', '%', '%2F', '%00', '..', '+', '#', 'a%2Fb', '%ZZ'),
  fc.string({ maxLength: 20 }).map(encodeURIComponent),
  fc.integer({ min: MAX_ID_LENGTH - 2, max: 5000 }).map((n) => 'x'.repeat(n)),
);
const number = fc.oneof(fc.constantFrom('', '-1', '0', '1', '1e3', '1.5', 'NaN', 'Infinity', '0x10', '99999999999999999999', ' 7').map(encodeURIComponent), fc.string({ maxLength: 8 }).map(encodeURIComponent));

describe('replay API on hostile parameters', () => {
  it('answers every request with a JSON 2xx/4xx and asks the store only for well-formed ids', async () => {
    await fc.assert(
      fc.asyncProperty(segment, segment, fc.option(number), fc.option(number), fc.constantFrom('Bearer good', 'Bearer bad', 'good', '', 'Bearer '), async (ws, project, after, limit, auth) => {
        const query = [after === null ? '' : `after=${after}`, limit === null ? '' : `limit=${limit}`].filter(Boolean).join('&');
        const { status, body } = await get(`/v1/workspaces/${ws}/projects/${project}/changes${query ? `?${query}` : ''}`, auth);
        expect([200, 400, 401, 403, 404, 410, 414]).toContain(status);
        expect(() => JSON.parse(body)).not.toThrow();
      }),
      { numRuns: 300 },
    );
    for (const p of asked) {
      expect(p.workspaceId).toBe('ws1');
      expect(p.projectId.length).toBeLessThanOrEqual(MAX_ID_LENGTH);
      for (const c of ['/', '+', '#', '\0']) expect(p.projectId).not.toContain(c);
    }
  });

  it('says what is wrong with a malformed id', async () => {
    expect(await get('/v1/workspaces/ws1/projects/%E0%A4%A/changes', 'Bearer good')).toMatchObject({ status: 400, body: expect.stringContaining('project id') });
    expect(await get(`/v1/workspaces/ws1/projects/${'x'.repeat(MAX_ID_LENGTH + 1)}/changes`, 'Bearer good')).toMatchObject({ status: 400 });
    expect(await get('/v1/workspaces/ws1/projects/p1/changes', 'Bearer good')).toMatchObject({ status: 200 });
  });
});

describe('replay API limits per user', () => {
  it('answers 429 with retry-after to a user over its limit while another user is served', async () => {
    const limited = await startReplayServer(
      {
        store: new MemoryChangelogStore(),
        verify: async (token) => ({ userId: token, expiresAt: 9e9 }),
        memberships: async () => [{ workspaceId: 'ws1', projectId: null, role: 'member' }],
        maxLimit: 100,
        limiter: new PerUserLimiter({ ratePerSec: 1, burst: 5, maxConcurrent: 5, maxUsers: 100 }),
      },
      0,
    );
    try {
      const url = `${limited.url}/v1/workspaces/ws1/projects/p1/changes`;
      const flood = await Promise.all(Array.from({ length: 20 }, () => fetch(url, { headers: { authorization: 'Bearer abuser' } })));
      const statuses = flood.map((r) => r.status);
      expect(statuses.filter((s) => s === 200)).toHaveLength(5);
      expect(statuses.filter((s) => s === 429)).toHaveLength(15);
      expect(flood.find((r) => r.status === 429)?.headers.get('retry-after')).toBe('1');
      expect((await fetch(url, { headers: { authorization: 'Bearer polite' } })).status).toBe(200);
    } finally {
      await new Promise((resolve) => limited.server.close(resolve));
    }
  });
});
