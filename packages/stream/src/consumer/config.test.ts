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
      minCallSpacingMs: 200,
      maxRecords: 1000,
      initialPosition: 'TRIM_HORIZON',
      shardSyncIntervalMs: 60_000,
    });
    const local = loadConsumerConfig({ KINESIS_POLL_INTERVAL_MS: '20', KINESIS_INITIAL_POSITION: 'LATEST', DYNAMODB_TABLE_LEASES: 't' });
    expect(local).toMatchObject({ pollIntervalMs: 20, initialPosition: 'LATEST', leaseTable: 't' });
    expect(local.workerId).toMatch(/-\d+$/);
  });

  it('names the bad variable', () => {
    expect(() => loadConsumerConfig({ KINESIS_MAX_RECORDS: '20000' })).toThrow(/KINESIS_MAX_RECORDS/);
    expect(() => loadConsumerConfig({ KINESIS_INITIAL_POSITION: 'AT_TIMESTAMP' })).toThrow(/KINESIS_INITIAL_POSITION/);
  });
});
