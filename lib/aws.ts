// The one place AWS SDK clients are built. With endpoints set (local stack) they talk to
// kinesalite/dynalite/the local IoT publish route over HTTP/1.1 with dummy credentials; without
// them they use AWS's defaults (region and credentials from the environment / instance role).
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { IoTDataPlaneClient } from '@aws-sdk/client-iot-data-plane';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent } from 'node:http';
import { type Env, optionalSetting, readSettings, stringSetting } from './config.js';

export interface AwsConfig {
  region: string;
  kinesisEndpoint?: string;
  dynamodbEndpoint?: string;
  iotDataEndpoint?: string;
}

export const AWS_SETTINGS = {
  region: stringSetting({ name: 'AWS_REGION', default: 'us-east-1', meaning: 'AWS region of Kinesis, DynamoDB and IoT Core.' }),
  kinesisEndpoint: optionalSetting({ name: 'KINESIS_ENDPOINT', type: 'URL', default: "AWS's endpoint", meaning: 'Kinesis endpoint of a local engine (kinesalite): HTTP/1.1 with dummy credentials.' }),
  dynamodbEndpoint: optionalSetting({ name: 'DYNAMODB_ENDPOINT', type: 'URL', default: "AWS's endpoint", meaning: 'DynamoDB endpoint of a local engine (dynalite).' }),
  iotDataEndpoint: optionalSetting({ name: 'IOT_DATA_ENDPOINT', type: 'URL', default: "AWS's endpoint", meaning: 'IoT data-plane endpoint (the local broker\'s publish route, or the account\'s ATS endpoint).' }),
};

export function loadAwsConfig(env: Env): AwsConfig {
  const s = readSettings(env, AWS_SETTINGS);
  const cfg: AwsConfig = { region: s.region };
  if (s.kinesisEndpoint) cfg.kinesisEndpoint = s.kinesisEndpoint;
  if (s.dynamodbEndpoint) cfg.dynamodbEndpoint = s.dynamodbEndpoint;
  if (s.iotDataEndpoint) cfg.iotDataEndpoint = s.iotDataEndpoint;
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
