// cdk-nag AwsSolutions findings this design accepts, each acknowledged on the construct it
// arises on, finding by finding, with the reason.
import { type CfnResource, Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type { PipelineApp } from './app.js';
import { RAW_PREFIX } from './stacks/analytics.js';

function accept(scope: IConstruct, findings: readonly string[], reason: string): void {
  for (const id of findings) Validations.of(scope).acknowledge({ id: `AwsSolutions::${id}`, reason });
}

/** CDK's KMS grants (tables, Firehose) name one key ARN; only the action names end in *. */
const KMS_GRANT = ['AwsSolutions-IAM5[Action::kms:GenerateDataKey*]', 'AwsSolutions-IAM5[Action::kms:ReEncrypt*]'];
const KMS_REASON = 'the actions are on the one environment key ARN (CDK grant), not on *';

export function acknowledgeFindings(s: PipelineApp['stacks'], settings: PipelineApp['settings']): void {
  const iot = (resource: string) => `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iot:${settings.region}:${settings.account}:${resource}]`;
  const router = s.services.roles.router;
  if (router) {
    if (s.services.routerPublishesByDataPlane) accept(router, [iot('topic/taskflow/v1/ws/*')], 'the router publishes to every project topic (taskflow/v1/ws/{workspace}/projects/{project}) through the data-plane API; browsers never get this role');
    if (!s.services.routerPublishesToTier) accept(router, [iot('client/*')], 'revocation: iot:DeleteConnection on any browser client whose membership was removed');
  }
  const roles = s.services.roles;
  // Every workload role gets CDK's table-key grant (the loader's: the dead-letter table's).
  for (const role of Object.values(roles)) accept(role, KMS_GRANT, KMS_REASON);
  const notifications = roles.notifications;
  if (notifications) accept(notifications, [iot('topic/taskflow/v1/ws/*/users/*')], "notifications publish to users' topics (taskflow/v1/ws/{workspace}/users/{user}) only; browsers never get this role");
  const loader = roles['analytics-loader'];
  if (loader) accept(loader, [`AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::${settings.rawArchiveBucket}/${RAW_PREFIX}*]`], 'the loader reads (and deletes past retention) the raw archive\'s objects under raw/ only');
  const objects = (bucket: string) => `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::${bucket}/*]`;
  const audit = roles.audit;
  if (audit) accept(audit, [objects(settings.auditBucket), objects(settings.auditIdentityBucket)], 'audit writes one object per segment, redrive mark and identity mapping, keys it cannot know in advance; each bucket holds only the audit trail, and the locked one grants no delete');
  const gdpr = roles.gdpr;
  if (gdpr) accept(gdpr, [objects(settings.auditIdentityBucket)], "the pseudonym cut reads every identity mapping and deletes the subject's; the bucket holds only those mappings");
  const archive = s.analytics.archive.node.defaultChild as CfnResource;
  accept(s.analytics.firehoseRole, [...KMS_GRANT, `AwsSolutions-IAM5[Resource::<${Stack.of(archive).getLogicalId(archive)}.Arn>/*]`], 'Firehose writes objects of its own archive bucket (bucket/*); KMS actions on the one key');
  accept(s.realtime.authorizerFunction, ['AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]'], 'AWSLambdaBasicExecutionRole only lets the authorizer write its own logs');
  accept(s.realtime.routerIdentity, ['AwsSolutions-SMG4'], "the router's IoT certificate is replaced by issuing one from a new CSR and attaching the router policy (infra/aws/README.md): Secrets Manager cannot rotate an IoT certificate");
  for (const secret of s.services.secrets) accept(secret, ['AwsSolutions-SMG4'], 'a value put by its owner (infra/aws/README.md, "Secrets"): the database role\'s password is rotated with the database, the audit key and the service token by re-putting them; Secrets Manager has no rotation function for these');
  accept(s.analytics, ['AwsSolutions-SMG4'], 'the Snowflake key pair is rotated in Snowflake by the data team (ALTER USER ... SET RSA_PUBLIC_KEY_2), then written to the secret: Secrets Manager cannot rotate it');
}
