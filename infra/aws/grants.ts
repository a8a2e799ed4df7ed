// Grants of exactly the actions a service calls, on one resource — instead of CDK's grant* sets
// (grantReadWriteData is ten DynamoDB actions, Scan and DeleteItem included). docs/THREAT_MODEL.md
// lists every role's grants; infra/aws/iam.test.ts holds the synthesized policies equal to it.
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';

/** These DynamoDB actions on one table (only on items whose partition key is one of `leadingKeys`, when given), and on its encryption key what they need (CDK's sets: reads decrypt, writes also encrypt). */
export function grantTable(grantee: iam.IGrantable, table: dynamodb.ITableV2, actions: readonly string[], leadingKeys?: readonly string[]): void {
  const conditions = leadingKeys ? { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [...leadingKeys] } } : undefined;
  grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({ actions: actions.map((a) => `dynamodb:${a}`), resources: [table.tableArn], ...(conditions ? { conditions } : {}) }));
  const writes = actions.some((a) => /Put|Write|Update|Delete/.test(a));
  table.encryptionKey?.grant(grantee, 'kms:Decrypt', 'kms:DescribeKey', ...(writes ? ['kms:Encrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*'] : []));
}

/** These Kinesis actions on one stream (the streams use the AWS-managed key: nothing to grant on it). */
export function grantStream(grantee: iam.IGrantable, stream: kinesis.IStream, actions: readonly string[]): void {
  iam.Grant.addToPrincipal({ grantee, actions: actions.map((a) => `kinesis:${a}`), resourceArns: [stream.streamArn] });
}
