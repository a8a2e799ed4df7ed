import { describe, expect, it } from '@jest/globals';
import { bucketsSince, checkSubscription, histogramQuantile, latenciesIn, parseCounter, parseHistogram, parseLabeledCounter, percentile, ratePerBin, type Delivered } from './e2e-analysis.js';

const W = 'w1';
const P = 'p1';
const truth = ['a', 'b', 'c', 'd'].map((id) => ({ id, workspaceId: W, projectId: P }));
const delivered = (ids: string[]): Delivered => ({ workspaceId: W, projectId: P, ids, commitMs: ids.map(() => 0), receivedMs: ids.map(() => 0), resyncs: 0, offlines: 0 });

describe('bench:e2e subscription check', () => {
  it('exactly the history once in order is clean', () => {
    expect(checkSubscription(truth, delivered(['a', 'b', 'c', 'd']))).toEqual({ lost: 0, lostAtTail: 0, duplicates: 0, orderViolations: 0, unexpected: 0 });
  });

  it('counts lost, duplicated, reordered and foreign changes', () => {
    expect(checkSubscription(truth, delivered(['a', 'c', 'b', 'c', 'c', 'x']))).toEqual({ lost: 1, lostAtTail: 1, duplicates: 2, orderViolations: 1, unexpected: 1 });
    expect(checkSubscription(truth, delivered(['a', 'c']))).toMatchObject({ lost: 2, lostAtTail: 1 });
  });
});

describe('bench:e2e latency', () => {
  it('takes receive − commit of the changes committed inside the window only', () => {
    const d: Delivered = { ...delivered(['a', 'b', 'c']), commitMs: [100, 200, 300], receivedMs: [150, 290, 301] };
    expect(latenciesIn(d, 200, 300)).toEqual([90]);
    expect(latenciesIn(d, 0, 1000)).toEqual([50, 90, 1]);
  });

  it('nearest-rank percentiles', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 95)).toBe(95);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });
});

describe('bench:e2e stage latencies from Prometheus histograms', () => {
  const scrape = (counts: number[]) =>
    ['# HELP x_seconds x', '# TYPE x_seconds histogram']
      .concat(['0.1', '0.5', '1', '+Inf'].map((le, i) => `x_seconds_bucket{le="${le}",shard="a"} ${counts[i]}`))
      .concat(['x_seconds_sum 1', 'x_seconds_count 1', 'other_bucket{le="0.1"} 99'])
      .join('\n');

  it('parses, subtracts an earlier scrape and interpolates quantiles', () => {
    const before = parseHistogram(scrape([10, 10, 10, 10]), 'x_seconds');
    const after = parseHistogram(scrape([10, 60, 110, 110]), 'x_seconds');
    expect(after.get(0.5)).toBe(60);
    const window = bucketsSince(before, after); // 0 below 0.1, 50 in (0.1, 0.5], 50 in (0.5, 1]
    expect(histogramQuantile(window, 0.5)).toBeCloseTo(0.5);
    expect(histogramQuantile(window, 0.25)).toBeCloseTo(0.3);
    expect(histogramQuantile(window, 0.95)).toBeCloseTo(0.95);
    expect(histogramQuantile(bucketsSince(after, after), 0.5)).toBeNaN();
  });

  it('a quantile beyond the last finite bound is that bound', () => {
    const b = parseHistogram(scrape([0, 0, 1, 10]), 'x_seconds');
    expect(histogramQuantile(b, 0.95)).toBe(1);
  });
});

describe('bench:e2e counters', () => {
  it('sums a counter over its label sets and ignores other metrics', () => {
    const text = ['# TYPE m_total counter', 'm_total{shard="a"} 3', 'm_total{shard="b"} 4', 'm_total_other 100', 'n_total 1'].join('\n');
    expect(parseCounter(text, 'm_total')).toBe(7);
    expect(parseCounter(text, 'absent_total')).toBe(0);
  });

  it('reads a counter per label set, quoted commas and escapes included', () => {
    const text = ['m_total{service="router",api="dynamodb",command="PutItemCommand"} 12', 'm_total{note="a,b=\\"c\\""} 2', 'm_total 1', 'm_totals{api="x"} 9'].join('\n');
    expect(parseLabeledCounter(text, 'm_total')).toEqual([
      [{ service: 'router', api: 'dynamodb', command: 'PutItemCommand' }, 12],
      [{ note: 'a,b=\\"c\\"' }, 2],
      [{}, 1],
    ]);
  });
});

describe('bench:clients counter rate', () => {
  it('turns counter samples into a rate per bin', () => {
    const samples = [
      { at: 1000, value: 5 },
      { at: 1250, value: 15 },
      { at: 1500, value: 15 },
      { at: 1750, value: 35 },
    ];
    expect(ratePerBin(samples, 1000, 250)).toEqual([40, 0, 80]);
    // Bins wider than the sampling, and a start before the first sample (its reading holds).
    expect(ratePerBin(samples, 750, 500)).toEqual([20, 40]);
    expect(ratePerBin([], 0, 250)).toEqual([]);
  });
});
