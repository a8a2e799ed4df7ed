// The loader's freshness and data-quality metrics as /metrics shows them: freshness is now minus
// the newest loaded commit time at scrape time (so a stalled loader shows its warehouse ageing),
// the pending age is the oldest unloaded object's wait, duplicates are the events dropped.
import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { LOADER_METRICS, prometheusLoaderMetrics } from './metrics.js';

const value = async (registry: Registry, name: string, labels: Record<string, string> = {}) => {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name)!;
  return (metric.values as { value: number; labels: Record<string, string> }[]).find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
};

describe('loader metrics', () => {
  it('freshness: NaN with no event, then now minus the newest commit time, ageing while nothing loads', async () => {
    const registry = new Registry();
    let now = 1_000_000;
    const m = prometheusLoaderMetrics(registry, () => now);
    expect(await value(registry, LOADER_METRICS.freshness)).toBeNaN();
    m.newestAtStart(990_000);
    expect(await value(registry, LOADER_METRICS.freshness)).toBe(10);
    m.loader.loaded(2, 10, 7, 0.1, 999_000);
    m.loader.loaded(1, 1, 1, 0.1, 995_000); // an older object loaded later keeps the newest
    expect(await value(registry, LOADER_METRICS.freshness)).toBe(1);
    now += 60_000;
    expect(await value(registry, LOADER_METRICS.freshness)).toBe(61);
    expect(await value(registry, LOADER_METRICS.duplicates)).toBe(3);
    expect(await value(registry, LOADER_METRICS.events, { new: 'false' })).toBe(3);
  });

  it('pending objects and how long the oldest has waited; data-quality results per check', async () => {
    const registry = new Registry();
    const now = 1_000_000;
    const m = prometheusLoaderMetrics(registry, () => now);
    m.loader.listed('incremental', 900, 3, now - 42_000);
    expect(await value(registry, LOADER_METRICS.pending)).toBe(3);
    expect(await value(registry, LOADER_METRICS.oldestPending)).toBe(42);
    expect(await value(registry, LOADER_METRICS.listedKeys, { kind: 'incremental' })).toBe(900);
    m.loader.listed('full', 10, 0, undefined);
    expect(await value(registry, LOADER_METRICS.oldestPending)).toBe(0);
    m.dataQuality([
      { check: 'freshness', passed: false, failingRows: 1, sample: [] },
      { check: 'event_id_unique', passed: true, failingRows: 0, sample: [] },
    ]);
    expect(await value(registry, LOADER_METRICS.dqPassed, { check: 'freshness' })).toBe(0);
    expect(await value(registry, LOADER_METRICS.dqPassed, { check: 'event_id_unique' })).toBe(1);
    expect(await value(registry, LOADER_METRICS.dqFailingRows, { check: 'freshness' })).toBe(1);
  });
});
