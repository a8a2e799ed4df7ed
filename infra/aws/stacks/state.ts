// DynamoDB: the tables the services own, built from the same list the local stack creates
// (infra/local/tables.ts, which takes its keys from the owning modules), with TTL and PITR.
import { RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type { Construct } from 'constructs';
import { TABLES, type TableSpec } from '../../local/tables.js';
import { importedKey } from './compliance.js';

function attribute(spec: TableSpec, role: 'HASH' | 'RANGE'): dynamodb.Attribute | undefined {
  const key = spec.table.KeySchema?.find((k) => k.KeyType === role);
  if (!key?.AttributeName) return undefined;
  const def = spec.table.AttributeDefinitions?.find((a) => a.AttributeName === key.AttributeName);
  const type = { S: dynamodb.AttributeType.STRING, N: dynamodb.AttributeType.NUMBER, B: dynamodb.AttributeType.BINARY }[def?.AttributeType ?? 'S'];
  return { name: key.AttributeName, type };
}

export class StateStack extends Stack {
  readonly tables: Record<string, dynamodb.TableV2> = {};

  constructor(scope: Construct, id: string, dataKey: kms.IKey, props?: StackProps) {
    super(scope, id, props);
    const key = importedKey(this, dataKey);
    for (const spec of TABLES) {
      const partitionKey = attribute(spec, 'HASH');
      if (!partitionKey) throw new Error(`table ${spec.key} has no HASH key`);
      const sortKey = attribute(spec, 'RANGE');
      this.tables[spec.key] = new dynamodb.TableV2(this, `Table-${spec.key}`, {
        tableName: spec.table.TableName,
        partitionKey,
        ...(sortKey ? { sortKey } : {}),
        billing: dynamodb.Billing.onDemand(),
        ...(spec.ttlAttribute ? { timeToLiveAttribute: spec.ttlAttribute } : {}),
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        encryption: dynamodb.TableEncryptionV2.customerManagedKey(key),
        deletionProtection: true,
        removalPolicy: RemovalPolicy.RETAIN,
      });
    }
  }
}
