// Pure checks of bench:e2e: what one SDK subscription handed its application, against the
// project's committed history (the test_decoding truth), and commit-to-client latency samples.
import { compareHistory, type HistoryEvent } from '../support/history.js';

/** What one subscription delivered to its application, in delivery order. */
export interface Delivered {
  workspaceId: string;
  projectId: string;
  ids: string[];
  /** Commit time (the event's `time`) and receive time of each delivery, epoch ms. */
  commitMs: number[];
  receivedMs: number[];
  resyncs: number;
  /** Times the subscription's status went to 'offline' (its connection dropped and reconnected). */
  offlines: number;
}

export interface SubscriptionCheck {
  /** Committed changes of the project never delivered. */
  lost: number;
  /** Of those, how many come after the last change delivered (a tail still on its way, rather than holes). */
  lostAtTail: number;
  /** Deliveries beyond the first of the same change. */
  duplicates: number;
  /** First deliveries of a change committed before one already delivered. */
  orderViolations: number;
  /** Delivered ids that the project never committed (misrouted or invented). */
  unexpected: number;
}

export function checkSubscription(truth: readonly Pick<HistoryEvent, 'id' | 'workspaceId' | 'projectId'>[], delivered: Delivered): SubscriptionCheck {
  const comparison = compareHistory(
    truth,
    delivered.ids.map((id) => ({ id, workspaceid: delivered.workspaceId, projectid: delivered.projectId })),
  );
  const seen = new Set(delivered.ids);
  let lastDelivered = -1;
  truth.forEach((e, i) => {
    if (seen.has(e.id)) lastDelivered = i;
  });
  return {
    lost: comparison.lost.length,
    lostAtTail: truth.length - 1 - lastDelivered,
    duplicates: comparison.duplicated.reduce((n, d) => n + d.times - 1, 0),
    orderViolations: comparison.outOfOrderByProject.length,
    unexpected: comparison.unexpected.length + comparison.misrouted.length,
  };
}

/** Receive − commit (ms) of the deliveries whose commit time lies in [fromMs, toMs). */
export function latenciesIn(delivered: Delivered, fromMs: number, toMs: number): number[] {
  const out: number[] = [];
  delivered.commitMs.forEach((commit, i) => {
    if (commit >= fromMs && commit < toMs) out.push(delivered.receivedMs[i]! - commit);
  });
  return out;
}

/** Nearest-rank percentile (p in 0..100) of unsorted values; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** A counter's samples in time order: `at` epoch ms, `value` its reading then. */
export interface CounterSample {
  at: number;
  value: number;
}

/**
 * The counter's rate per second in consecutive bins of `binMs` from `fromMs` (one bin per started
 * interval up to the last sample): each bin's increase is the difference of the last readings at
 * or before its two edges, so a reading that falls between samples goes to the bin it was read in.
 */
export function ratePerBin(samples: readonly CounterSample[], fromMs: number, binMs: number): number[] {
  const valueAt = (t: number): number => {
    let v = samples[0]?.value ?? 0;
    for (const s of samples) if (s.at <= t) v = s.value;
    return v;
  };
  const last = samples[samples.length - 1];
  if (!last || last.at <= fromMs) return [];
  const bins = Math.ceil((last.at - fromMs) / binMs);
  return Array.from({ length: bins }, (_, i) => ((valueAt(fromMs + (i + 1) * binMs) - valueAt(fromMs + i * binMs)) * 1000) / binMs);
}

/** Cumulative bucket counts of a Prometheus histogram (summed over label sets), by upper bound. */
export type Buckets = Map<number, number>;

/** The buckets of histogram `name` in a Prometheus text exposition. */
export function parseHistogram(exposition: string, name: string): Buckets {
  const buckets: Buckets = new Map();
  const pattern = new RegExp(`^${name}_bucket\\{(?:[^}]*,)?le="([^"]+)"[^}]*\\} (\\S+)$`);
  for (const line of exposition.split('\n')) {
    const m = pattern.exec(line);
    if (!m) continue;
    const le = m[1] === '+Inf' ? Infinity : Number(m[1]);
    buckets.set(le, (buckets.get(le) ?? 0) + Number(m[2]));
  }
  return buckets;
}

/** What was observed between two scrapes of the same histogram. */
export function bucketsSince(before: Buckets, after: Buckets): Buckets {
  return new Map([...after].map(([le, n]) => [le, n - (before.get(le) ?? 0)]));
}

/**
 * Quantile q (0..1) estimated like Prometheus' histogram_quantile: linear within the bucket that
 * holds it; the highest finite bound when it falls in +Inf; NaN without observations.
 */
export function histogramQuantile(buckets: Buckets, q: number): number {
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const total = buckets.get(Infinity) ?? buckets.get(bounds[bounds.length - 1]!) ?? 0;
  if (total <= 0) return Number.NaN;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const le of bounds) {
    const count = buckets.get(le)!;
    if (count >= rank) {
      if (le === Infinity) return lower;
      return lower + (le - lower) * ((rank - below) / Math.max(1e-12, count - below));
    }
    lower = le;
    below = count;
  }
  return lower;
}

/** A Prometheus counter's value summed over its label sets (0 when absent). */
export function parseCounter(exposition: string, name: string): number {
  const pattern = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`);
  return exposition.split('\n').reduce((sum, line) => sum + Number(pattern.exec(line)?.[1] ?? 0), 0);
}

/** A Prometheus counter's value per label set (each line's labels parsed; lines without labels get {}). */
export function parseLabeledCounter(exposition: string, name: string): [Record<string, string>, number][] {
  const pattern = new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`);
  const out: [Record<string, string>, number][] = [];
  for (const line of exposition.split('\n')) {
    const m = pattern.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...(m[1] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    out.push([labels, Number(m[2])]);
  }
  return out;
}
