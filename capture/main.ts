// Wiring of the capture service from its configuration: real clients, stores and metrics.
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createDynamoClient, createKinesisClient, createKmsClient } from '../lib/aws.js';
import { DynamoDeadLetterStore } from '../lib/dlq.js';
import type { Logger } from '../lib/logger.js';
import { createRegistry, serveMetrics } from '../lib/metrics.js';
import { createSubjectKeyStore } from '../lib/subject-keys.js';
import type { CaptureConfig } from './config.js';
import { prometheusCaptureMetrics } from './metrics.js';
import { SubjectKeyCache } from './personal-fields.js';
import { type PutRecordsFn, kinesisPutRecords } from './producer.js';
import { CaptureService } from './service.js';
import { CAPTURED_TABLES } from './slot-setup.js';
import { DynamoSlotRecordStore } from './slot-guard.js';
import { DynamoSnapshotJobStore, SnapshotRunner } from './snapshot.js';

export interface RunningCapture {
  service: CaptureService;
  snapshots: SnapshotRunner;
  metricsUrl: string;
  close(): Promise<void>;
}

/** Starts capture with its metrics endpoint; `wrapPut` lets fault-injection tests wrap the real client. */
export async function startCapture(config: CaptureConfig, logger: Logger, wrapPut: (put: PutRecordsFn) => PutRecordsFn = (p) => p): Promise<RunningCapture> {
  const kinesis = createKinesisClient(config.aws);
  const dynamo = createDynamoClient(config.aws);
  const registry = createRegistry('capture');
  const metrics = prometheusCaptureMetrics(registry);
  const keys = config.subjectKeys;
  const personalFields = keys ? new SubjectKeyCache(createSubjectKeyStore(keys, dynamo, () => createKmsClient(config.aws)), keys.cache) : undefined;
  const service = new CaptureService({
    config,
    logger,
    metrics,
    dlq: new DynamoDeadLetterStore(dynamo, config.dlqTable),
    slotRecords: new DynamoSlotRecordStore(dynamo, config.checkpointsTable),
    put: wrapPut(kinesisPutRecords(kinesis, config.streamName)),
    ...(personalFields ? { personalFields } : {}),
  });
  const { server, url } = await serveMetrics(registry, { port: config.metricsPort, host: config.metricsHost }, { live: () => ({ ok: true }), ready: () => service.health() });
  logger.info({ url }, 'metrics endpoint');
  const snapshots = new SnapshotRunner(service.pool, snapshotJobStore(dynamo, config), { chunkSize: config.snapshotChunkSize, source: config.source, db: config.dbName, logger, partition: config.partition });
  service.setObserver(snapshots);
  if (config.initialSnapshot) {
    void service.ready.then(({ firstStart }) => {
      if (firstStart) snapshots.request({ tables: [...CAPTURED_TABLES] });
    });
  }
  return {
    service,
    snapshots,
    metricsUrl: url,
    async close() {
      await service.stop();
      await new Promise((resolve) => server.close(resolve));
      kinesis.destroy();
      dynamo.destroy();
    },
  };
}

/** Where the snapshot job of this capture (database + slot) keeps its progress. */
export function snapshotJobStore(dynamo: DynamoDBClient, config: CaptureConfig): DynamoSnapshotJobStore {
  return new DynamoSnapshotJobStore(dynamo, config.checkpointsTable, `${config.dbName}/${config.slot}`);
}
