// `taskflow analytics archive` put together: the Kinesis consumer (its own lease name) feeding an
// ArchiverShardProcessor per leased shard, the Firehose client, the DLQ and /metrics.
import type { Server } from 'node:http';
import { createDynamoClient, createFirehoseClient, createKinesisClient } from '../lib/aws.js';
import { DynamoDeadLetterStore } from '../lib/dlq.js';
import { createConsumer, type Consumer } from '@taskflow/stream';
import type { Logger } from '../lib/logger.js';
import { consumerProbes, createRegistry, serveMetrics } from '../lib/metrics.js';
import { validateEvent } from '../schemas/validate.js';
import { ArchiverShardProcessor } from './archiver.js';
import type { ArchiverConfig } from './config.js';
import { FirehoseDeliveryStream } from './firehose.js';
import { prometheusArchiverMetrics } from './metrics.js';

export interface RunningArchiver {
  consumer: Consumer;
  metricsUrl: string;
  stop(mode?: 'graceful' | 'abandon'): Promise<void>;
}

export async function startArchiver(config: ArchiverConfig, logger: Logger): Promise<RunningArchiver> {
  const kinesis = createKinesisClient(config.aws);
  const dynamo = createDynamoClient(config.aws);
  const firehose = createFirehoseClient(config.aws);
  const registry = createRegistry('analytics-archiver');
  const metrics = prometheusArchiverMetrics(registry);
  const stream = new FirehoseDeliveryStream(firehose, config.deliveryStreamName);
  const deadLetters = new DynamoDeadLetterStore(dynamo, config.dlqTable);
  const consumer = createConsumer({
    ...config.consumer,
    name: config.consumerName,
    kinesis,
    dynamo,
    processor: (shardId) => new ArchiverShardProcessor(shardId, { consumer: config.consumerName, stream, deadLetters, validate: validateEvent, backoff: config.backoff, metrics, logger }),
    metrics: registry,
    logger,
  });
  const metricsServer = await serveMetrics(registry, { port: config.metricsPort, host: config.metricsHost }, consumerProbes(consumer));
  await consumer.start();
  logger.info({ metrics: metricsServer.url, deliveryStream: config.deliveryStreamName, consumer: config.consumerName, workerId: config.consumer.workerId }, 'archiver started');
  const close = (s: Server) => new Promise<void>((resolve) => s.close(() => resolve()));
  return {
    consumer,
    metricsUrl: metricsServer.url,
    async stop(mode = 'graceful') {
      await consumer.stop(mode);
      await close(metricsServer.server);
      kinesis.destroy();
      dynamo.destroy();
      firehose.destroy();
    },
  };
}
