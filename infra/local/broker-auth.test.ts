import { describe, expect, it } from '@jest/globals';
import type { Client } from 'aedes';
import { Registry } from 'prom-client';
import { createBrokerAuth } from './broker-auth.js';
import { AUTHORIZER_METRICS, prometheusAuthorizerMetrics } from '../../lib/authorizer-metrics.js';

const hook = <A extends unknown[]>(fn: (...args: [...A, (err: unknown, v: unknown) => void]) => void, ...args: A) =>
  new Promise<[unknown, unknown]>((resolve) => fn(...args, (err, v) => resolve([err, v])));

describe('authorizer metrics of the local broker', () => {
  it('count allows, denials and errors (a decision not made) per step, each timed', async () => {
    const registry = new Registry();
    let projectionUp = true;
    const auth = createBrokerAuth({
      metrics: prometheusAuthorizerMetrics(registry),
      verify: async (token) => {
        if (token !== 'good') throw new Error('bad token');
        return { userId: 'u1', expiresAt: Date.now() / 1000 + 3600 } as Awaited<ReturnType<Parameters<typeof createBrokerAuth>[0]['verify']>>;
      },
      memberships: async () => {
        if (!projectionUp) throw new Error('projection unreadable');
        return [];
      },
      serviceUserIds: [],
      recheckMs: 3_600_000,
    });
    const client = { id: 'u1.tab', close: () => undefined } as unknown as Client;
    const h = auth.hooks as unknown as Record<string, (...a: unknown[]) => void>;
    await hook(h.authenticate!, client, 'x', Buffer.from('bad'));
    await hook(h.authenticate!, client, 'x', Buffer.from('good'));
    await hook(h.authorizeSubscribe!, client, { topic: 'taskflow/v1/ws/w/projects/p', qos: 1 });
    projectionUp = false;
    await hook(h.authorizeSubscribe!, client, { topic: 'taskflow/v1/ws/w/projects/p', qos: 1 });
    await new Promise<void>((resolve) => h.authorizePublish!(client, { topic: 't' }, () => resolve()));
    auth.stop();
    const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === AUTHORIZER_METRICS.decisions)!;
    const counts = Object.fromEntries(metric.values.map((v) => [`${v.labels.step}/${v.labels.outcome}`, v.value]));
    expect(counts).toEqual({ 'connect/deny': 1, 'connect/allow': 1, 'subscribe/deny': 1, 'subscribe/error': 1, 'publish/deny': 1 });
    const timed = (await registry.getMetricsAsJSON()).find((m) => m.name === AUTHORIZER_METRICS.seconds)!;
    expect(timed.values.filter((v) => (v as { metricName?: string }).metricName?.endsWith('_count')).reduce((a, v) => a + v.value, 0)).toBe(5);
  });

  it('tries a failing membership look-up again, at most three times, before refusing the subscription', async () => {
    let failures = 0;
    let calls = 0;
    const auth = createBrokerAuth({
      verify: async () => ({ userId: 'u1', expiresAt: Date.now() / 1000 + 3600 }) as Awaited<ReturnType<Parameters<typeof createBrokerAuth>[0]['verify']>>,
      memberships: async () => {
        calls += 1;
        if (failures-- > 0) throw new Error('projection unreadable');
        return [{ workspaceId: 'w', projectId: 'p', role: 'member' }];
      },
      serviceUserIds: [],
      recheckMs: 3_600_000,
    });
    const client = { id: 'u1.tab', close: () => undefined } as unknown as Client;
    const h = auth.hooks as unknown as Record<string, (...a: unknown[]) => void>;
    await hook(h.authenticate!, client, 'x', Buffer.from('good'));
    failures = 2;
    const [err, granted] = await hook(h.authorizeSubscribe!, client, { topic: 'taskflow/v1/ws/w/projects/p', qos: 1 });
    expect(err).toBeNull();
    expect(granted).toMatchObject({ topic: 'taskflow/v1/ws/w/projects/p' });
    expect(calls).toBe(3);
    calls = 0;
    failures = 3;
    const [refused] = await hook(h.authorizeSubscribe!, client, { topic: 'taskflow/v1/ws/w/projects/p', qos: 1 });
    expect(refused).toBeInstanceOf(Error);
    expect(calls).toBe(3);
    auth.stop();
  });

  it('authorizes a SUBSCRIBE with the memberships read and re-checks through recheckMemberships (the service reads that one eventually consistent)', async () => {
    let now = 0;
    const reads = { subscribe: 0, recheck: 0 };
    const auth = createBrokerAuth({
      verify: async () => ({ userId: 'u1', expiresAt: 3600 }) as Awaited<ReturnType<Parameters<typeof createBrokerAuth>[0]['verify']>>,
      memberships: async () => {
        reads.subscribe += 1;
        return [{ workspaceId: 'w', projectId: 'p', role: 'member' }];
      },
      // The re-check's view: the membership has gone since.
      recheckMemberships: async () => {
        reads.recheck += 1;
        return [];
      },
      serviceUserIds: [],
      recheckMs: 10_000,
      random: () => 0,
      now: () => now,
    });
    auth.stop(); // the test drives the ticks
    let closed = false;
    const client = { id: 'u1.tab', subscriptions: {} as Record<string, unknown>, close: () => void (closed = true) } as unknown as Client & { subscriptions: Record<string, unknown> };
    const h = auth.hooks as unknown as Record<string, (...a: unknown[]) => void>;
    await hook(h.authenticate!, client, 'x', Buffer.from('good'));
    const [, granted] = await hook(h.authorizeSubscribe!, client, { topic: 'taskflow/v1/ws/w/projects/p', qos: 1 });
    expect(granted).toMatchObject({ topic: 'taskflow/v1/ws/w/projects/p' });
    client.subscriptions['taskflow/v1/ws/w/projects/p'] = { qos: 1 };
    now = 10_001;
    await auth.tick();
    expect({ reads, closed }).toEqual({ reads: { subscribe: 1, recheck: 1 }, closed: true });
  });
});
