import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import { HEALTH_METRICS, HealthSampler, healthPoint, histogramQuantile, parsePrometheusText, type Scrape } from './health.js';

const at = (t: number, text: string): Scrape => ({ at: t, samples: parsePrometheusText(text) });

describe('parsePrometheusText', () => {
  it('reads names, labels (with escapes), values and infinities, and skips comments and timestamps', () => {
    const text = [
      '# HELP x_total a counter',
      '# TYPE x_total counter',
      'x_total{service="router",reason="a \\"quoted\\" one, with comma"} 3',
      'y 1.5e3 1700000000000',
      'h_bucket{le="+Inf"} 7',
      'nan_metric NaN',
    ].join('\n');
    const samples = parsePrometheusText(text);
    expect(samples.slice(0, 4)).toEqual([
      { name: 'x_total', labels: {}, value: 0 }, // declared: a counter without samples reads 0
      { name: 'x_total', labels: { service: 'router', reason: 'a "quoted" one, with comma' }, value: 3 },
      { name: 'y', labels: {}, value: 1500 },
      { name: 'h_bucket', labels: { le: '+Inf' }, value: 7 },
    ]);
    expect(samples[4]!.value).toBeNaN();
  });

  it('reads what prom-client writes', async () => {
    const registry = new Registry();
    const h = new Histogram({ name: 'lat_seconds', help: 'h', labelNames: ['shard'], buckets: [0.1, 1], registers: [registry] });
    h.observe({ shard: 'a' }, 0.05);
    h.observe({ shard: 'b' }, 0.5);
    const samples = parsePrometheusText(await registry.metrics());
    expect(samples.filter((s) => s.name === 'lat_seconds_bucket' && s.labels.le === '+Inf').map((s) => s.value)).toEqual([1, 1]);
    expect(samples.find((s) => s.name === 'lat_seconds_count' && s.labels.shard === 'b')?.value).toBe(1);
  });
});

/** Cumulative bucket lines of a histogram `m` from its observations. */
function histogramText(m: string, bounds: readonly number[], observations: readonly number[], labels = ''): string {
  const lines = [...bounds, Number.POSITIVE_INFINITY].map((le) => `${m}_bucket{${labels}${labels ? ',' : ''}le="${le === Number.POSITIVE_INFINITY ? '+Inf' : le}"} ${observations.filter((o) => o <= le).length}`);
  return lines.join('\n');
}

describe('histogramQuantile', () => {
  const bounds = [0.1, 0.2, 0.5, 1];
  it('interpolates inside the bucket as Prometheus does, over the increase between scrapes', () => {
    // Hand-computed: 10 observations in the window, 4 ≤ 0.1, 8 ≤ 0.2, 10 ≤ 0.5. p50: rank 5, in (0.1, 0.2]: 0.1 + 0.1 × (5 − 4) / (8 − 4) = 0.125.
    const before = at(0, histogramText('m', bounds, [0.7, 0.7]));
    const now = at(10, histogramText('m', bounds, [0.7, 0.7, 0.05, 0.05, 0.05, 0.05, 0.15, 0.15, 0.15, 0.15, 0.3, 0.3]));
    expect(histogramQuantile(0.5, now, before, 'm')).toBeCloseTo(0.125, 10);
    // p95: rank 9.5, in (0.2, 0.5]: 0.2 + 0.3 × (9.5 − 8) / 2 = 0.425
    expect(histogramQuantile(0.95, now, before, 'm')).toBeCloseTo(0.425, 10);
    // Without the earlier scrape the two 0.7 s observations count: 12 in all.
    expect(histogramQuantile(0.95, now, undefined, 'm')).toBeCloseTo(0.5 + 0.5 * (11.4 - 10) / 2, 10);
  });

  it('is null with no observation in the window, and treats a counter that went down (a restart) as counting from zero', () => {
    const one = at(0, histogramText('m', bounds, [0.15]));
    expect(histogramQuantile(0.5, one, one, 'm')).toBeNull();
    const restarted = at(5, histogramText('m', bounds, [0.05]));
    expect(histogramQuantile(0.5, restarted, at(0, histogramText('m', bounds, [0.15, 0.15, 0.15])), 'm')).toBeCloseTo(0.05, 10);
  });

  it('sums label sets, and stays within the bucket bounds of the observations (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(0.05, 0.15, 0.3, 0.7, 2), { minLength: 1, maxLength: 40 }), fc.double({ min: 0.01, max: 0.99, noNaN: true }), (obs, q) => {
        const half = Math.floor(obs.length / 2);
        const text = `${histogramText('m', bounds, obs.slice(0, half), 'shard="a"')}\n${histogramText('m', bounds, obs.slice(half), 'shard="b"')}`;
        const v = histogramQuantile(q, at(1, text), undefined, 'm')!;
        const sorted = [...obs].sort((a, b) => a - b);
        const exact = sorted[Math.max(0, Math.ceil(q * obs.length) - 1)]!;
        const upper = bounds.find((b) => b >= exact) ?? 1; // beyond the last bucket: its bound
        const lower = [0, ...bounds].filter((b) => b < Math.min(exact, 1)).at(-1)!;
        expect(v).toBeGreaterThanOrEqual(lower - 1e-9);
        expect(v).toBeLessThanOrEqual(upper + 1e-9);
      }),
    );
  });
});

describe('healthPoint', () => {
  it('takes the worst capture lag and the worst shard per consumer, totals dead letters and divides messages by changes in the window', () => {
    const text = (messages: number, changes: number) =>
      [
        'taskflow_capture_replication_lag_seconds{service="capture"} 0.4',
        'kinesis_consumer_millis_behind_latest{consumer="router",shard="s0"} 120',
        'kinesis_consumer_millis_behind_latest{consumer="router",shard="s1"} 900',
        'kinesis_consumer_millis_behind_latest{consumer="search",shard="s0"} 5',
        'taskflow_router_dlq_total{reason="schema_invalid"} 2',
        'taskflow_router_dlq_total{reason="too_large"} 1',
        `taskflow_router_messages_published_total ${messages}`,
        `taskflow_router_changes_published_total{shard="s0"} ${changes}`,
      ].join('\n');
    const p = healthPoint(at(2000, text(130, 100)), at(0, text(100, 90)));
    expect(p).toEqual({
      at: 2000,
      commitToClientMs: { p50: null, p95: null },
      commitToPublishMs: { p50: null, p95: null },
      captureLagSeconds: 0.4,
      iteratorAgeMs: { router: 900, search: 5 },
      deadLetters: { taskflow_router_dlq_total: 3 },
      messagesPerChange: 3,
    });
    expect(healthPoint(at(1, text(100, 90)), at(0, text(100, 90))).messagesPerChange).toBeNull();
  });
});

describe('HealthSampler', () => {
  it('scrapes every source, says which failed and why, and compares with the oldest scrape in the window', async () => {
    let changes = 0;
    const fake = (async (url: string) => {
      if (url.includes('down')) throw new Error('connect ECONNREFUSED');
      changes += 10;
      return new Response(`${HEALTH_METRICS.changesPublished} ${changes}\n${HEALTH_METRICS.messagesPublished} ${changes * 2}\n`);
    }) as unknown as typeof fetch;
    const sampler = new HealthSampler(() => [{ name: 'router', url: 'http://router/metrics' }, { name: 'search', url: 'http://down/metrics' }], { everyMs: 1000, windowMs: 3000, keep: 2, fetch: fake });
    expect((await sampler.sample(0)).messagesPerChange).toBe(2); // no earlier scrape: the totals since start
    for (const t of [1000, 2000, 3000, 4000]) expect((await sampler.sample(t)).messagesPerChange).toBe(2);
    const snap = sampler.snapshot();
    expect(snap.points.map((p) => p.at)).toEqual([3000, 4000]);
    expect(snap.sources).toEqual([
      { name: 'router', url: 'http://router/metrics', ok: true },
      { name: 'search', url: 'http://down/metrics', ok: false, error: 'connect ECONNREFUSED' },
    ]);
  });
});
