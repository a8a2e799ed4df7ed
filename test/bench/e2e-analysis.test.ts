import { describe, expect, it } from '@jest/globals';
import { checkSubscription, latenciesIn, percentile, type Delivered } from './e2e-analysis.js';

const W = 'w1';
const P = 'p1';
const truth = ['a', 'b', 'c', 'd'].map((id) => ({ id, workspaceId: W, projectId: P }));
const delivered = (ids: string[]): Delivered => ({ workspaceId: W, projectId: P, ids, commitMs: ids.map(() => 0), receivedMs: ids.map(() => 0), resyncs: 0 });

describe('bench:e2e subscription check', () => {
  it('exactly the history once in order is clean', () => {
    expect(checkSubscription(truth, delivered(['a', 'b', 'c', 'd']))).toEqual({ lost: 0, duplicates: 0, orderViolations: 0, unexpected: 0 });
  });

  it('counts lost, duplicated, reordered and foreign changes', () => {
    expect(checkSubscription(truth, delivered(['a', 'c', 'b', 'c', 'c', 'x']))).toEqual({ lost: 1, duplicates: 2, orderViolations: 1, unexpected: 1 });
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
