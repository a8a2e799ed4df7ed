// `taskflow analytics load` put together: the archive's object store, the DuckDB warehouse, the
// polling loader and /metrics.
import { join } from 'node:path';
import { sleep } from '../lib/backoff.js';
import { ErasedSubjects } from '@taskflow/stream';
import { createDynamoClient, createKmsClient, createS3Client } from '../lib/aws.js';
import { createSubjectKeyStore } from '../lib/subject-keys.js';
import { DynamoDeadLetterStore } from '../lib/dlq.js';
import type { Logger } from '../lib/logger.js';
import { createRegistry, serveMetrics } from '../lib/metrics.js';
import { FsObjectStore, type ObjectStore, S3ObjectStore } from '../lib/object-store.js';
import type { LoaderConfig } from './config.js';
import { startApiServer } from '../lib/http-api.js';
import { createVerifier } from '../lib/jwt.js';
import { createAnalyticsHandler } from './api.js';
import { createErasureHandler, startErasureServer } from './erasure-api.js';
import { validateEvent } from '../schemas/validate.js';
import { Loader } from './loader.js';
import { type Quarantined, quarantineLetter, screenObject } from './quarantine.js';
import { prometheusLoaderMetrics } from './metrics.js';
import { applyRetention } from './retention.js';
import { runDataQuality } from './warehouse/dq.js';
import { DuckDbWarehouse } from './warehouse/duckdb.js';

export interface RunningLoader {
  warehouse: DuckDbWarehouse;
  metricsUrl: string;
  /** The analytics API, when ANALYTICS_API_PORT is set. */
  apiUrl: string | undefined;
  /** The internal erasure endpoint, when LOADER_ERASURE_PORT is set. */
  erasureUrl: string | undefined;
  stop(): Promise<void>;
}

export function archiveStore(config: Pick<LoaderConfig, 'aws' | 'archive'>): ObjectStore {
  const a = config.archive;
  return a.kind === 'folder' ? new FsObjectStore(join(a.dir, a.bucket)) : new S3ObjectStore(createS3Client(config.aws), a.bucket);
}

export async function startLoader(config: LoaderConfig, logger: Logger): Promise<RunningLoader> {
  const registry = createRegistry('analytics-loader');
  const exported = prometheusLoaderMetrics(registry);
  const metrics = exported.loader;
  const warehouse = await DuckDbWarehouse.open(config.warehousePath, { threads: 1 });
  exported.newestAtStart(await warehouse.newestEventTime());
  let lastDq = 0;
  const dataQuality = async (): Promise<void> => {
    if (config.dq.intervalMs === 0 || Date.now() - lastDq < config.dq.intervalMs) return;
    lastDq = Date.now();
    const results = await runDataQuality(warehouse, { ...config.dq, now: new Date() });
    exported.dataQuality(results);
    for (const r of results) {
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
  const dynamo = createDynamoClient(config.aws);
  const deadLetters = new DynamoDeadLetterStore(dynamo, config.dlqTable);
  const quarantine = {
    screen: (key: string, body: Uint8Array) => screenObject(key, body, validateEvent),
    put: async (parts: readonly Quarantined[]) => {
      for (const q of parts) await deadLetters.put(quarantineLetter(q));
    },
  };
  // The erased-subjects list: the subject-keys table's tombstones (written by gdpr's keys-destroyed step).
  const keys = config.subjectKeys ? createSubjectKeyStore(config.subjectKeys, dynamo, () => createKmsClient(config.aws)) : undefined;
  const erased = keys && config.subjectKeys ? new ErasedSubjects({ lookup: (subject) => keys.isDestroyed(subject), ttlMs: config.subjectKeys.cache.ttlMs }) : undefined;
  const loader = new Loader(store, config.archive.prefix, warehouse, logger, { metrics, ...config.listing, quarantine, ...(erased ? { erased } : {}) });
  // Ready while the last load pass succeeded (archive and warehouse reachable); wedged when no
  // pass ended for ten minutes beyond the poll interval (a large backlog is one long pass).
  let lastPass = { endedAt: Date.now(), ok: false };
  const metricsServer = await serveMetrics(registry, { port: config.metricsPort, host: config.metricsHost }, {
    live: () => ({ ok: Date.now() - lastPass.endedAt <= config.pollIntervalMs + 600_000 }),
    ready: () => ({ ok: lastPass.ok }),
  });
  // The board's analytics page reads the warehouse here: DuckDB has one process per file.
  const api = config.api ? await startApiServer(createAnalyticsHandler({ warehouse, verify: createVerifier(config.api.jwt), logger }), config.api.port, config.metricsHost) : undefined;
  // The gdpr processor purges the warehouse through the loader, for the same reason.
  const erasure = config.erasure ? await startErasureServer(createErasureHandler({ warehouse, verify: createVerifier(config.erasure.jwt), logger }), config.erasure.port, config.metricsHost) : undefined;
  const stopping = new AbortController();
  const loop = (async () => {
    while (!stopping.signal.aborted) {
      let loaded = 0;
      try {
        await retention();
        loaded = await loader.loadNew();
        if (loaded > 0) await dataQuality();
        lastPass = { endedAt: Date.now(), ok: true };
      } catch (err) {
        lastPass = { endedAt: Date.now(), ok: false };
        metrics.failed();
        logger.warn({ err }, 'load pass failed; retrying at the next poll');
      }
      // A pass that loaded something lists again at once: objects delivered while it loaded
      // would otherwise wait a poll interval more (bench:analytics' delivered → loaded).
      if (loaded === 0) await sleep(config.pollIntervalMs, stopping.signal);
    }
  })();
  logger.info({ metrics: metricsServer.url, ...(api ? { api: api.url } : {}), ...(erasure ? { erasure: erasure.url } : {}), warehouse: config.warehousePath, archive: config.archive }, 'loader started');
  return {
    warehouse,
    metricsUrl: metricsServer.url,
    apiUrl: api?.url,
    erasureUrl: erasure?.url,
    async stop() {
      stopping.abort();
      await loop;
      for (const s of [api, erasure]) {
        if (!s) continue;
        s.server.closeAllConnections();
        await new Promise<void>((resolve) => s.server.close(() => resolve()));
      }
      await new Promise<void>((resolve) => metricsServer.server.close(() => resolve()));
      await warehouse.close();
      dynamo.destroy();
    },
  };
}
