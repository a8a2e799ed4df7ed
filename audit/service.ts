// `taskflow audit` put together: the Kinesis consumer (packages/stream, consumer name
// `audit`) feeding one AuditShardWriter per leased shard, the segment store, the shared
// dead-letter store and /metrics.
import { createDynamoClient, createKinesisClient } from '../lib/aws.js';
import { DynamoDeadLetterStore } from '../lib/dlq.js';
import { createConsumer, type Consumer, ErasedSubjects } from '@taskflow/stream';
import { DynamoKeyTable, erasedSubjectLookup } from '../lib/subject-keys.js';
import type { Logger } from '../lib/logger.js';
import { consumerProbes, createRegistry, serveMetrics } from '../lib/metrics.js';
import { validateEvent } from '../schemas/validate.js';
import type { AuditConfig } from './config.js';
import { prometheusAuditMetrics } from './metrics.js';
import { Pseudonymizer } from './record.js';
import { AUDIT_DLQ_SOURCE, type AuditDeadLetter, AuditShardWriter } from './shard-writer.js';
import { describeAuditStore, openAuditStore } from './open-store.js';
import type { AuditStore } from './store.js';

export interface RunningAudit {
  consumer: Consumer;
  store: AuditStore;
  metricsUrl: string;
  /** 'graceful' checkpoints and releases leases; 'abandon' stops like a crash. */
  stop(mode?: 'graceful' | 'abandon'): Promise<void>;
}

/** The audit trail's entries in the shared dead-letter store, keyed by where the bad input came from. */
export function auditDeadLetters(dlq: DynamoDeadLetterStore, logger: Logger): { put(l: AuditDeadLetter): Promise<void> } {
  return {
    async put(l) {
      const origin = { shardId: l.origin.shardId, sequenceNumber: l.origin.sequenceNumber, subSequenceNumber: String(l.origin.subSequenceNumber) };
      // Keyed by the Kinesis record: reprocessing it after a crash finds the entry already there.
      await dlq.put({ source: AUDIT_DLQ_SOURCE, reason: l.reason, message: l.message, payload: l.bytes, origin, dedupeKey: `${AUDIT_DLQ_SOURCE}/${origin.shardId}/${origin.sequenceNumber}/${origin.subSequenceNumber}` });
      logger.warn({ reason: l.reason, origin }, 'event dead-lettered');
    },
  };
}

export async function startAudit(config: AuditConfig, logger: Logger, store: AuditStore = openAuditStore(config.store, config.aws)): Promise<RunningAudit> {
  const kinesis = createKinesisClient(config.aws);
  const dynamo = createDynamoClient(config.aws);
  const registry = createRegistry('audit');
  const metrics = prometheusAuditMetrics(registry);
  const deadLetters = auditDeadLetters(new DynamoDeadLetterStore(dynamo, config.dlqTable), logger);
  const pseudonyms = new Pseudonymizer(config.key);
  const knownIdentities = new Set<string>();
  const erased = new ErasedSubjects({ lookup: erasedSubjectLookup(new DynamoKeyTable(dynamo, config.erasedSubjects.table)), ttlMs: config.erasedSubjects.ttlMs });
  const consumer = createConsumer({
    ...config.consumer,
    name: config.consumerName,
    kinesis,
    dynamo,
    processor: (shardId) => new AuditShardWriter(shardId, { consumer: config.consumerName, store, deadLetters, validate: validateEvent, pseudonyms, knownIdentities, erased, metrics, logger, maxMarks: config.maxMarks, checkpointEveryMs: config.checkpointIntervalMs }),
    metrics: registry,
    logger,
  });
  const metricsServer = await serveMetrics(registry, { port: config.metricsPort, host: config.metricsHost }, consumerProbes(consumer));
  await consumer.start();
  logger.info({ metrics: metricsServer.url, store: describeAuditStore(config.store), consumer: config.consumerName, workerId: config.consumer.workerId }, 'audit started');
  return {
    consumer,
    store,
    metricsUrl: metricsServer.url,
    async stop(mode = 'graceful') {
      await consumer.stop(mode);
      await new Promise<void>((resolve) => metricsServer.server.close(() => resolve()));
      kinesis.destroy();
      dynamo.destroy();
    },
  };
}
