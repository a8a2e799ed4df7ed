// The Lambda entry point of the IoT Core custom authorizer (deployment: infra/aws). Configuration
// from the environment, read once per container: JWT_JWKS_URL (RS256 key set; JWT_SECRET only
// for local use), JWT_ISSUER, JWT_AUDIENCE, AWS_REGION, IOT_ACCOUNT_ID, DYNAMODB_TABLE_MEMBERSHIPS,
// IOT_PUBLISHER_USER_IDS (comma-separated token subjects allowed to publish: the router's; `none`
// when the router publishes with its certificate, as deployed, so no token can ever publish).
import { createDynamoClient, loadAwsConfig } from '../lib/aws.js';
import { type Env, str, tableEnvVar } from '../lib/config.js';
import { createVerifier, loadJwtConfig } from '../lib/jwt.js';
import { createIotAuthorizer, type IotAuthorizerEvent, type IotAuthorizerResponse } from './iot-authorizer.js';
import { DynamoMembershipProjection } from '../lib/dynamo-memberships.js';
import { DEFAULT_ROUTER_SERVICE_USER } from '../lib/authz.js';

export function authorizerFromEnv(env: Env): (event: IotAuthorizerEvent) => Promise<IotAuthorizerResponse> {
  const aws = loadAwsConfig(env);
  const projection = new DynamoMembershipProjection(createDynamoClient(aws), str(env, tableEnvVar('memberships'), 'taskflow-memberships'));
  return createIotAuthorizer({
    verify: createVerifier(loadJwtConfig(env)),
    memberships: (userId) => projection.memberships(userId),
    account: { region: aws.region, accountId: str(env, 'IOT_ACCOUNT_ID') },
    publisherUserIds: parsePublisherUserIds(str(env, 'IOT_PUBLISHER_USER_IDS', DEFAULT_ROUTER_SERVICE_USER)),
  });
}

export function parsePublisherUserIds(value: string): string[] {
  if (value.trim() === 'none') return [];
  return value
    .split(',')
    .map((id) => id.trim())
    .filter((id) => id !== '');
}

let authorize: ((event: IotAuthorizerEvent) => Promise<IotAuthorizerResponse>) | undefined;

export async function handler(event: IotAuthorizerEvent): Promise<IotAuthorizerResponse> {
  authorize ??= authorizerFromEnv(process.env);
  return authorize(event);
}
