// The reusable Kinesis consumer (KCL's lease design in TypeScript). Start with README.md here.
export { consumerHealth, createConsumer, listShards, type Consumer, type ConsumerHealth, type ConsumerOptions } from './consumer.js';
export { CONSUMER_SETTINGS, loadConsumerConfig, type ConsumerEnvConfig } from './config.js';
export type { Checkpointer, ProcessBatch, ShardInit, ShardProcessor, ShutdownReason, UserRecord } from './processor.js';
export { LeaseLostError } from './coordinator.js';
export { LATEST, SHARD_END, TRIM_HORIZON, type InitialPosition, type Position } from './leases.js';
export { DynamoLeaseStore, LEASE_TABLE_KEY, ensureLeaseTable } from './dynamo-lease-store.js';
export { MemoryLeaseStore, type LeaseStore } from './lease-store.js';
export { PollingShardReader, type ShardReader, type ShardSubscription, type ReadBatch, type RawRecord, type StartingPosition } from './shard-reader.js';
export { METRIC_NAMES, noopConsumerMetrics, prometheusConsumerMetrics, type ConsumerMetrics } from './metrics.js';
export { comparePositions, compareSequenceNumbers } from './user-records.js';
