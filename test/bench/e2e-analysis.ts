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
}

export interface SubscriptionCheck {
  /** Committed changes of the project never delivered. */
  lost: number;
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
  return {
    lost: comparison.lost.length,
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
