// `taskflow search` put together: the Kinesis consumer (packages/stream, consumer name
// `search`) feeding one SearchShardProcessor per leased shard, the index (SQLite FTS5 locally,
// OpenSearch in production), the dead-letter store, the search API and /metrics.
import type { Server } from 'node:http';
import { createDynamoClient, createKinesisClient } from '../lib/aws.js';
import { deadLetterSink } from '@taskflow/stream';
import { DynamoDeadLetterStore } from '../lib/dlq.js';
import { createVerifier } from '../lib/jwt.js';
import { createConsumer, type Consumer } from '@taskflow/stream';
import type { Logger } from '../lib/logger.js';
import { consumerProbes, createRegistry, serveMetrics } from '../lib/metrics.js';
import { consumerPreparation } from '../lib/consumer-reading.js';
import { PerUserLimiter } from '../lib/user-limits.js';
import { validateEvent } from '../schemas/validate.js';
import { startSearchServer } from './api.js';
import type { SearchConfig } from './config.js';
import { openSearchIndex } from './engines.js';
import { prometheusSearchMetrics } from './metrics.js';
import { SEARCH_DLQ_SOURCE } from './redrive.js';
import type { SearchIndex } from './search-index.js';
import { SearchShardProcessor } from './shard-processor.js';

export interface RunningSearch {
  consumer: Consumer;
  index: SearchIndex;
  apiUrl: string;
  metricsUrl: string;
  /** 'graceful' releases leases; 'abandon' stops like a crash. */
  stop(mode?: 'graceful' | 'abandon'): Promise<void>;
}

export async function startSearch(config: SearchConfig, logger: Logger): Promise<RunningSearch> {
  const kinesis = createKinesisClient(config.aws);
  const dynamo = createDynamoClient(config.aws);
  const registry = createRegistry('search');
  const metrics = prometheusSearchMetrics(registry);
  const index = await openSearchIndex(config.engine);
  const dlq = new DynamoDeadLetterStore(dynamo, config.dlqTable);
  const sk = config.subjectKeys;
  // Decrypt, and the erased-subjects check: a replayed or late event of an erased person is blanked before it is applied.
  const prepare = consumerPreparation(sk, dynamo, config.aws, (err) => logger.warn({ err: err.message }, 'a personal field does not decrypt; indexed without it'));
  const deadLetters = deadLetterSink(dlq, SEARCH_DLQ_SOURCE, logger);

  const consumer = createConsumer({
    ...config.consumer,
    name: config.consumerName,
    kinesis,
    dynamo,
    processor: (shardId) => new SearchShardProcessor(shardId, { consumer: config.consumerName, index, deadLetters, validate: validateEvent, metrics: metrics.indexer, ...prepare }),
    metrics: registry,
    logger,
  });

  const api = await startSearchServer({ index, verify: createVerifier(config.jwt), maxResults: config.maxResults, limiter: new PerUserLimiter(config.limits), metrics: metrics.queries, logger }, config.port);
  const metricsServer = await serveMetrics(registry, { port: config.metricsPort, host: config.metricsHost }, consumerProbes(consumer));
  await consumer.start();
  logger.info({ api: api.url, metrics: metricsServer.url, engine: config.engine.kind, workerId: config.consumer.workerId }, 'search started');

  const close = (s: Server) => new Promise<void>((resolve) => s.close(() => resolve()));
  return {
    consumer,
    index,
    apiUrl: api.url,
    metricsUrl: metricsServer.url,
    async stop(mode = 'graceful') {
      await consumer.stop(mode);
      api.server.closeAllConnections();
      await Promise.all([close(api.server), close(metricsServer.server)]);
      await index.close();
      kinesis.destroy();
      dynamo.destroy();
    },
  };
}
