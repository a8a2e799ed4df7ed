// The one place AWS SDK clients are built. With endpoints set (local stack) they talk to
// kinesalite/dynalite/the local IoT publish route/the Firehose stand-in/s3rver over HTTP/1.1 with
// dummy credentials; without
// them they use AWS's defaults (region and credentials from the environment / instance role).
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { FirehoseClient } from '@aws-sdk/client-firehose';
import { S3Client } from '@aws-sdk/client-s3';
import { IoTDataPlaneClient } from '@aws-sdk/client-iot-data-plane';
import { KMSClient } from '@aws-sdk/client-kms';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent } from 'node:http';
import { type Env, optionalSetting, readSettings, stringSetting } from './config.js';

export interface AwsConfig {
  region: string;
  kinesisEndpoint?: string;
  dynamodbEndpoint?: string;
  iotDataEndpoint?: string;
  firehoseEndpoint?: string;
  /** An S3 API endpoint other than AWS's (s3rver locally): addressed path-style. */
  s3Endpoint?: string;
  /** How long a request may wait (default AWS_TIMEOUTS); tests shorten it. */
  timeouts?: AwsTimeouts;
}

export interface AwsTimeouts {
  /** TCP (and TLS) connect. */
  connectMs: number;
  /** From sending the request to the response's headers. */
  responseMs: number;
  /** Silence on the socket once the response has begun. */
  idleMs: number;
}

/**
 * Every AWS request gives up instead of waiting on a half-open connection: without a limit the
 * Kinesis client waits forever and DynamoDB's default is 5 minutes of silence, far past a shard
 * lease's 1.5 s failover, so one stuck call would stall a shard while its lease still looked alive.
 * A timed-out call fails as TimeoutError, which the SDK's retries and the services' own back-off
 * treat as transient. Calls answer in milliseconds; 10 s to the headers leaves room for a 5 MB
 * PutRecords on a slow link.
 */
export const AWS_TIMEOUTS: AwsTimeouts = { connectMs: 3_000, responseMs: 10_000, idleMs: 30_000 };
/** S3's timer includes uploading the body (audit segments, warehouse files): a minute. */
const S3_RESPONSE_MS = 60_000;

export const AWS_SETTINGS = {
  region: stringSetting({ name: 'AWS_REGION', default: 'us-east-1', meaning: 'AWS region of Kinesis, DynamoDB and IoT Core.' }),
  kinesisEndpoint: optionalSetting({ name: 'KINESIS_ENDPOINT', type: 'URL', default: "AWS's endpoint", meaning: 'Kinesis endpoint of a local engine (kinesalite): HTTP/1.1 with dummy credentials.' }),
  dynamodbEndpoint: optionalSetting({ name: 'DYNAMODB_ENDPOINT', type: 'URL', default: "AWS's endpoint", meaning: 'DynamoDB endpoint of a local engine (dynalite).' }),
  iotDataEndpoint: optionalSetting({ name: 'IOT_DATA_ENDPOINT', type: 'URL', default: "AWS's endpoint", meaning: 'IoT data-plane endpoint (the local broker\'s publish route, or the account\'s ATS endpoint).' }),
  firehoseEndpoint: optionalSetting({ name: 'FIREHOSE_ENDPOINT', type: 'URL', default: "AWS's endpoint", meaning: 'Firehose endpoint of the local stand-in (infra/local/firehose).' }),
  s3Endpoint: optionalSetting({ name: 'S3_ENDPOINT', type: 'URL', default: "AWS's endpoint", meaning: 'An S3 API endpoint other than AWS\'s (s3rver locally), addressed path-style.' }),
};

export function loadAwsConfig(env: Env): AwsConfig {
  const s = readSettings(env, AWS_SETTINGS);
  const cfg: AwsConfig = { region: s.region };
  if (s.kinesisEndpoint) cfg.kinesisEndpoint = s.kinesisEndpoint;
  if (s.dynamodbEndpoint) cfg.dynamodbEndpoint = s.dynamodbEndpoint;
  if (s.iotDataEndpoint) cfg.iotDataEndpoint = s.iotDataEndpoint;
  if (s.firehoseEndpoint) cfg.firehoseEndpoint = s.firehoseEndpoint;
  if (s.s3Endpoint) cfg.s3Endpoint = s.s3Endpoint;
  return cfg;
}

/**
 * AWS API calls this process has made, by API and command, counted by every client built here:
 * the per-request cost of the SDK (serialising, signing, HTTP) is most of a service's CPU, and
 * requests are what DynamoDB and Kinesis bill, so benchmarks and the cost model read them per change.
 */
const requestCounts = new Map<string, { api: string; command: string; count: number }>();

export function awsRequestCounts(): readonly { api: string; command: string; count: number }[] {
  return [...requestCounts.values()];
}

/** Counts a request sent past a client's middleware (lib/aws-direct.ts), as the SDK's are. */
export function countAwsRequest(api: string, command: string): void {
  const key = `${api} ${command}`;
  const entry = requestCounts.get(key) ?? { api, command, count: 0 };
  entry.count += 1;
  requestCounts.set(key, entry);
}

function counted<C extends KinesisClient | DynamoDBClient | FirehoseClient | S3Client | IoTDataPlaneClient | KMSClient>(api: string, client: C): C {
  // Widened once: every client's stack takes the same middleware, but their input/output types differ.
  (client.middlewareStack as unknown as { add(m: unknown, o: unknown): void }).add(
    (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => (args: unknown) => {
      countAwsRequest(api, context.commandName ?? 'unknown');
      return next(args);
    },
    { step: 'initialize', name: 'taskflowRequestCount' },
  );
  return client;
}

// Local engines speak HTTP/1.1 only and accept any credentials.
const localCredentials = { accessKeyId: 'local', secretAccessKey: 'local' };

function requestHandler(cfg: AwsConfig, local: boolean, responseMs?: number): NodeHttpHandler {
  const t = cfg.timeouts ?? AWS_TIMEOUTS;
  return new NodeHttpHandler({
    connectionTimeout: t.connectMs,
    requestTimeout: responseMs ?? t.responseMs,
    throwOnRequestTimeout: true,
    socketTimeout: t.idleMs,
    ...(local ? { httpAgent: new Agent({ keepAlive: true, maxSockets: 64 }) } : {}),
  });
}

/** The endpoint, credentials and request handler of a client: a local engine's or AWS's. */
function clientOptions(cfg: AwsConfig, endpoint: string | undefined, responseMs?: number) {
  return endpoint ? { endpoint, credentials: localCredentials, requestHandler: requestHandler(cfg, true, responseMs) } : { requestHandler: requestHandler(cfg, false, responseMs) };
}

export function createKinesisClient(cfg: AwsConfig): KinesisClient {
  return counted('kinesis', new KinesisClient({ region: cfg.region, maxAttempts: 1, ...clientOptions(cfg, cfg.kinesisEndpoint) }));
}

export function createDynamoClient(cfg: AwsConfig): DynamoDBClient {
  return counted('dynamodb', new DynamoDBClient({ region: cfg.region, ...clientOptions(cfg, cfg.dynamodbEndpoint) }));
}

export function createIotDataClient(cfg: AwsConfig): IoTDataPlaneClient {
  return counted('iot-data', new IoTDataPlaneClient({ region: cfg.region, ...clientOptions(cfg, cfg.iotDataEndpoint) }));
}

/** One attempt per call, like Kinesis': the archiver backs off on throttling itself (lib/backoff.ts). */
export function createFirehoseClient(cfg: AwsConfig): FirehoseClient {
  return counted('firehose', new FirehoseClient({ region: cfg.region, maxAttempts: 1, ...clientOptions(cfg, cfg.firehoseEndpoint) }));
}

/** s3rver takes the credentials it was started with (S3RVER/S3RVER by default) and path-style addressing only. */
export function createS3Client(cfg: AwsConfig, credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }): S3Client {
  if (!cfg.s3Endpoint) return counted('s3', new S3Client({ region: cfg.region, ...clientOptions(cfg, undefined, S3_RESPONSE_MS) }));
  return counted('s3', new S3Client({ region: cfg.region, ...clientOptions(cfg, cfg.s3Endpoint, S3_RESPONSE_MS), credentials, forcePathStyle: true }));
}

/** KMS has no local engine: development wraps subject keys with a local KEK instead (lib/subject-keys.ts). */
export function createKmsClient(cfg: AwsConfig): KMSClient {
  return counted('kms', new KMSClient({ region: cfg.region, ...clientOptions(cfg, undefined) }));
}
