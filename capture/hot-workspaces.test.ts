import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { KINESIS_LIMITS } from './batcher.js';
import { type HotTransition, HotWorkspaceTracker, KINESIS_SHARD_LIMITS } from './hot-workspaces.js';
import { CAPTURE_METRICS, prometheusCaptureMetrics } from './metrics.js';
import { KinesisProducer, type PutRecordsFn, reportHotWorkspaces } from './producer.js';

const MiB = 1024 * 1024;
const opts = { windowMs: 5000, threshold: 0.8, clearBelow: 0.6, maxTracked: 100 };

/** Feeds `perSecond` records of `bytes` each to `key`, evenly spaced over [fromMs, toMs); returns the last one's time. */
function steady(t: HotWorkspaceTracker, key: string, perSecond: number, bytes: number, fromMs: number, toMs: number, shardId?: string): number {
  const stepMs = 1000 / perSecond;
  let at = fromMs;
  for (let k = 0; fromMs + k * stepMs < toMs; k++) {
    at = fromMs + k * stepMs;
    t.recordAcknowledged([{ partitionKey: key, bytes, ...(shardId ? { shardId } : {}) }], at);
  }
  return at;
}

/** Follows transitions: the keys reported hot and not yet cooled. */
function follow(open: Set<string>, transitions: readonly HotTransition[]): void {
  for (const x of transitions) {
    if (x.state === 'hot') open.add(`${x.scope}/${x.key}`);
    else open.delete(`${x.scope}/${x.key}`);
  }
}

describe('HotWorkspaceTracker', () => {
  it('measures records/s and bytes/s as a share of one shard, whichever is higher', () => {
    const t = new HotWorkspaceTracker(opts);
    steady(t, 'w-records', 500, 100, 0, 10_000);
    steady(t, 'w-bytes', 10, 50 * 1024, 0, 10_000);
    expect(t.evaluate(10_000)).toEqual([]);
    expect(t.maxUtilization).toBeCloseTo(0.5, 2); // 500 records/s; 10 × 50 KiB/s is only 0.49 of 1 MiB/s
  });

  it('reports a workspace once when it becomes hot and once when it cools, not on every swing', () => {
    const t = new HotWorkspaceTracker(opts);
    const transitions: HotTransition[] = [];
    // 900 records/s for 6 s, then swinging between 650 and 950 records/s, then 100 records/s
    const rates = [900, 900, 900, 900, 900, 900, 650, 950, 650, 950, 650, 950, 650, 650, 100, 100, 100, 100, 100, 100, 100];
    rates.forEach((rate, second) => {
      steady(t, 'w1', rate, 200, second * 1000, (second + 1) * 1000);
      transitions.push(...t.evaluate((second + 1) * 1000));
    });
    expect(transitions.map((x) => [x.key, x.state])).toEqual([
      ['w1', 'hot'],
      ['w1', 'cooled'],
    ]);
    const [hot, cooled] = transitions;
    expect(hot!.utilization).toBeGreaterThanOrEqual(0.8);
    // reported as soon as the window reads 80%: while it fills, it reads below the true 900/s
    expect(hot!.recordsPerSecond).toBeGreaterThanOrEqual(800);
    expect(hot!.recordsPerSecond).toBeLessThanOrEqual(900);
    expect(cooled!.utilization).toBeLessThan(0.6);
  });

  it('cools and forgets a hot workspace whose traffic stops', () => {
    const t = new HotWorkspaceTracker(opts);
    steady(t, 'w1', 950, 10, 0, 5000);
    expect(t.evaluate(5000).map((x) => x.state)).toEqual(['hot']);
    expect(t.hot('workspace', 5000).map((h) => h.key)).toEqual(['w1']);
    expect(t.evaluate(10_000).map((x) => [x.state, x.utilization])).toEqual([['cooled', 0]]);
    expect(t.tracked('workspace')).toBe(0);
    expect(t.hot('workspace', 10_000)).toEqual([]);
  });

  it('sums the workspaces of one shard when the shard is known', () => {
    const t = new HotWorkspaceTracker(opts);
    for (let ms = 0; ms < 5000; ms++) {
      if (ms % 2 === 0) t.recordAcknowledged([{ partitionKey: 'w1', bytes: 100, shardId: 'shardId-000000000001' }], ms); // 500/s
      if (ms % 5 < 2) t.recordAcknowledged([{ partitionKey: 'w2', bytes: 100, shardId: 'shardId-000000000001' }], ms); // 400/s
      if (ms % 10 === 0) t.recordAcknowledged([{ partitionKey: 'w3', bytes: 100, shardId: 'shardId-000000000002' }], ms); // 100/s
    }
    const transitions = t.evaluate(5000);
    expect(transitions.map((x) => [x.scope, x.key, x.state])).toEqual([['shard', 'shardId-000000000001', 'hot']]);
    expect(transitions[0]!.recordsPerSecond).toBeCloseTo(900, -1);
  });

  it('keeps a hot workspace tracked when the cap is reached and forgets the coldest instead', () => {
    const t = new HotWorkspaceTracker({ ...opts, maxTracked: 2 });
    steady(t, 'hot', 950, 10, 0, 5000);
    t.evaluate(5000);
    t.recordAcknowledged([{ partitionKey: 'a', bytes: 1 }], 5000);
    t.recordAcknowledged([{ partitionKey: 'b', bytes: 1 }], 5001);
    expect(t.tracked('workspace')).toBe(2);
    expect(t.hot('workspace', 5001).map((h) => h.key)).toEqual(['hot']);
  });

  it('refuses options that cannot work', () => {
    expect(() => new HotWorkspaceTracker({ ...opts, windowMs: 0 })).toThrow(/windowMs/);
    expect(() => new HotWorkspaceTracker({ ...opts, clearBelow: 0.8 })).toThrow(/clearBelow must be > 0 and below threshold 0.8/);
    expect(() => new HotWorkspaceTracker({ ...opts, maxTracked: 0.5 })).toThrow(/maxTracked/);
  });

  it('property: a steady rate over the window reads as rate ÷ limit (within one record)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1000, max: 10_000 }),
        fc.double({ min: 1, max: 1500, noNaN: true }),
        fc.integer({ min: 1, max: 4096 }),
        fc.double({ min: 1, max: 2, noNaN: true }),
        fc.double({ min: 0, max: 0.999, noNaN: true }),
        (windowMs, rate, bytes, windows, phase) => {
          const t = new HotWorkspaceTracker({ ...opts, windowMs });
          // a second more than the windows, so the rate held over the whole window evaluated
          const last = steady(t, 'w', rate, bytes, 0, windowMs * windows + 1000);
          // evaluated somewhere between the last record and the one that would follow
          t.evaluate(last + (phase * 1000) / rate);
          // counted over at least 9/10 of the window: at most one record more or less at its edges
          const recordsOff = 1 / ((0.9 * windowMs) / 1000) + 1e-9;
          const { recordsPerSecond, bytesPerSecond } = KINESIS_SHARD_LIMITS;
          const expected = Math.max(rate / recordsPerSecond, (rate * bytes) / bytesPerSecond);
          const tolerance = Math.max(recordsOff / recordsPerSecond, (recordsOff * bytes) / bytesPerSecond);
          expect(Math.abs(t.maxUtilization - expected)).toBeLessThanOrEqual(tolerance);
        },
      ),
    );
  });

  it('property: hot and cooled alternate per key, each at its threshold — one report per episode', () => {
    const segment = fc.record({ key: fc.constantFrom('a', 'b', '*'), rate: fc.integer({ min: 0, max: 1200 }), seconds: fc.integer({ min: 1, max: 8 }) });
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 12 }), (segments) => {
        const t = new HotWorkspaceTracker(opts);
        const last = new Map<string, 'hot' | 'cooled'>();
        let now = 0;
        for (const s of segments) {
          for (let i = 0; i < s.seconds; i++) {
            if (s.rate > 0) steady(t, s.key, s.rate, 100, now, now + 1000, `shard-${s.key}`);
            now += 1000;
            for (const x of t.evaluate(now)) {
              const id = `${x.scope}/${x.key}`;
              expect(x.state).toBe(last.get(id) === 'hot' ? 'cooled' : 'hot');
              if (x.state === 'hot') expect(x.utilization).toBeGreaterThanOrEqual(opts.threshold);
              else expect(x.utilization).toBeLessThan(opts.clearBelow);
              last.set(id, x.state);
            }
          }
        }
        const stillHot = [...last].filter(([, state]) => state === 'hot').map(([id]) => id).sort();
        expect([...t.hot('workspace', now).map((h) => `workspace/${h.key}`), ...t.hot('shard', now).map((h) => `shard/${h.key}`)].sort()).toEqual(stillHot);
      }),
    );
  });

  it('property: a workspace swinging between 65% and 95% of the limit is reported at most once', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 650, max: 950 }), { minLength: 1, maxLength: 30 }), (rates) => {
        const t = new HotWorkspaceTracker(opts);
        steady(t, 'w', 700, 10, 0, 5000); // a window of history, so the start does not read low
        const transitions = rates.flatMap((rate, second) => {
          steady(t, 'w', rate, 10, 5000 + second * 1000, 6000 + second * 1000);
          return t.evaluate(6000 + second * 1000);
        });
        expect(transitions.filter((x) => x.state === 'hot').length).toBeLessThanOrEqual(1);
        expect(transitions.filter((x) => x.state === 'cooled')).toEqual([]);
      }),
    );
  });

  it('property: memory stays bounded for any input, and an idle window forgets everything', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('put' as const), key: fc.integer({ min: 0, max: 500 }), shard: fc.integer({ min: 0, max: 50 }), count: fc.integer({ min: 1, max: 400 }), bytes: fc.integer({ min: 1, max: MiB }), advanceMs: fc.integer({ min: 0, max: 700 }) }),
      fc.record({ kind: fc.constant('evaluate' as const), advanceMs: fc.integer({ min: 0, max: 3000 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), fc.integer({ min: 1, max: 20 }), (ops, maxTracked) => {
        const t = new HotWorkspaceTracker({ ...opts, windowMs: 2000, maxTracked });
        const open = new Set<string>();
        let now = 0;
        for (const o of ops) {
          now += o.advanceMs;
          if (o.kind === 'put') t.recordAcknowledged(Array.from({ length: o.count }, () => ({ partitionKey: `w${o.key}`, bytes: Math.ceil(o.bytes / o.count), shardId: `s${o.shard}` })), now);
          else follow(open, t.evaluate(now));
          expect(t.tracked('workspace')).toBeLessThanOrEqual(maxTracked);
          expect(t.tracked('shard')).toBeLessThanOrEqual(maxTracked);
        }
        follow(open, t.evaluate(now + 2000));
        expect(open.size).toBe(0); // every hot report was followed by a cooled one
        expect(t.tracked('workspace') + t.tracked('shard')).toBe(0);
      }),
    );
  });

  it('property: records a full window old no longer count', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ atMs: fc.integer({ min: 0, max: 20_000 }), bytes: fc.integer({ min: 1, max: 200_000 }) }), { maxLength: 40 }),
        fc.integer({ min: 0, max: 20_000 }),
        (records, nowMs) => {
          const all = new HotWorkspaceTracker(opts);
          const recent = new HotWorkspaceTracker(opts);
          for (const r of [...records].sort((a, b) => a.atMs - b.atMs).filter((r) => r.atMs <= nowMs)) {
            all.recordAcknowledged([{ partitionKey: 'w', bytes: r.bytes }], r.atMs);
            if (r.atMs > nowMs - opts.windowMs) recent.recordAcknowledged([{ partitionKey: 'w', bytes: r.bytes }], r.atMs);
          }
          all.evaluate(nowMs);
          recent.evaluate(nowMs);
          expect(all.maxUtilization).toBeCloseTo(recent.maxUtilization, 12);
        },
      ),
    );
  });
});

describe('producer and report', () => {
  it('counts only what Kinesis accepted, as sent, and reports hot and cooled workspaces in logs and metrics', async () => {
    let clock = 10_000;
    const accepted = new Map<string, number>();
    let failedOnce = false;
    const put: PutRecordsFn = async (records) =>
      records.map((r) => {
        if (r.partitionKey === 'w-cold' && !failedOnce) {
          failedOnce = true;
          return { ok: false, errorCode: 'ProvisionedThroughputExceededException' };
        }
        accepted.set(r.partitionKey, (accepted.get(r.partitionKey) ?? 0) + r.data.length + Buffer.byteLength(r.partitionKey));
        return { ok: true, shardId: r.partitionKey === 'w-hot' ? 'shardId-000000000001' : 'shardId-000000000002' };
      });
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const registry = new Registry();
    const metrics = prometheusCaptureMetrics(registry);
    const gauge = async (name: string) => (await registry.getSingleMetric(name)!.get()).values;
    const tracker = new HotWorkspaceTracker(opts);
    const producer = new KinesisProducer(put, {
      batcher: { aggregate: true, compression: 'none', limits: KINESIS_LIMITS, backoff: { baseMs: 1, maxMs: 5 } },
      maxInFlightBatches: 4,
      logger,
      metrics,
      hotWorkspaces: tracker,
      now: () => clock,
    });
    for (let i = 0; i < 50; i++) producer.send({ partitionKey: 'w-hot', data: Buffer.alloc(100_000, 0x61), onAck: () => undefined });
    producer.send({ partitionKey: 'w-cold', data: Buffer.from('{}'), onAck: () => undefined });
    await producer.drained();

    reportHotWorkspaces(tracker, clock, logger, metrics);
    const span = 4.5; // buckets of 500 ms: the 9 before the current one, which has just begun
    const [hot] = tracker.hot('workspace', clock);
    expect(hot).toMatchObject({ key: 'w-hot', recordsPerSecond: expect.any(Number) });
    expect(hot!.bytesPerSecond).toBeCloseTo(accepted.get('w-hot')! / span, 6);
    expect(tracker.hot('shard', clock).map((s) => s.key)).toEqual(['shardId-000000000001']);
    const warning = lines.find((l) => l.workspace === 'w-hot');
    expect(warning).toMatchObject({ level: 40, workspace: 'w-hot', utilization: expect.any(Number), recordsPerSecond: expect.any(Number), bytesPerSecond: Math.round(accepted.get('w-hot')! / span) });
    expect(lines.some((l) => l.shard === 'shardId-000000000001' && l.level === 40)).toBe(true);
    expect(lines.some((l) => l.workspace === 'w-cold')).toBe(false);
    expect((await gauge(CAPTURE_METRICS.hotWorkspaces))).toEqual([{ value: 1, labels: {} }]);
    expect((await gauge(CAPTURE_METRICS.workspaceShardUtilization))).toEqual([{ value: hot!.utilization, labels: { workspace: 'w-hot' } }]);
    expect((await gauge(CAPTURE_METRICS.shardUtilization)).map((v) => v.labels)).toEqual([{ shard: 'shardId-000000000001' }]);
    expect((await gauge(CAPTURE_METRICS.maxWorkspaceShardUtilization))[0]!.value).toBe(hot!.utilization);

    clock += opts.windowMs;
    reportHotWorkspaces(tracker, clock, logger, metrics);
    expect(lines.filter((l) => l.level === 30).map((l) => l.workspace ?? l.shard)).toEqual(['w-hot', 'shardId-000000000001']);
    expect((await gauge(CAPTURE_METRICS.hotWorkspaces))).toEqual([{ value: 0, labels: {} }]);
    expect((await gauge(CAPTURE_METRICS.workspaceShardUtilization))).toEqual([]);
    expect((await gauge(CAPTURE_METRICS.shardUtilization))).toEqual([]);
    expect(await registry.metrics()).toContain('taskflow_capture_hot_workspaces 0');
    producer.close();
  });
});
