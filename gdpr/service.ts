// `taskflow gdpr` (the service, started by `taskflow dev`): the tombstone processor. It looks at
// its request store every GDPR_POLL_INTERVAL_MS and drives each open request through the state
// machine (processor.ts): keys destroyed, every sink purged, every sink verified, complete. The
// request store is the processor's queue: `taskflow gdpr request` writes the request there and to
// the source database (which puts it on the stream for the other readers), so a processor that
// was down finds every request on its next look, and a request stopped by an error is retried.
// The sinks come from the launcher (cli/commands/gdpr.ts opens each <service>/erasure-sink.ts).
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createDynamoClient, createKmsClient } from '../lib/aws.js';
import type { ErasureSink } from '../lib/erasure.js';
import type { Logger } from '../lib/logger.js';
import { createRegistry, serveMetrics } from '../lib/metrics.js';
import { createSubjectKeyStore } from '../lib/subject-keys.js';
import type { GdprConfig } from './config.js';
import { prometheusGdprMetrics } from './metrics.js';
import { ErasureProcessor } from './processor.js';
import { DynamoRequestStore } from './request-store.js';

export interface RunningGdpr {
  metricsUrl: string;
  /** Resolves after the current look is done (a request in progress stops at its next step). */
  stop(): Promise<void>;
}

export async function startGdpr(config: GdprConfig, logger: Logger, sinks: readonly ErasureSink[], dynamo: DynamoDBClient = createDynamoClient(config.aws)): Promise<RunningGdpr> {
  const registry = createRegistry('gdpr');
  const metrics = prometheusGdprMetrics(registry);
  const store = new DynamoRequestStore(dynamo, config.requestsTable);
  const keys = createSubjectKeyStore(config.subjectKeys, dynamo, () => createKmsClient(config.aws));
  const stopping = new AbortController();
  const processor = new ErasureProcessor({
    store,
    keys,
    sinks,
    retry: { signal: stopping.signal },
    onProgress: (sink, done) => logger.debug({ sink, done }, 'purge progress'),
  });

  async function look(): Promise<void> {
    const open = await store.open();
    metrics.open(open, new Date());
    for (const r of open) {
      if (stopping.signal.aborted) return;
      try {
        const done = await processor.run(r.requestId);
        metrics.completed();
        logger.info({ requestId: r.requestId, ticket: r.ticket, sinks: Object.keys(done.sinks).length }, 'erasure request complete');
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'ERROR';
        metrics.runFailed(code);
        logger.warn({ requestId: r.requestId, code, err: (err as Error).message }, 'erasure request stopped; retried on the next look');
      }
    }
    metrics.open(await store.open(), new Date());
  }

  const metricsServer = await serveMetrics(registry, { port: config.metricsPort, host: config.metricsHost });
  const loop = (async () => {
    while (!stopping.signal.aborted) {
      await look().catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'could not read the erasure requests; trying again'));
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, config.pollMs);
        stopping.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
      });
    }
  })();
  logger.info({ metrics: metricsServer.url, table: config.requestsTable, sinks: sinks.map((s) => s.sink) }, 'gdpr processor started');
  return {
    metricsUrl: metricsServer.url,
    async stop() {
      stopping.abort();
      await loop;
      await new Promise<void>((resolve) => metricsServer.server.close(() => resolve()));
      dynamo.destroy();
    },
  };
}
