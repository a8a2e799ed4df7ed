// The search service's Prometheus metrics, declared once. The consumer library adds its own
// (iterator age, leases) to the same registry.
import { Counter, Histogram, type Registry } from 'prom-client';
import type { ApiOutcome } from '../lib/http-api.js';

export const SEARCH_METRICS = {
  eventsIn: 'taskflow_search_events_in_total',
  documentsWritten: 'taskflow_search_document_changes_total',
  truncates: 'taskflow_search_truncates_total',
  deadLettered: 'taskflow_search_dlq_total',
  applySeconds: 'taskflow_search_apply_seconds',
  commitToIndexed: 'taskflow_search_commit_to_indexed_seconds',
  queries: 'taskflow_search_queries_total',
  querySeconds: 'taskflow_search_query_seconds',
} as const;

export interface IndexerMetrics {
  eventsIn(n: number): void;
  applied(documentChanges: number, truncates: number, seconds: number, commitToIndexedSeconds: readonly number[]): void;
  deadLettered(reason: string): void;
}

export interface QueryMetrics {
  query(outcome: ApiOutcome, seconds: number): void;
}

export const noopIndexerMetrics: IndexerMetrics = { eventsIn() {}, applied() {}, deadLettered() {} };
export const noopQueryMetrics: QueryMetrics = { query() {} };

export function prometheusSearchMetrics(registry: Registry): { indexer: IndexerMetrics; queries: QueryMetrics } {
  const counter = (name: string, help: string, labelNames: string[] = []) => new Counter({ name, help, labelNames, registers: [registry] });
  const eventsIn = counter(SEARCH_METRICS.eventsIn, 'User records read from the change stream');
  const documents = counter(SEARCH_METRICS.documentsWritten, 'Task and comment changes applied to the index (stale and repeated ones included: they change nothing)');
  const truncates = counter(SEARCH_METRICS.truncates, 'TRUNCATE events of indexed tables applied');
  const dlq = counter(SEARCH_METRICS.deadLettered, 'Records sent to the dead-letter store', ['reason']);
  const queries = counter(SEARCH_METRICS.queries, 'Search API requests by outcome', ['outcome']);
  const apply = new Histogram({ name: SEARCH_METRICS.applySeconds, help: 'Time to apply one batch to the index durably', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5], registers: [registry] });
  const commitToIndexed = new Histogram({ name: SEARCH_METRICS.commitToIndexed, help: 'Commit time to searchable, per change', buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 60], registers: [registry] });
  const querySeconds = new Histogram({ name: SEARCH_METRICS.querySeconds, help: 'Search API request time', labelNames: ['outcome'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [registry] });
  return {
    indexer: {
      eventsIn: (n) => eventsIn.inc(n),
      applied(changes, truncated, seconds, lags) {
        documents.inc(changes);
        truncates.inc(truncated);
        apply.observe(seconds);
        for (const l of lags) commitToIndexed.observe(l);
      },
      deadLettered: (reason) => dlq.inc({ reason }),
    },
    queries: {
      query(outcome, seconds) {
        queries.inc({ outcome });
        querySeconds.observe({ outcome }, seconds);
      },
    },
  };
}
