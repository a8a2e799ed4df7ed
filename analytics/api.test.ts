// The analytics API on a real DuckDB warehouse: changes per minute per project, only of the
// projects the token's user may read (memberships from the warehouse), and the freshness.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import { gzipSync } from 'node:zlib';
import { createVerifier, signDevToken } from '../lib/jwt.js';
import { sampleEvent } from '../schemas/fixtures.js';
import { createAnalyticsHandler } from './api.js';
import { DuckDbWarehouse, loadObject } from './warehouse/duckdb.js';

const WS = '11111111-1111-4111-8111-111111111111';
const P1 = '22222222-2222-4222-8222-222222222201';
const P2 = '22222222-2222-4222-8222-222222222202';
const ALICE = '66666666-6666-4666-8666-0000000000a1';
const BOB = '66666666-6666-4666-8666-0000000000b0';
const NOW = Date.parse('2026-12-02T12:00:30Z');
const secret = new TextEncoder().encode('x'.repeat(32));
const at = (s: number) => new Date(NOW - s * 1000).toISOString().replace('Z', '000Z'); // microseconds, as capture writes

let warehouse: DuckDbWarehouse;
let server: Server;
let url: string;
beforeAll(async () => {
  warehouse = await DuckDbWarehouse.open(':memory:');
  const events = [
    sampleEvent('membership.created', { workspaceId: WS, projectId: P1, userId: ALICE, entityId: '77777777-7777-4777-8777-000000000001', commitLsn: 0x100n, time: at(1200) }), // outside the 10 min window
    // Two changes in P1 in the minute 12:00, one at 11:59; one in P2 (not Alice's).
    sampleEvent('task.created', { workspaceId: WS, projectId: P1, entityId: '33333333-3333-4333-8333-000000000001', commitLsn: 0x200n, time: at(20) }),
    sampleEvent('task.created', { workspaceId: WS, projectId: P1, entityId: '33333333-3333-4333-8333-000000000002', commitLsn: 0x300n, time: at(10) }),
    sampleEvent('task.created', { workspaceId: WS, projectId: P1, entityId: '33333333-3333-4333-8333-000000000003', commitLsn: 0x280n, time: at(60) }),
    sampleEvent('task.created', { workspaceId: WS, projectId: P2, entityId: '33333333-3333-4333-8333-000000000004', commitLsn: 0x400n, time: at(5) }),
  ];
  await loadObject(warehouse, 'raw/a', gzipSync(events.map((e) => `${JSON.stringify(e)}\n`).join('')));
  const handler = createAnalyticsHandler({ warehouse, verify: createVerifier({ kind: 'hs256', secret, issuer: 'taskflow', audience: 'taskflow' }), now: () => NOW });
  server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await warehouse.close();
});

const get = async (path: string, user?: string) => {
  const token = user ? await signDevToken(secret, user, { issuer: 'taskflow', audience: 'taskflow' }) : undefined;
  const res = await fetch(`${url}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe('analytics API', () => {
  it('counts changes per minute per project, only the projects the user reads', async () => {
    const { status, body } = await get(`/v1/workspaces/${WS}/analytics/changes-per-minute?minutes=10`, ALICE);
    expect(status).toBe(200);
    expect(body.series).toEqual([
      { projectId: P1, minute: '2026-12-02T11:59:00.000Z', changes: 1 },
      { projectId: P1, minute: '2026-12-02T12:00:00.000Z', changes: 2 },
    ]);
  });

  it('gives the freshness of what the user reads', async () => {
    const { status, body } = await get(`/v1/workspaces/${WS}/analytics/freshness`, ALICE);
    expect(status).toBe(200);
    expect(body).toMatchObject({ newestCommit: '2026-12-02T12:00:20.000Z', freshnessSeconds: 10 });
  });

  it('refuses without a token (401), without a membership (403), a bad window (400)', async () => {
    expect((await get(`/v1/workspaces/${WS}/analytics/freshness`)).status).toBe(401);
    expect((await get(`/v1/workspaces/${WS}/analytics/freshness`, BOB)).status).toBe(403);
    expect((await get(`/v1/workspaces/${WS}/analytics/changes-per-minute?minutes=0`, ALICE)).status).toBe(400);
  });
});
