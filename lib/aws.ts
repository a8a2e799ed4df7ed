// The one place AWS SDK clients are built. With endpoints set (local stack) they talk to
// kinesalite/dynalite/the local IoT publish route over HTTP/1.1 with dummy credentials; without
// them they use AWS's defaults (region and credentials from the environment / instance role).
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { IoTDataPlaneClient } from '@aws-sdk/client-iot-data-plane';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent } from 'node:http';
import { type Env, optionalStr, str } from './config.js';

export interface AwsConfig {
  region: string;
  kinesisEndpoint?: string;
  dynamodbEndpoint?: string;
  iotDataEndpoint?: string;
}

export function loadAwsConfig(env: Env): AwsConfig {
  const cfg: AwsConfig = { region: str(env, 'AWS_REGION', 'us-east-1') };
  const k = optionalStr(env, 'KINESIS_ENDPOINT');
  const d = optionalStr(env, 'DYNAMODB_ENDPOINT');
  const i = optionalStr(env, 'IOT_DATA_ENDPOINT');
  if (k) cfg.kinesisEndpoint = k;
  if (d) cfg.dynamodbEndpoint = d;
  if (i) cfg.iotDataEndpoint = i;
  return cfg;
}

// Local engines speak HTTP/1.1 only and accept any credentials.
const localCredentials = { accessKeyId: 'local', secretAccessKey: 'local' };

function localOptions(endpoint: string) {
  return {
    endpoint,
    credentials: localCredentials,
    requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true, maxSockets: 64 }) }),
  };
}

export function createKinesisClient(cfg: AwsConfig): KinesisClient {
  return new KinesisClient({ region: cfg.region, maxAttempts: 1, ...(cfg.kinesisEndpoint ? localOptions(cfg.kinesisEndpoint) : {}) });
}

export function createDynamoClient(cfg: AwsConfig): DynamoDBClient {
  return new DynamoDBClient({ region: cfg.region, ...(cfg.dynamodbEndpoint ? localOptions(cfg.dynamodbEndpoint) : {}) });
}

export function createIotDataClient(cfg: AwsConfig): IoTDataPlaneClient {
  return new IoTDataPlaneClient({ region: cfg.region, ...(cfg.iotDataEndpoint ? localOptions(cfg.iotDataEndpoint) : {}) });
}
