// The analytics services' Prometheus metrics, declared once.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { LoaderMetrics } from './loader.js';
import type { DqResult } from './warehouse/dq.js';

export const ANALYTICS_METRICS = {
  archiverDelivered: 'taskflow_archiver_records_delivered_total',
  archiverRetried: 'taskflow_archiver_records_retried_total',
  archiverCalls: 'taskflow_archiver_put_record_batch_seconds',
  archiverDeadLettered: 'taskflow_archiver_dlq_total',
  archiverFirehoseRecords: 'taskflow_archiver_firehose_records_total',
  archiverFirehoseBytes: 'taskflow_archiver_firehose_bytes_total',
} as const;

export interface ArchiverMetrics {
  call(seconds: number, outcome: 'answered' | 'throttled' | 'refused'): void;
  delivered(n: number): void;
  /** Records Firehose accepted and their bytes: what it bills (per record, in 5 KB units). */
  accepted(records: number, bytes: number): void;
  retried(n: number, throttled: boolean): void;
  deadLettered(reason: string): void;
}

export const noopArchiverMetrics: ArchiverMetrics = { call() {}, delivered() {}, accepted() {}, retried() {}, deadLettered() {} };

export function prometheusArchiverMetrics(registry: Registry): ArchiverMetrics {
  const delivered = new Counter({ name: ANALYTICS_METRICS.archiverDelivered, help: 'Events Firehose accepted', registers: [registry] });
  const records = new Counter({ name: ANALYTICS_METRICS.archiverFirehoseRecords, help: 'Firehose records (gzip members of packed lines) Firehose accepted', registers: [registry] });
  const bytes = new Counter({ name: ANALYTICS_METRICS.archiverFirehoseBytes, help: 'Bytes of the Firehose records Firehose accepted (what it bills, per record in 5 KB units)', registers: [registry] });
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
    accepted: (n, b) => {
      records.inc(n);
      bytes.inc(b);
    },
    retried: (n, throttled) => retried.inc({ throttled: String(throttled) }, n),
    deadLettered: (reason) => dlq.inc({ reason }),
  };
}

/** The loader's metrics (`taskflow analytics load`'s /metrics). */
export const LOADER_METRICS = {
  objects: 'taskflow_loader_objects_loaded_total',
  events: 'taskflow_loader_events_loaded_total',
  duplicates: 'taskflow_loader_duplicates_dropped_total',
  loadSeconds: 'taskflow_loader_object_load_seconds',
  failures: 'taskflow_loader_failures_total',
  listings: 'taskflow_loader_archive_listings_total',
  listedKeys: 'taskflow_loader_archive_listed_keys_total',
  pending: 'taskflow_loader_archive_objects_pending',
  quarantined: 'taskflow_loader_quarantined_total',
  oldestPending: 'taskflow_loader_archive_oldest_pending_seconds',
  freshness: 'taskflow_warehouse_freshness_seconds',
  dqFailingRows: 'taskflow_dq_failing_rows',
  dqPassed: 'taskflow_dq_check_passed',
} as const;

export interface PrometheusLoaderMetrics {
  loader: LoaderMetrics;
  /** The newest commit time the warehouse held at start (freshness until the first load). */
  newestAtStart(ms: number | undefined): void;
  dataQuality(results: readonly DqResult[]): void;
}

/**
 * Freshness and pending age are computed at scrape time against `now`: a loader that stopped
 * loading shows its warehouse ageing. Freshness is NaN while the warehouse holds no event.
 */
export function prometheusLoaderMetrics(registry: Registry, now: () => number = Date.now): PrometheusLoaderMetrics {
  const objects = new Counter({ name: LOADER_METRICS.objects, help: 'Archive objects loaded', registers: [registry] });
  const events = new Counter({ name: LOADER_METRICS.events, help: 'Events loaded into raw_events, by whether they were new', labelNames: ['new'], registers: [registry] });
  const duplicates = new Counter({ name: LOADER_METRICS.duplicates, help: 'Events of loaded objects already in raw_events (an archiver re-send), dropped', registers: [registry] });
  const seconds = new Histogram({ name: LOADER_METRICS.loadSeconds, help: 'Time to load one batch of objects (fetch, raw insert, curated MERGE, commit)', buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry] });
  const failures = new Counter({ name: LOADER_METRICS.failures, help: 'Load passes that failed (retried at the next poll)', registers: [registry] });
  const listings = new Counter({ name: LOADER_METRICS.listings, help: 'Archive listings, full or from the lookback (S3: one LIST request per 1,000 keys listed)', labelNames: ['kind'], registers: [registry] });
  const listedKeys = new Counter({ name: LOADER_METRICS.listedKeys, help: 'Keys the archive listings returned', labelNames: ['kind'], registers: [registry] });
  const pending = new Gauge({ name: LOADER_METRICS.pending, help: 'Archive objects not loaded yet at the last listing', registers: [registry] });
  const quarantined = new Counter({ name: LOADER_METRICS.quarantined, help: 'Archive object parts (lines, or whole objects that are not GZIP) quarantined in the dead-letter store instead of loaded, by reason', labelNames: ['reason'], registers: [registry] });
  let newest: number | undefined;
  let oldestPending: number | undefined;
  new Gauge({
    name: LOADER_METRICS.oldestPending,
    help: 'How long the oldest object not loaded at the last listing has been in the archive (0: none pending)',
    registers: [registry],
    collect() {
      this.set(oldestPending === undefined ? 0 : Math.max(0, (now() - oldestPending) / 1000));
    },
  });
  new Gauge({
    name: LOADER_METRICS.freshness,
    help: "Now minus the commit time of the warehouse's newest loaded event (NaN: no event yet)",
    registers: [registry],
    collect() {
      this.set(newest === undefined ? Number.NaN : (now() - newest) / 1000);
    },
  });
  const dqFailing = new Gauge({ name: LOADER_METRICS.dqFailingRows, help: 'Rows failing each data-quality check at its last run', labelNames: ['check'], registers: [registry] });
  const dqPassed = new Gauge({ name: LOADER_METRICS.dqPassed, help: '1 when the data-quality check passed at its last run', labelNames: ['check'], registers: [registry] });
  const advance = (ms: number | undefined) => {
    if (ms !== undefined && (newest === undefined || ms > newest)) newest = ms;
  };
  return {
    loader: {
      loaded(count, n, fresh, s, newestEventMs) {
        objects.inc(count);
        events.inc({ new: 'true' }, fresh);
        events.inc({ new: 'false' }, n - fresh);
        duplicates.inc(n - fresh);
        seconds.observe(s);
        advance(newestEventMs);
      },
      failed: () => failures.inc(),
      listed(kind, keys, notLoaded, oldestDeliveredMs) {
        listings.inc({ kind });
        listedKeys.inc({ kind }, keys);
        pending.set(notLoaded);
        oldestPending = oldestDeliveredMs;
      },
      quarantined: (reason) => quarantined.inc({ reason }),
    },
    newestAtStart: advance,
    dataQuality(results) {
      for (const r of results) {
        dqFailing.set({ check: r.check }, r.failingRows);
        dqPassed.set({ check: r.check }, r.passed ? 1 : 0);
      }
    },
  };
}
