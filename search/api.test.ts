import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Server } from 'node:http';
import { decodeEvent, type StreamEvent } from '@taskflow/stream/events';
import { createVerifier, loadJwtConfig, signDevToken } from '../lib/jwt.js';
import { PerUserLimiter } from '../lib/user-limits.js';
import { sampleEvent, type SampleOverrides } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import { startSearchServer } from './api.js';
import { indexBatchOf } from './indexer.js';
import { SqliteSearchIndex } from './sqlite-index.js';

const WS = '11111111-1111-4111-8111-0000000000d1';
const P1 = '22222222-2222-4222-8222-0000000000d1';
const P2 = '22222222-2222-4222-8222-0000000000d2';
const WIDE = '66666666-6666-4666-8666-0000000000d1';
const NARROW = '66666666-6666-4666-8666-0000000000d2';
const OUTSIDER = '66666666-6666-4666-8666-0000000000d3';
const env = { JWT_SECRET: 'search-api-test-secret-search-api-test' };
const jwt = loadJwtConfig(env);

function event(kind: Parameters<typeof sampleEvent>[0], o: SampleOverrides): StreamEvent {
  const d = decodeEvent(Buffer.from(JSON.stringify(sampleEvent(kind, o))), validateEvent);
  if (!d.ok) throw new Error(d.message);
  return d.event;
}

let server: Server;
let url: string;
const index = new SqliteSearchIndex(':memory:');

beforeAll(async () => {
  await index.apply(
    indexBatchOf([
      event('membership.created', { workspaceId: WS, projectId: null, userId: WIDE, entityId: '55555555-5555-4555-8555-0000000000d1', commitLsn: 0x10n }),
      event('membership.created', { workspaceId: WS, projectId: P1, userId: NARROW, entityId: '55555555-5555-4555-8555-0000000000d2', commitLsn: 0x20n }),
      event('task.created', { workspaceId: WS, projectId: P1, entityId: '33333333-3333-4333-8333-0000000000d1', commitLsn: 0x30n, row: { title: 'Roadmap in P1', description: null } }),
      event('task.created', { workspaceId: WS, projectId: P2, entityId: '33333333-3333-4333-8333-0000000000d2', commitLsn: 0x40n, row: { title: 'Roadmap in P2', description: null } }),
      event('comment.created', { workspaceId: WS, projectId: P2, entityId: '44444444-4444-4444-8444-0000000000d1', commitLsn: 0x50n, row: { body: 'roadmap looks fine' } }),
      event('task.created', { workspaceId: WS, projectId: P1, entityId: '33333333-3333-4333-8333-0000000000d3', commitLsn: 0x60n, row: { title: 'Release notes', description: null, labels: ['docs', 'release'], due_at: '2026-12-04T17:00:00+00:00' } }),
      // A v1 event: its due_date is the day at 00:00 UTC, its labels [].
      event('task.created', { workspaceId: WS, projectId: P1, entityId: '33333333-3333-4333-8333-0000000000d4', commitLsn: 0x70n, schemaVersion: 1, row: { title: 'Release party', description: null, due_date: '2026-12-05' } as never }),
    ]),
  );
  ({ server, url } = await startSearchServer({ index, verify: createVerifier(jwt), maxResults: 20 }, 0));
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await index.close();
});

async function get(path: string, userId?: string, token?: string): Promise<{ status: number; body: { hits?: { title: string; projectId: string; type: string }[]; error?: string } }> {
  const auth = token ?? (userId ? await signDevToken(jwt.kind === 'hs256' ? jwt.secret : new Uint8Array(), userId) : undefined);
  const res = await fetch(`${url}${path}`, auth ? { headers: { authorization: `Bearer ${auth}` } } : {});
  return { status: res.status, body: (await res.json()) as never };
}

describe('GET /v1/workspaces/{ws}/search', () => {
  it('finds what the memberships allow: a workspace member everything, a project member that project', async () => {
    const wide = await get(`/v1/workspaces/${WS}/search?q=roadmap`, WIDE);
    expect(wide.status).toBe(200);
    expect(wide.body.hits?.map((h) => h.projectId).sort()).toEqual([P1, P2, P2]);
    const narrow = await get(`/v1/workspaces/${WS}/search?q=roadmap`, NARROW);
    expect(narrow.body.hits?.map((h) => [h.type, h.title])).toEqual([['task', 'Roadmap in P1']]);
  });

  it('401 without a valid token, 403 without a membership in the workspace', async () => {
    expect((await get(`/v1/workspaces/${WS}/search?q=roadmap`)).status).toBe(401);
    expect((await get(`/v1/workspaces/${WS}/search?q=roadmap`, undefined, 'not-a-jwt')).status).toBe(401);
    const forged = await signDevToken(new TextEncoder().encode('another-secret-another-secret-another'), WIDE);
    expect((await get(`/v1/workspaces/${WS}/search?q=roadmap`, undefined, forged)).status).toBe(401);
    expect((await get(`/v1/workspaces/${WS}/search?q=roadmap`, OUTSIDER)).status).toBe(403);
    expect((await get(`/v1/workspaces/another/search?q=roadmap`, WIDE)).status).toBe(403);
  });

  it('filters tasks by label and due_at, with or without words, v1 events upcast', async () => {
    const titles = async (query: string) => (await get(`/v1/workspaces/${WS}/search?${query}`, WIDE)).body.hits?.map((h) => h.title);
    expect(await titles('q=release&label=docs')).toEqual(['Release notes']);
    expect(await titles('label=release&label=docs')).toEqual(['Release notes']);
    expect(await titles('label=Docs')).toEqual([]);
    expect(await titles('q=release&due_after=2026-12-05')).toEqual(['Release party']);
    expect(await titles('due_after=2026-12-04T17:00:00Z&due_before=2026-12-05T00:00:00Z')).toEqual(['Release notes']);
    expect((await titles('q=roadmap&due_before=2026-12-02'))?.sort()).toEqual(['Roadmap in P1', 'Roadmap in P2']);
    expect(await titles('q=roadmap&due_after=2026-12-02')).toEqual([]);
    const hit = (await get(`/v1/workspaces/${WS}/search?q=party`, WIDE)).body.hits?.[0] as unknown;
    expect(hit).toMatchObject({ labels: [], dueAt: '2026-12-05T00:00:00.000Z' });
    for (const bad of ['due_after=tomorrow', 'due_before=2026-12-05T10:00', 'label=', `label=${'x'.repeat(101)}`, Array.from({ length: 9 }, (_, i) => `label=l${i}`).join('&')]) {
      expect((await get(`/v1/workspaces/${WS}/search?${bad}`, WIDE)).status).toBe(400);
    }
  });

  it('bounds q and limit', async () => {
    expect((await get(`/v1/workspaces/${WS}/search`, WIDE)).status).toBe(400);
    expect((await get(`/v1/workspaces/${WS}/search?q=${'a'.repeat(201)}`, WIDE)).status).toBe(400);
    expect((await get(`/v1/workspaces/${WS}/search?q=roadmap&limit=21`, WIDE)).status).toBe(400);
    expect((await get(`/v1/workspaces/${WS}/search?q=roadmap&limit=0`, WIDE)).status).toBe(400);
    expect((await get(`/v1/workspaces/${WS}/search?q=roadmap&limit=1`, WIDE)).body.hits).toHaveLength(1);
  });

  it('answers a malformed workspace id with a 400, not a 500', async () => {
    expect(await get(`/v1/workspaces/%E0%A4%A/search?q=roadmap`, WIDE)).toMatchObject({ status: 400, body: { error: 'bad_request' } });
  });
});

describe('search API limits per user (the replay API\'s)', () => {
  it('answers 429 with retry-after to a user over its limit while another user is served', async () => {
    const limited = await startSearchServer({ index, verify: createVerifier(jwt), maxResults: 20, limiter: new PerUserLimiter({ ratePerSec: 0.001, burst: 5, maxConcurrent: 100, maxUsers: 100 }) }, 0);
    try {
      const path = `${limited.url}/v1/workspaces/${WS}/search?q=roadmap`;
      const secret = jwt.kind === 'hs256' ? jwt.secret : new Uint8Array();
      const abuser = { authorization: `Bearer ${await signDevToken(secret, WIDE)}` };
      const flood = await Promise.all(Array.from({ length: 20 }, () => fetch(path, { headers: abuser })));
      const statuses = flood.map((r) => r.status);
      expect(statuses.filter((s) => s === 200)).toHaveLength(5);
      expect(statuses.filter((s) => s === 429)).toHaveLength(15);
      expect(Number(flood.find((r) => r.status === 429)?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect((await fetch(path, { headers: { authorization: `Bearer ${await signDevToken(secret, NARROW)}` } })).status).toBe(200);
    } finally {
      limited.server.closeAllConnections();
      await new Promise((resolve) => limited.server.close(resolve));
    }
  });
});
