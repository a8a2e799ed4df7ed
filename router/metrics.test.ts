import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { prometheusRouterMetrics, ROUTER_METRICS } from './metrics.js';

describe('router metrics', () => {
  it('reports the broker nodes missing as the configured ones the router is not connected to', async () => {
    const registry = new Registry();
    const { tier } = prometheusRouterMetrics(registry);
    const value = async (name: string) => (await registry.getSingleMetric(name)!.get()).values[0]?.value;
    tier.nodesConnected(1, 3);
    expect([await value(ROUTER_METRICS.nodesConnected), await value(ROUTER_METRICS.nodesMissing)]).toEqual([1, 2]);
    tier.nodesConnected(3, 3);
    expect(await value(ROUTER_METRICS.nodesMissing)).toBe(0);
  });
});
