// The analytics services' Prometheus metrics, declared once.
import { Counter, Histogram, type Registry } from 'prom-client';

export const ANALYTICS_METRICS = {
  archiverDelivered: 'taskflow_archiver_records_delivered_total',
  archiverRetried: 'taskflow_archiver_records_retried_total',
  archiverCalls: 'taskflow_archiver_put_record_batch_seconds',
  archiverDeadLettered: 'taskflow_archiver_dlq_total',
} as const;

export interface ArchiverMetrics {
  call(seconds: number, outcome: 'answered' | 'throttled'): void;
  delivered(n: number): void;
  retried(n: number, throttled: boolean): void;
  deadLettered(reason: string): void;
}

export const noopArchiverMetrics: ArchiverMetrics = { call() {}, delivered() {}, retried() {}, deadLettered() {} };

export function prometheusArchiverMetrics(registry: Registry): ArchiverMetrics {
  const delivered = new Counter({ name: ANALYTICS_METRICS.archiverDelivered, help: 'Events Firehose accepted', registers: [registry] });
  const retried = new Counter({ name: ANALYTICS_METRICS.archiverRetried, help: 'Records sent again after a partial failure or throttling', labelNames: ['throttled'], registers: [registry] });
  const calls = new Histogram({
    name: ANALYTICS_METRICS.archiverCalls,
    help: 'PutRecordBatch call time by outcome',
    labelNames: ['outcome'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const dlq = new Counter({ name: ANALYTICS_METRICS.archiverDeadLettered, help: 'Records sent to the dead-letter store', labelNames: ['reason'], registers: [registry] });
  return {
    call: (s, outcome) => calls.observe({ outcome }, s),
    delivered: (n) => delivered.inc(n),
    retried: (n, throttled) => retried.inc({ throttled: String(throttled) }, n),
    deadLettered: (reason) => dlq.inc({ reason }),
  };
}
