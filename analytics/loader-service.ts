// `taskflow analytics load` put together: the archive's object store, the DuckDB warehouse, the
// polling loader and /metrics.
import { join } from 'node:path';
import { Counter, Gauge, Histogram } from 'prom-client';
import { sleep } from '../lib/backoff.js';
import { createS3Client } from '../lib/aws.js';
import type { Logger } from '../lib/logger.js';
import { createRegistry, serveMetrics } from '../lib/metrics.js';
import { FsObjectStore, type ObjectStore, S3ObjectStore } from '../lib/object-store.js';
import type { LoaderConfig } from './config.js';
import { Loader, type LoaderMetrics } from './loader.js';
import { applyRetention } from './retention.js';
import { runDataQuality } from './warehouse/dq.js';
import { DuckDbWarehouse } from './warehouse/duckdb.js';

export const LOADER_METRICS = {
  objects: 'taskflow_loader_objects_loaded_total',
  events: 'taskflow_loader_events_loaded_total',
  loadSeconds: 'taskflow_loader_object_load_seconds',
  failures: 'taskflow_loader_failures_total',
  listings: 'taskflow_loader_archive_listings_total',
  listedKeys: 'taskflow_loader_archive_listed_keys_total',
  pending: 'taskflow_loader_archive_objects_pending',
  dqFailingRows: 'taskflow_dq_failing_rows',
  dqPassed: 'taskflow_dq_check_passed',
} as const;

export interface RunningLoader {
  warehouse: DuckDbWarehouse;
  metricsUrl: string;
  stop(): Promise<void>;
}

export function archiveStore(config: Pick<LoaderConfig, 'aws' | 'archive'>): ObjectStore {
  const a = config.archive;
  return a.kind === 'folder' ? new FsObjectStore(join(a.dir, a.bucket)) : new S3ObjectStore(createS3Client(config.aws), a.bucket);
}

export async function startLoader(config: LoaderConfig, logger: Logger): Promise<RunningLoader> {
  const registry = createRegistry('analytics-loader');
  const objects = new Counter({ name: LOADER_METRICS.objects, help: 'Archive objects loaded', registers: [registry] });
  const events = new Counter({ name: LOADER_METRICS.events, help: 'Events loaded into raw_events, by whether they were new', labelNames: ['new'], registers: [registry] });
  const seconds = new Histogram({ name: LOADER_METRICS.loadSeconds, help: 'Time to load one batch of objects (fetch, raw insert, curated MERGE, commit)', buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry] });
  const failures = new Counter({ name: LOADER_METRICS.failures, help: 'Load passes that failed (retried at the next poll)', registers: [registry] });
  const listings = new Counter({ name: LOADER_METRICS.listings, help: 'Archive listings, full or from the lookback (S3: one LIST request per 1,000 keys listed)', labelNames: ['kind'], registers: [registry] });
  const listedKeys = new Counter({ name: LOADER_METRICS.listedKeys, help: 'Keys the archive listings returned', labelNames: ['kind'], registers: [registry] });
  const pending = new Gauge({ name: LOADER_METRICS.pending, help: 'Archive objects not loaded yet at the last listing', registers: [registry] });
  const metrics: LoaderMetrics = {
    loaded(count, n, fresh, s) {
      objects.inc(count);
      events.inc({ new: 'true' }, fresh);
      events.inc({ new: 'false' }, n - fresh);
      seconds.observe(s);
    },
    failed: () => failures.inc(),
    listed(kind, keys, notLoaded) {
      listings.inc({ kind });
      listedKeys.inc({ kind }, keys);
      pending.set(notLoaded);
    },
  };
  const dqFailing = new Gauge({ name: LOADER_METRICS.dqFailingRows, help: 'Rows failing each data-quality check at its last run', labelNames: ['check'], registers: [registry] });
  const dqPassed = new Gauge({ name: LOADER_METRICS.dqPassed, help: '1 when the data-quality check passed at its last run', labelNames: ['check'], registers: [registry] });
  const warehouse = await DuckDbWarehouse.open(config.warehousePath, { threads: 1 });
  let lastDq = 0;
  const dataQuality = async (): Promise<void> => {
    if (config.dq.intervalMs === 0 || Date.now() - lastDq < config.dq.intervalMs) return;
    lastDq = Date.now();
    for (const r of await runDataQuality(warehouse, { ...config.dq, now: new Date() })) {
      dqFailing.set({ check: r.check }, r.failingRows);
      dqPassed.set({ check: r.check }, r.passed ? 1 : 0);
      if (!r.passed) logger.warn({ check: r.check, failingRows: r.failingRows, sample: r.sample }, 'data-quality check failed');
    }
  };
  const store = archiveStore(config);
  let lastRetention = -Infinity;
  const retention = async (): Promise<void> => {
    if (config.retention.intervalMs === 0 || Date.now() - lastRetention < config.retention.intervalMs) return;
    lastRetention = Date.now();
    const result = await applyRetention(store, config.archive.prefix, warehouse, config.retention, new Date());
    if (result.objectsDeleted || result.rawEventsDropped) logger.info(result, 'retention applied');
  };
  const loader = new Loader(store, config.archive.prefix, warehouse, logger, { metrics, ...config.listing });
  // Ready while the last load pass succeeded (archive and warehouse reachable); wedged when no
  // pass ended for ten minutes beyond the poll interval (a large backlog is one long pass).
  let lastPass = { endedAt: Date.now(), ok: false };
  const metricsServer = await serveMetrics(registry, { port: config.metricsPort, host: config.metricsHost }, {
    live: () => ({ ok: Date.now() - lastPass.endedAt <= config.pollIntervalMs + 600_000 }),
    ready: () => ({ ok: lastPass.ok }),
  });
  const stopping = new AbortController();
  const loop = (async () => {
    while (!stopping.signal.aborted) {
      try {
        await retention();
        if ((await loader.loadNew()) > 0) await dataQuality();
        lastPass = { endedAt: Date.now(), ok: true };
      } catch (err) {
        lastPass = { endedAt: Date.now(), ok: false };
        metrics.failed();
        logger.warn({ err }, 'load pass failed; retrying at the next poll');
      }
      await sleep(config.pollIntervalMs, stopping.signal);
    }
  })();
  logger.info({ metrics: metricsServer.url, warehouse: config.warehousePath, archive: config.archive }, 'loader started');
  return {
    warehouse,
    metricsUrl: metricsServer.url,
    async stop() {
      stopping.abort();
      await loop;
      await new Promise<void>((resolve) => metricsServer.server.close(() => resolve()));
      await warehouse.close();
    },
  };
}
