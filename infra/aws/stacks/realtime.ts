// IoT Core: the custom authorizer (a Lambda bundled from router/iot-authorizer-lambda.ts, the
// same policy function the local broker's hooks use, lib/authz.ts), the rule that carries
// lifecycle and subscription events onto the presence stream, and the router's publishing
// identity: an IoT policy for its X.509 certificate (the document the authorizer would give the
// router, router/iot-authorizer.ts publisherPolicyDocuments) and the secret holding the
// certificate and key. The certificate is made from a CSR whose key never leaves the operator
// (infra/aws/README.md "The router's certificate"), so no private key passes through CloudFormation.
import { buildSync } from 'esbuild';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as iot from 'aws-cdk-lib/aws-iot';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secrets from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { DEFAULT_ROUTER_SERVICE_USER } from '../../../lib/authz.js';
import { tableEnvVar } from '../../../lib/config.js';
import { publisherPolicyDocuments } from '../../../router/iot-authorizer.js';
import { grantStream, grantTable } from '../grants.js';
import type { Settings } from '../settings.js';

const authorizerEntry = join(dirname(fileURLToPath(import.meta.url)), '../../../router/iot-authorizer-lambda.ts');
export const AUTHORIZER_RUNTIME = lambda.Runtime.NODEJS_24_X;
export const AUTHORIZER_NAME = 'taskflow-jwt';
/** The query-string parameter the browser's WebSocket URL carries the JWT in. */
export const AUTHORIZER_TOKEN_KEY = 'token';

/** Bundles the authorizer once per process: one file, AWS SDK included (no reliance on the runtime's copy). */
let bundleDir: string | undefined;
export function authorizerBundle(): string {
  if (bundleDir) return bundleDir;
  const dir = mkdtempSync(join(tmpdir(), 'taskflow-authorizer-'));
  buildSync({ entryPoints: [authorizerEntry], bundle: true, platform: 'node', target: 'node24', format: 'cjs', outfile: join(dir, 'index.js'), minify: true, legalComments: 'none', logLevel: 'error' });
  bundleDir = dir;
  return dir;
}

/** The Kubernetes Secret (synced from the Secrets Manager secret below) the router's pods mount: cert.pem and key.pem. */
export const ROUTER_MQTT_IDENTITY_SECRET = 'taskflow-router-mqtt';

export class RealtimeStack extends Stack {
  readonly authorizerFunction: lambda.Function;
  readonly routerIdentity: secrets.Secret;

  constructor(scope: Construct, id: string, settings: Settings, deps: { memberships: dynamodb.ITableV2; presence: kinesis.IStream }, props?: StackProps) {
    super(scope, id, props);
    this.authorizerFunction = new lambda.Function(this, 'Authorizer', {
      functionName: settings.authorizerFunctionName,
      runtime: AUTHORIZER_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      handler: 'index.handler',
      code: lambda.Code.fromAsset(authorizerBundle()),
      memorySize: 256,
      timeout: Duration.seconds(5),
      logGroup: new logs.LogGroup(this, 'AuthorizerLogs', { retention: logs.RetentionDays.ONE_MONTH }),
      environment: {
        JWT_JWKS_URL: settings.jwt.jwksUrl,
        JWT_ISSUER: settings.jwt.issuer,
        JWT_AUDIENCE: settings.jwt.audience,
        IOT_ACCOUNT_ID: this.account,
        // The router publishes with its certificate (below): no token, not even a router service
        // token, is ever given iot:Publish.
        IOT_PUBLISHER_USER_IDS: 'none',
        [tableEnvVar('memberships')]: deps.memberships.tableName,
      },
    });
    // lib/dynamo-memberships.ts's reads: the truncate marker (GetItem) and the user's memberships (Query).
    grantTable(this.authorizerFunction, deps.memberships, ['GetItem', 'Query']);
    const authorizer = new iot.CfnAuthorizer(this, 'JwtAuthorizer', {
      authorizerName: AUTHORIZER_NAME,
      authorizerFunctionArn: this.authorizerFunction.functionArn,
      // The JWT is itself signed and verified by the function; browsers cannot sign IoT tokens.
      signingDisabled: true,
      status: 'ACTIVE',
      enableCachingForHttp: false,
    });
    this.authorizerFunction.addPermission('IotInvoke', {
      principal: new iam.ServicePrincipal('iot.amazonaws.com'),
      sourceArn: authorizer.attrArn,
    });
    // The router's certificate policy: connect as the router's client ids (`service:router.<pod>-<n>`),
    // publish under taskflow/v1/ws/, and read the lifecycle topics it tracks subscribers on.
    const [routerDocument] = publisherPolicyDocuments(DEFAULT_ROUTER_SERVICE_USER, { region: settings.region, accountId: settings.account });
    const routerPolicy = new iot.CfnPolicy(this, 'RouterPolicy', { policyName: `taskflow-${settings.env}-router`, policyDocument: JSON.parse(routerDocument!) as Record<string, unknown> });
    this.routerIdentity = new secrets.Secret(this, 'RouterMqttIdentity', {
      secretName: `taskflow/${settings.env}/router-mqtt`,
      description: `The router's IoT certificate and private key (cert.pem, key.pem); synced into the Kubernetes Secret ${ROUTER_MQTT_IDENTITY_SECRET}`,
    });
    new CfnOutput(this, 'RouterPolicyName', { value: routerPolicy.ref, description: "Attach to the router's certificate (infra/aws/README.md)" });
    new CfnOutput(this, 'RouterIdentitySecretName', { value: this.routerIdentity.secretName, description: "Holds the router's certificate and key" });
    const ruleRole = new iam.Role(this, 'LifecycleRuleRole', { assumedBy: new iam.ServicePrincipal('iot.amazonaws.com') });
    grantStream(ruleRole, deps.presence, ['PutRecord']);
    new iot.CfnTopicRule(this, 'LifecycleRule', {
      ruleName: 'taskflow_lifecycle',
      topicRulePayload: {
        description: 'Subscribe, unsubscribe and disconnect events to the presence stream, keyed by client, for the router',
        sql: "SELECT *, topic() AS topic FROM '$aws/events/#' WHERE startswith(topic(), '$aws/events/subscriptions/') OR startswith(topic(), '$aws/events/presence/')",
        awsIotSqlVersion: '2016-03-23',
        ruleDisabled: false,
        actions: [{ kinesis: { streamName: deps.presence.streamName, partitionKey: '${clientId}', roleArn: ruleRole.roleArn } }],
      },
    });
  }
}
