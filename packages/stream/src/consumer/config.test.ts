import { describe, expect, it } from '@jest/globals';
import { loadConsumerConfig } from './config.js';

describe('consumer config', () => {
  it('has production defaults and reads overrides', () => {
    expect(loadConsumerConfig({ KINESIS_WORKER_ID: 'w' })).toEqual({
      streamName: 'taskflow-changes',
      leaseTable: 'taskflow-leases',
      workerId: 'w',
      failoverTimeMs: 10_000,
      pollIntervalMs: 200,
      readBudget: { callsPerSecond: 0.75, bytesPerSecond: 256 * 1024 },
      minCallSpacingMs: undefined,
      fanOut: undefined,
      maxRecords: 1000,
      initialPosition: 'TRIM_HORIZON',
      shardSyncIntervalMs: 60_000,
      checkpointIntervalMs: 1000,
    });
    const local = loadConsumerConfig({ KINESIS_POLL_INTERVAL_MS: '20', KINESIS_INITIAL_POSITION: 'LATEST', DYNAMODB_TABLE_LEASES: 't', KINESIS_CHECKPOINT_INTERVAL_MS: '0' });
    expect(local).toMatchObject({ pollIntervalMs: 20, initialPosition: 'LATEST', leaseTable: 't', checkpointIntervalMs: 0 });
    expect(local.workerId).toMatch(/-\d+$/);
  });

  it('reads the read budget, and the spacing override for a local Kinesis', () => {
    expect(loadConsumerConfig({ KINESIS_READS_PER_SECOND: '1.5', KINESIS_READ_MB_PER_SECOND: '0.5', KINESIS_MIN_CALL_SPACING_MS: '0' })).toMatchObject({
      readBudget: { callsPerSecond: 1.5, bytesPerSecond: 512 * 1024 },
      minCallSpacingMs: 0,
    });
  });

  it('reads by enhanced fan-out only with a registered consumer', () => {
    expect(loadConsumerConfig({ KINESIS_READER: 'fanout', KINESIS_FANOUT_CONSUMER_ARN: 'arn:c', KINESIS_FANOUT_ENDPOINT: 'http://127.0.0.1:1' }).fanOut).toEqual({ consumerArn: 'arn:c', endpoint: 'http://127.0.0.1:1' });
    expect(() => loadConsumerConfig({ KINESIS_READER: 'fanout' })).toThrow(/KINESIS_FANOUT_CONSUMER_ARN/);
    expect(() => loadConsumerConfig({ KINESIS_READER: 'push' })).toThrow(/KINESIS_READER/);
  });

  it('refuses a budget beyond what a shard allows', () => {
    expect(() => loadConsumerConfig({ KINESIS_READS_PER_SECOND: '6' })).toThrow(/KINESIS_READS_PER_SECOND: must be <= 5/);
    expect(() => loadConsumerConfig({ KINESIS_READ_MB_PER_SECOND: '3' })).toThrow(/KINESIS_READ_MB_PER_SECOND: must be <= 2/);
    expect(() => loadConsumerConfig({ KINESIS_READS_PER_SECOND: 'fast' })).toThrow(/must be a number/);
    expect(() => loadConsumerConfig({ KINESIS_MIN_CALL_SPACING_MS: '-1' })).toThrow(/KINESIS_MIN_CALL_SPACING_MS/);
  });

  it('names the bad variable', () => {
    expect(() => loadConsumerConfig({ KINESIS_MAX_RECORDS: '20000' })).toThrow(/KINESIS_MAX_RECORDS/);
    expect(() => loadConsumerConfig({ KINESIS_INITIAL_POSITION: 'AT_TIMESTAMP' })).toThrow(/KINESIS_INITIAL_POSITION/);
    expect(() => loadConsumerConfig({ KINESIS_CHECKPOINT_INTERVAL_MS: '120000' })).toThrow(/KINESIS_CHECKPOINT_INTERVAL_MS/);
  });
});
