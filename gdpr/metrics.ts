// The gdpr processor's Prometheus metrics, declared once (infra/alarms.ts reads the names).
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ErasureRequest } from './processor.js';

export const GDPR_METRICS = {
  openRequests: 'taskflow_gdpr_open_requests',
  oldestOpenAge: 'taskflow_gdpr_oldest_open_request_age_seconds',
  completed: 'taskflow_gdpr_requests_completed_total',
  runFailures: 'taskflow_gdpr_request_run_failures_total',
} as const;

export interface GdprMetrics {
  /** After each look at the store: the open requests and how old the oldest is. */
  open(requests: readonly ErasureRequest[], now: Date): void;
  completed(): void;
  runFailed(code: string): void;
}

export function prometheusGdprMetrics(registry: Registry): GdprMetrics {
  const open = new Gauge({ name: GDPR_METRICS.openRequests, help: 'Erasure requests recorded and not yet complete', registers: [registry] });
  const oldest = new Gauge({ name: GDPR_METRICS.oldestOpenAge, help: 'Age of the oldest open erasure request (0 when none); the deadline is 72 h', registers: [registry] });
  const completed = new Counter({ name: GDPR_METRICS.completed, help: 'Erasure requests this process drove to complete', registers: [registry] });
  const failures = new Counter({ name: GDPR_METRICS.runFailures, help: 'Runs of a request that stopped on an error (retried on the next look)', labelNames: ['code'], registers: [registry] });
  return {
    open(requests, now) {
      open.set(requests.length);
      oldest.set(oldestOpenAgeSeconds(requests, now));
    },
    completed: () => completed.inc(),
    runFailed: (code) => failures.inc({ code }),
  };
}

export function oldestOpenAgeSeconds(requests: readonly ErasureRequest[], now: Date): number {
  const times = requests.filter((r) => r.step !== 'complete').map((r) => Date.parse(r.requestedAt));
  return times.length === 0 ? 0 : Math.max(0, (now.getTime() - Math.min(...times)) / 1000);
}
