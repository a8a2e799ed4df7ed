import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Server } from 'node:http';
import { PerUserLimiter } from '../lib/user-limits.js';
import { startInboxServer } from './api.js';

const WS = '11111111-1111-4111-8111-111111111111';
let api: { server: Server; url: string };
let inFlightReads = 0;

beforeAll(async () => {
  api = await startInboxServer(
    {
      inbox: {
        list: async () => ({ notifications: [] }),
        unreadCount: async () => {
          inFlightReads++;
          return 0;
        },
        markRead: async () => [],
      },
      memberships: { memberships: async () => [{ workspaceId: WS, projectId: null, role: 'member' }] },
      verify: async (token) => ({ userId: token, expiresAt: 9e9 }),
      maxPage: 50,
      limiter: new PerUserLimiter({ ratePerSec: 1, burst: 5, maxConcurrent: 5, maxUsers: 100 }),
    },
    0,
  );
});

afterAll(async () => {
  await new Promise((resolve) => api.server.close(resolve));
});

describe('the inbox API under a flood', () => {
  it('answers 429 with Retry-After to a user over its limit, before any store read, while another user is served', async () => {
    const url = `${api.url}/v1/workspaces/${WS}/notifications/unread-count`;
    const flood = await Promise.all(Array.from({ length: 20 }, () => fetch(url, { headers: { authorization: 'Bearer abuser' } })));
    const statuses = flood.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(15);
    expect(flood.find((r) => r.status === 429)?.headers.get('retry-after')).toBe('1');
    expect(await flood.find((r) => r.status === 429)?.json()).toMatchObject({ error: 'too_many_requests' });
    expect(inFlightReads).toBe(5);
    expect((await fetch(url, { headers: { authorization: 'Bearer polite' } })).status).toBe(200);
  });
});
