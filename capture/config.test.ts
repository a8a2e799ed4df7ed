import { describe, expect, it } from '@jest/globals';
import { loadConfig } from './config.js';

const base = { DATABASE_URL: 'postgres://u:p@127.0.0.1:5999/taskflow', CHANGE_STREAM_NAME: 'taskflow-changes', AWS_REGION: 'us-east-1' };

describe('capture loadConfig', () => {
  it('reads defaults and options', () => {
    const c = loadConfig({ ...base, CAPTURE_COMPRESSION: 'gzip', CAPTURE_AGGREGATE: 'false', KINESIS_ENDPOINT: 'http://127.0.0.1:4567' });
    expect(c).toMatchObject({ dbName: 'taskflow', source: '//taskflow/capture/taskflow', slot: 'taskflow_capture', compression: 'gzip', aggregate: false, aws: { kinesisEndpoint: 'http://127.0.0.1:4567' } });
  });

  it('fails fast naming the variable', () => {
    expect(() => loadConfig({ ...base, DATABASE_URL: undefined })).toThrow(/^DATABASE_URL: is required/);
    expect(() => loadConfig({ ...base, CHANGE_STREAM_NAME: '' })).toThrow(/^CHANGE_STREAM_NAME/);
    expect(() => loadConfig({ ...base, CAPTURE_SLOT: 'Bad-Slot' })).toThrow(/^CAPTURE_SLOT: must be a lower-case Postgres identifier/);
    expect(() => loadConfig({ ...base, CAPTURE_COMPRESSION: 'zstd' })).toThrow(/^CAPTURE_COMPRESSION: must be one of none, gzip/);
    expect(() => loadConfig({ ...base, METRICS_PORT: 'x' })).toThrow(/^METRICS_PORT/);
  });
});
