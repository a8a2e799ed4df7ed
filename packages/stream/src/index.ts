// @taskflow/stream: what every reader of the change stream needs. Start with ../README.md.
// Pure parts have their own entry points so that pure modules stay free of the AWS SDK:
// '@taskflow/stream/codec' (record forms) and '@taskflow/stream/events' (envelope decoding).
export { consumerHealth, createConsumer, listShards, type Consumer, type ConsumerHealth, type ConsumerOptions } from './consumer/consumer.js';
export { CONSUMER_SETTINGS, fanOutOf, loadConsumerConfig, readBudgetSettings, readerSettings, type ConsumerEnvConfig } from './consumer/config.js';
export type { Checkpointer, ProcessBatch, ShardInit, ShardProcessor, ShutdownReason, UserRecord } from './consumer/processor.js';
export { LeaseLostError } from './consumer/coordinator.js';
export { AT_TIMESTAMP_PREFIX, atTimestampOf, LATEST, SHARD_END, TRIM_HORIZON, type InitialPosition, type Lease, type Position, type ShardInfo, type StateRef, type StateSlot } from './consumer/leases.js';
export { liveLeases, planReset, type ResetPlan, type ResetTarget } from './consumer/reset.js';
export { DynamoLeaseStore, LEASE_TABLE_KEY, STATE_KEY_PREFIX, ensureLeaseTable, stateSlotKey } from './consumer/dynamo-lease-store.js';
export { MemoryLeaseStore, stateOf, type LeaseStore } from './consumer/lease-store.js';
export { DEFAULT_READ_BUDGET, PollingShardReader, type ReadBudget, type ShardReader, type ShardSubscription, type ReadBatch, type RawRecord, type StartingPosition } from './consumer/shard-reader.js';
export { FanOutShardReader, subscribePosition, type FanOutOptions } from './consumer/fanout-reader.js';
export { METRIC_NAMES, noopConsumerMetrics, prometheusConsumerMetrics, type ConsumerMetrics } from './consumer/metrics.js';
export { comparePositions, compareSequenceNumbers, recordsAfter, toUserRecords } from './consumer/user-records.js';
export * from './change-event.js';
export * from './dead-letters.js';
export * from './erased-subjects.js';
export * from './ordering.js';
export * from './record-codec.js';
