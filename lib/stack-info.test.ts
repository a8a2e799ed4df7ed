import { describe, expect, it } from '@jest/globals';
import { stackEnv, type StackInfo } from './stack-info.js';
import { tableEnvVar } from './config.js';

const info: StackInfo = {
  postgres: { url: 'postgres://u:p@127.0.0.1:1/taskflow', host: '127.0.0.1', port: 1, database: 'taskflow', user: 'u', dataDir: '/d/postgres' },
  kinesis: { endpoint: 'http://127.0.0.1:2', fanOutEndpoint: 'http://127.0.0.1:7', region: 'us-east-1', streamName: 'taskflow-changes', shardCount: 4 },
  dynamodb: { endpoint: 'http://127.0.0.1:3', region: 'us-east-1', tables: { leases: 'taskflow-leases', 'dead-letters': 'dlq-x' } },
  mqtt: { tcpUrl: 'mqtt://127.0.0.1:4', wsUrl: 'ws://127.0.0.1:5/mqtt' },
  iot: { dataEndpoint: 'http://127.0.0.1:5' },
  s3: { dir: '/d/s3' },
  firehose: { endpoint: 'http://127.0.0.1:6', deliveryStreamName: 'archive', bucket: 'bucket', prefix: 'raw/', errorPrefix: 'errors/' },
  http: {},
  dataDir: '/d',
  ephemeral: true,
  pid: 1,
};

describe('stackEnv', () => {
  it('gives services every engine address and one variable per table', () => {
    expect(stackEnv(info)).toEqual({
      DATABASE_URL: info.postgres.url,
      AWS_REGION: 'us-east-1',
      KINESIS_ENDPOINT: 'http://127.0.0.1:2',
      KINESIS_FANOUT_ENDPOINT: 'http://127.0.0.1:7',
      ROUTER_FANOUT_ENDPOINT: 'http://127.0.0.1:7',
      DYNAMODB_ENDPOINT: 'http://127.0.0.1:3',
      IOT_DATA_ENDPOINT: 'http://127.0.0.1:5',
      CHANGE_STREAM_NAME: 'taskflow-changes',
      MQTT_URL: 'mqtt://127.0.0.1:4',
      MQTT_WS_URL: 'ws://127.0.0.1:5/mqtt',
      S3_DIR: '/d/s3',
      FIREHOSE_ENDPOINT: 'http://127.0.0.1:6',
      FIREHOSE_DELIVERY_STREAM: 'archive',
      ARCHIVE_BUCKET: 'bucket',
      ARCHIVE_PREFIX: 'raw/',
      DYNAMODB_TABLE_LEASES: 'taskflow-leases',
      DYNAMODB_TABLE_DEAD_LETTERS: 'dlq-x',
    });
  });

  it('names table variables in upper snake case', () => {
    expect(tableEnvVar('changelog')).toBe('DYNAMODB_TABLE_CHANGELOG');
    expect(tableEnvVar('router.v2-leases')).toBe('DYNAMODB_TABLE_ROUTER_V2_LEASES');
  });
});
