// What a running local stack looks like from the outside: written by `taskflow dev` to
// .taskflow/stack.json and by the test global setup, read by scripts, tests and tools.
// Services never read this file: the launcher turns it into environment variables (stackEnv).
import { readFileSync } from 'node:fs';
import { tableEnvVar } from './config.js';

export interface StackInfo {
  postgres: { url: string; host: string; port: number; database: string; user: string; dataDir: string };
  /** fanOutEndpoint: the enhanced fan-out stand-in (SubscribeToShard, RegisterStreamConsumer), infra/local/fanout.ts. */
  kinesis: { endpoint: string; fanOutEndpoint: string; region: string; streamName: string; shardCount: number };
  /** tables: logical name (leases, changelog, …) -> table name. */
  dynamodb: { endpoint: string; region: string; tables: Record<string, string> };
  mqtt: { tcpUrl: string; wsUrl: string };
  /** The local IoT data-plane endpoint (POST /topics/{topic}) for IoTDataPlaneClient. */
  iot: { dataEndpoint: string };
  /** The local S3: one folder per bucket under `dir`. */
  s3: { dir: string };
  /** The Firehose stand-in and its delivery stream of the change stream (raw archive: `prefix` in `bucket`). */
  firehose: { endpoint: string; deliveryStreamName: string; bucket: string; prefix: string; errorPrefix: string };
  /** HTTP endpoints of running services, e.g. { replay: 'http://127.0.0.1:1234', board: ... } */
  http: Record<string, string>;
  /** Root of every engine's files; removed on stop when ephemeral. */
  dataDir: string;
  ephemeral: boolean;
  pid: number;
}

export const DEFAULT_STACK_FILE = '.taskflow/stack.json';

export function readStackInfo(path = process.env.TASKFLOW_STACK_FILE ?? DEFAULT_STACK_FILE): StackInfo {
  return JSON.parse(readFileSync(path, 'utf8')) as StackInfo;
}

/** Environment variables through which services find the engines of a local stack. */
export function stackEnv(info: StackInfo): Record<string, string> {
  const tables = Object.fromEntries(Object.entries(info.dynamodb.tables).map(([key, name]) => [tableEnvVar(key), name]));
  return {
    DATABASE_URL: info.postgres.url,
    AWS_REGION: info.kinesis.region,
    KINESIS_ENDPOINT: info.kinesis.endpoint,
    // Where a fan-out reader (KINESIS_READER / ROUTER_READER=fanout) subscribes; polling readers ignore it.
    KINESIS_FANOUT_ENDPOINT: info.kinesis.fanOutEndpoint,
    ROUTER_FANOUT_ENDPOINT: info.kinesis.fanOutEndpoint,
    DYNAMODB_ENDPOINT: info.dynamodb.endpoint,
    IOT_DATA_ENDPOINT: info.iot.dataEndpoint,
    CHANGE_STREAM_NAME: info.kinesis.streamName,
    MQTT_URL: info.mqtt.tcpUrl,
    MQTT_WS_URL: info.mqtt.wsUrl,
    S3_DIR: info.s3.dir,
    FIREHOSE_ENDPOINT: info.firehose.endpoint,
    FIREHOSE_DELIVERY_STREAM: info.firehose.deliveryStreamName,
    ARCHIVE_BUCKET: info.firehose.bucket,
    ARCHIVE_PREFIX: info.firehose.prefix,
    ...tables,
  };
}
