// IRSA roles for the EKS workloads, least privilege: each service account may touch only the
// stream, tables and IoT actions its service uses. The manifests (workloads.ts) name these roles.
import { Stack, type StackProps } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type { Construct } from 'constructs';
import { clientIdPrefix } from '../../../lib/authz.js';
import { SUBJECT_KEYS_TABLE_KEY } from '../../../lib/subject-keys.js';
import type { Settings } from '../settings.js';
import { grantStream, grantTable } from '../grants.js';
import { importedKey } from './compliance.js';
import { serviceAccountName, type Workload } from '../workloads.js';

export interface ServicesDeps {
  changes: kinesis.IStream;
  presence: kinesis.IStream;
  consumers: Record<string, kinesis.CfnStreamConsumer>;
  tables: Record<string, dynamodb.ITableV2>;
  /** The environment's KMS key, which wraps the per-subject data keys (crypto-shredding). */
  dataKey: kms.IKey;
}

/** The router's MQTT client ids: `<service user>.<worker id>` (lib/authz.ts), service user ROUTER_SERVICE_USER's default. */
export const ROUTER_CLIENT_IDS = `${clientIdPrefix('service:router')}*`;

/** What lib/dlq.ts's writer calls (put: conditional PutItem, large entries in parts by BatchWriteItem; reads back by GetItem/BatchGetItem). */
const DLQ_WRITER = ['PutItem', 'BatchWriteItem', 'GetItem', 'BatchGetItem'];

export function roleName(settings: Settings, workload: Pick<Workload, 'name'>): string {
  return `taskflow-${settings.env}-${workload.name}`;
}

export class ServicesStack extends Stack {
  readonly roles: Record<string, iam.Role> = {};

  constructor(scope: Construct, id: string, settings: Settings, workloads: readonly Workload[], deps: ServicesDeps, props?: StackProps) {
    super(scope, id, props);
    const provider = iam.OpenIdConnectProvider.fromOpenIdConnectProviderArn(this, 'EksOidc', `arn:${this.partition}:iam::${this.account}:oidc-provider/${settings.eksOidcProvider}`);
    for (const w of workloads) {
      this.roles[w.name] = new iam.Role(this, `Role-${w.name}`, {
        roleName: roleName(settings, w),
        description: `IRSA role of the ${w.name} service account`,
        assumedBy: new iam.OpenIdConnectPrincipal(provider, {
          StringEquals: {
            [`${settings.eksOidcProvider}:sub`]: `system:serviceaccount:${settings.namespace}:${serviceAccountName(w)}`,
            [`${settings.eksOidcProvider}:aud`]: 'sts.amazonaws.com',
          },
        }),
      });
    }
    const table = (key: string) => {
      const t = deps.tables[key];
      if (!t) throw new Error(`no table ${key}`);
      return t;
    };
    const dataKey = importedKey(this, deps.dataKey);
    // Exactly the calls each service makes (docs/THREAT_MODEL.md's grants table, which
    // infra/aws/iam.test.ts holds equal to the synthesized policies), not CDK's grant* sets.
    const capture = this.roles.capture;
    if (capture) {
      grantStream(capture, deps.changes, ['PutRecords']);
      grantTable(capture, table('checkpoints'), ['GetItem', 'PutItem']);
      grantTable(capture, table('dlq'), DLQ_WRITER);
      // Personal fields: creates subject keys (GenerateDataKey, conditional PutItem) and reads them back (GetItem, Decrypt).
      grantTable(capture, table(SUBJECT_KEYS_TABLE_KEY), ['GetItem', 'PutItem']);
      dataKey.grant(capture, 'kms:GenerateDataKey', 'kms:Decrypt');
    }
    const router = this.roles.router;
    if (router) {
      for (const stream of [deps.changes, deps.presence]) grantStream(router, stream, ['ListShards', 'GetShardIterator', 'GetRecords']);
      const efo = deps.consumers.router;
      if (efo) router.addToPolicy(new iam.PolicyStatement({ actions: ['kinesis:SubscribeToShard', 'kinesis:DescribeStreamConsumer'], resources: [efo.attrConsumerArn] }));
      grantTable(router, table('leases'), ['Query', 'PutItem', 'DeleteItem']);
      grantTable(router, table('changelog'), ['Query', 'GetItem', 'PutItem']);
      grantTable(router, table('memberships'), ['Query', 'GetItem', 'PutItem']);
      grantTable(router, table('subscriptions'), ['Query', 'Scan', 'PutItem', 'BatchWriteItem']);
      grantTable(router, table('dlq'), DLQ_WRITER);
      // Decrypts personal fields for browsers: reads subject keys, never writes them (the key's Decrypt comes with the table).
      grantTable(router, table(SUBJECT_KEYS_TABLE_KEY), ['GetItem']);
      const iot = (resource: string) => `arn:${this.partition}:iot:${this.region}:${this.account}:${resource}`;
      router.addToPolicy(new iam.PolicyStatement({ actions: ['iot:Connect'], resources: [iot(`client/${ROUTER_CLIENT_IDS}`)] }));
      router.addToPolicy(new iam.PolicyStatement({ actions: ['iot:Publish'], resources: [iot('topic/taskflow/v1/ws/*')] }));
      router.addToPolicy(new iam.PolicyStatement({ actions: ['iot:Subscribe'], resources: [iot('topicfilter/$aws/events/subscriptions/*'), iot('topicfilter/$aws/events/presence/*')] }));
      router.addToPolicy(new iam.PolicyStatement({ actions: ['iot:Receive'], resources: [iot('topic/$aws/events/subscriptions/*'), iot('topic/$aws/events/presence/*')] }));
      // Revocation: disconnect a browser whose membership was removed.
      router.addToPolicy(new iam.PolicyStatement({ actions: ['iot:DeleteConnection'], resources: [iot('client/*')] }));
    }
  }
}
