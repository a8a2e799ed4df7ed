// Wiring of the capture service from its configuration: real clients, stores and metrics.
import { createDynamoClient, createKinesisClient } from '../lib/aws.js';
import { DynamoDeadLetterStore } from '../lib/dlq.js';
import type { Logger } from '../lib/logger.js';
import { createRegistry, serveMetrics } from '../lib/metrics.js';
import type { CaptureConfig } from './config.js';
import { createCaptureMetrics } from './metrics.js';
import { type PutRecordsFn, kinesisPutRecords } from './producer.js';
import { CaptureService } from './service.js';
import { DynamoSlotRecordStore } from './slot-guard.js';

export interface RunningCapture {
  service: CaptureService;
  metricsUrl: string;
  close(): Promise<void>;
}

/** Starts capture with its metrics endpoint; `wrapPut` lets fault-injection tests wrap the real client. */
export async function startCapture(config: CaptureConfig, logger: Logger, wrapPut: (put: PutRecordsFn) => PutRecordsFn = (p) => p): Promise<RunningCapture> {
  const kinesis = createKinesisClient(config.aws);
  const dynamo = createDynamoClient(config.aws);
  const registry = createRegistry('capture');
  const metrics = createCaptureMetrics(registry);
  const { server, url } = await serveMetrics(registry, config.metricsPort);
  logger.info({ url }, 'metrics endpoint');
  const service = new CaptureService({
    config,
    logger,
    metrics,
    dlq: new DynamoDeadLetterStore(dynamo, config.dlqTable),
    slotRecords: new DynamoSlotRecordStore(dynamo, config.checkpointsTable),
    put: wrapPut(kinesisPutRecords(kinesis, config.streamName)),
  });
  return {
    service,
    metricsUrl: url,
    async close() {
      await service.stop();
      await new Promise((resolve) => server.close(resolve));
      kinesis.destroy();
      dynamo.destroy();
    },
  };
}
