// The consumer's metrics port and its prom-client adapter; names are declared here once.
// Several consumers may share one registry: each metric is registered on first use and reused.
import { Counter, Gauge, type Registry } from 'prom-client';

export interface ConsumerMetrics {
  /** Kinesis MillisBehindLatest of the shard's last read. */
  iteratorAge(shardId: string, millis: number): void;
  recordsProcessed(shardId: string, count: number): void;
  checkpointed(shardId: string): void;
  leasesHeld(count: number): void;
  leaseTakeovers(count: number): void;
  /** Kinesis refused a GetRecords (ProvisionedThroughputExceeded): the shard's read budget is overspent. */
  readThrottled(shardId: string): void;
  /** The read budget held the next GetRecords back this long though records may be waiting. */
  budgetWait(shardId: string, ms: number): void;
  /** The shard is no longer read here (lease lost, finished, stopped): drop its series. */
  shardClosed(shardId: string): void;
}

export const noopConsumerMetrics: ConsumerMetrics = {
  iteratorAge: () => {},
  recordsProcessed: () => {},
  checkpointed: () => {},
  leasesHeld: () => {},
  leaseTakeovers: () => {},
  readThrottled: () => {},
  budgetWait: () => {},
  shardClosed: () => {},
};

export const METRIC_NAMES = {
  iteratorAge: 'kinesis_consumer_millis_behind_latest',
  recordsProcessed: 'kinesis_consumer_records_processed_total',
  checkpoints: 'kinesis_consumer_checkpoints_total',
  leasesHeld: 'kinesis_consumer_leases_held',
  leaseTakeovers: 'kinesis_consumer_lease_takeovers_total',
  readThrottled: 'kinesis_consumer_read_throttled_total',
  budgetWait: 'kinesis_consumer_read_budget_wait_seconds_total',
} as const;

function gauge(registry: Registry, name: string, help: string, labelNames: string[]): Gauge {
  return (registry.getSingleMetric(name) as Gauge | undefined) ?? new Gauge({ name, help, labelNames, registers: [registry] });
}

function counter(registry: Registry, name: string, help: string, labelNames: string[]): Counter {
  return (registry.getSingleMetric(name) as Counter | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
}

export function prometheusConsumerMetrics(registry: Registry, consumer: string, workerId: string): ConsumerMetrics {
  const age = gauge(registry, METRIC_NAMES.iteratorAge, 'How far the last read of a shard was behind its tip (ms)', ['consumer', 'shard']);
  const records = counter(registry, METRIC_NAMES.recordsProcessed, 'User records handed to processors', ['consumer', 'shard']);
  const checkpoints = counter(registry, METRIC_NAMES.checkpoints, 'Checkpoints written', ['consumer']);
  const held = gauge(registry, METRIC_NAMES.leasesHeld, 'Shard leases this worker holds', ['consumer', 'worker']);
  const takeovers = counter(registry, METRIC_NAMES.leaseTakeovers, 'Leases taken from another worker (expired or stolen)', ['consumer']);
  const throttled = counter(registry, METRIC_NAMES.readThrottled, 'GetRecords calls Kinesis refused (ProvisionedThroughputExceeded): the readers of the shard overspend its 5 calls/s or 2 MB/s', ['consumer', 'shard']);
  const budgetWait = counter(registry, METRIC_NAMES.budgetWait, "Time the consumer's own read budget held GetRecords back (self-throttled)", ['consumer', 'shard']);
  return {
    iteratorAge: (shard, millis) => age.set({ consumer, shard }, millis),
    recordsProcessed: (shard, count) => records.inc({ consumer, shard }, count),
    checkpointed: () => checkpoints.inc({ consumer }),
    leasesHeld: (count) => held.set({ consumer, worker: workerId }, count),
    leaseTakeovers: (count) => takeovers.inc({ consumer }, count),
    readThrottled: (shard) => throttled.inc({ consumer, shard }),
    budgetWait: (shard, ms) => budgetWait.inc({ consumer, shard }, ms / 1000),
    shardClosed: (shard) => age.remove({ consumer, shard }),
  };
}
