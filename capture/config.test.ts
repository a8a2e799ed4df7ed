import { describe, expect, it } from '@jest/globals';
import { loadConfig } from './config.js';

const base = { DATABASE_URL: 'postgres://u:p@127.0.0.1:5999/taskflow', CHANGE_STREAM_NAME: 'taskflow-changes', AWS_REGION: 'us-east-1' };

describe('capture loadConfig', () => {
  it('reads defaults and options', () => {
    const c = loadConfig({ ...base, CAPTURE_COMPRESSION: 'gzip', CAPTURE_AGGREGATE: 'false', KINESIS_ENDPOINT: 'http://127.0.0.1:4567' });
    expect(c).toMatchObject({ dbName: 'taskflow', source: '//taskflow/capture/taskflow', slot: 'taskflow_capture', compression: 'gzip', aggregate: false, aws: { kinesisEndpoint: 'http://127.0.0.1:4567' } });
  });

  it('reads the hot-workspace settings; the clear level defaults to three quarters of the threshold', () => {
    expect(loadConfig(base).hotWorkspaces).toEqual({ threshold: 0.8, clearBelow: 0.6, windowMs: 5000, maxTracked: 10_000 });
    expect(loadConfig({ ...base, CAPTURE_HOT_WORKSPACE_THRESHOLD: '0.9', CAPTURE_HOT_WORKSPACE_WINDOW_MS: '10000' }).hotWorkspaces).toMatchObject({ threshold: 0.9, clearBelow: 0.675, windowMs: 10_000 });
    expect(loadConfig({ ...base, CAPTURE_HOT_WORKSPACE_THRESHOLD: '1', CAPTURE_HOT_WORKSPACE_CLEAR_BELOW: '.5' }).hotWorkspaces).toMatchObject({ threshold: 1, clearBelow: 0.5 });
  });

  it('fails fast naming the hot-workspace variable', () => {
    expect(() => loadConfig({ ...base, CAPTURE_HOT_WORKSPACE_THRESHOLD: '80%' })).toThrow(/^CAPTURE_HOT_WORKSPACE_THRESHOLD: must be a number above 0 and at most 1, got "80%"/);
    expect(() => loadConfig({ ...base, CAPTURE_HOT_WORKSPACE_THRESHOLD: '1.5' })).toThrow(/^CAPTURE_HOT_WORKSPACE_THRESHOLD/);
    expect(() => loadConfig({ ...base, CAPTURE_HOT_WORKSPACE_THRESHOLD: '0' })).toThrow(/^CAPTURE_HOT_WORKSPACE_THRESHOLD/);
    expect(() => loadConfig({ ...base, CAPTURE_HOT_WORKSPACE_CLEAR_BELOW: '0.8' })).toThrow(/^CAPTURE_HOT_WORKSPACE_CLEAR_BELOW: must be below CAPTURE_HOT_WORKSPACE_THRESHOLD \(0.8\)/);
    expect(() => loadConfig({ ...base, CAPTURE_HOT_WORKSPACE_WINDOW_MS: '500' })).toThrow(/^CAPTURE_HOT_WORKSPACE_WINDOW_MS: must be >= 1000/);
    expect(() => loadConfig({ ...base, CAPTURE_HOT_WORKSPACE_MAX_TRACKED: '0' })).toThrow(/^CAPTURE_HOT_WORKSPACE_MAX_TRACKED/);
  });

  it('encrypts personal fields only when told, with KMS or (in development only) the local KEK', () => {
    expect(loadConfig(base).subjectKeys).toBeUndefined();
    expect(loadConfig({ ...base, CAPTURE_ENCRYPT_PERSONAL_FIELDS: 'true', SUBJECT_KEYS_KMS_KEY_ID: 'alias/taskflow' }).subjectKeys).toMatchObject({ wrapping: { kind: 'kms', keyId: 'alias/taskflow' } });
    expect(loadConfig({ ...base, CAPTURE_ENCRYPT_PERSONAL_FIELDS: 'true', TASKFLOW_ENV: 'development' }).subjectKeys).toMatchObject({ wrapping: { kind: 'local' } });
    expect(() => loadConfig({ ...base, CAPTURE_ENCRYPT_PERSONAL_FIELDS: 'true' })).toThrow(/^SUBJECT_KEYS_KMS_KEY_ID: is required/);
  });

  it('takes a stable instance id for its replication connection, or host-pid', () => {
    expect(loadConfig({ ...base, CAPTURE_INSTANCE_ID: 'capture-0' }).instanceId).toBe('capture-0');
    expect(loadConfig(base).instanceId).toMatch(new RegExp(`-${process.pid}$`));
    expect(() => loadConfig({ ...base, CAPTURE_INSTANCE_ID: 'capture 0' })).toThrow(/^CAPTURE_INSTANCE_ID: must be 1-46 characters/);
    expect(() => loadConfig({ ...base, CAPTURE_INSTANCE_ID: 'x'.repeat(47) })).toThrow(/^CAPTURE_INSTANCE_ID/);
  });

  it('reads one partition of one by default (the names of today), and suffixes slot and publication of a partition', () => {
    expect(loadConfig(base)).toMatchObject({ partition: { index: 0, count: 1 }, slot: 'taskflow_capture', publication: 'taskflow_capture' });
    expect(loadConfig({ ...base, CAPTURE_PARTITIONS: '2', CAPTURE_PARTITION: '1', CAPTURE_SLOT: 'cap' })).toMatchObject({ partition: { index: 1, count: 2 }, slot: 'cap_p1of2', publication: 'taskflow_capture_p1of2' });
    expect(() => loadConfig({ ...base, CAPTURE_PARTITIONS: '2', CAPTURE_PARTITION: '2' })).toThrow(/^CAPTURE_PARTITION: must be below CAPTURE_PARTITIONS \(2\), got 2/);
    expect(() => loadConfig({ ...base, CAPTURE_PARTITIONS: '0' })).toThrow(/^CAPTURE_PARTITIONS/);
    expect(() => loadConfig({ ...base, CAPTURE_PARTITIONS: '2', CAPTURE_SLOT: 's'.repeat(60) })).toThrow(/^CAPTURE_SLOT: with the partition suffix/);
  });

  it('fails fast naming the variable', () => {
    expect(() => loadConfig({ ...base, DATABASE_URL: undefined })).toThrow(/^DATABASE_URL: is required/);
    expect(() => loadConfig({ ...base, CHANGE_STREAM_NAME: '' })).toThrow(/^CHANGE_STREAM_NAME/);
    expect(() => loadConfig({ ...base, CAPTURE_SLOT: 'Bad-Slot' })).toThrow(/^CAPTURE_SLOT: must be a lower-case Postgres identifier/);
    expect(loadConfig({ ...base, CAPTURE_COMPRESSION: 'zstd' }).compression).toBe('zstd');
    expect(() => loadConfig({ ...base, CAPTURE_COMPRESSION: 'lz4' })).toThrow(/^CAPTURE_COMPRESSION: must be one of none, gzip, zstd/);
    expect(() => loadConfig({ ...base, METRICS_PORT: 'x' })).toThrow(/^METRICS_PORT/);
  });
});
