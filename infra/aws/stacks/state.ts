// DynamoDB: the tables the services own, built from the same list the local stack creates
// (infra/local/tables.ts, which takes its keys from the owning modules), with TTL and PITR —
// except where the owner says a backup would undo an erasure (the subject keys). On-demand, but
// the two the stream's load writes steadily — the changelog (every transaction writes it) and the
// leases (every reader's checkpoints and renewals), the bill's DynamoDB line — are provisioned with
// auto scaling between the bounds the cost model derives (settings.changelogCapacity, leaseCapacity).
import { RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type { Construct } from 'constructs';
import { TABLES, type TableSpec } from '../../local/tables.js';
import type { TableCapacity } from '../cost/model.js';
import type { Settings } from '../settings.js';
import { importedKey } from './compliance.js';

type KeySchema = NonNullable<TableSpec['table']['KeySchema']>;

function attribute(spec: TableSpec, role: 'HASH' | 'RANGE', schema: KeySchema = spec.table.KeySchema ?? []): dynamodb.Attribute | undefined {
  const key = schema.find((k) => k.KeyType === role);
  if (!key?.AttributeName) return undefined;
  const def = spec.table.AttributeDefinitions?.find((a) => a.AttributeName === key.AttributeName);
  const type = { S: dynamodb.AttributeType.STRING, N: dynamodb.AttributeType.NUMBER, B: dynamodb.AttributeType.BINARY }[def?.AttributeType ?? 'S'];
  return { name: key.AttributeName, type };
}

/** The table's global secondary indexes (e.g. the notifications inbox's sparse `unread`), as the owner declares them. */
function secondaryIndexes(spec: TableSpec): dynamodb.GlobalSecondaryIndexPropsV2[] {
  return (spec.table.GlobalSecondaryIndexes ?? []).map((gsi) => {
    const partitionKey = attribute(spec, 'HASH', gsi.KeySchema ?? []);
    if (!gsi.IndexName || !partitionKey) throw new Error(`table ${spec.key}: an index without a name or HASH key`);
    const sortKey = attribute(spec, 'RANGE', gsi.KeySchema ?? []);
    const projection = gsi.Projection?.ProjectionType ?? 'ALL';
    return {
      indexName: gsi.IndexName,
      partitionKey,
      ...(sortKey ? { sortKey } : {}),
      projectionType: projection as dynamodb.ProjectionType,
      ...(projection === 'INCLUDE' ? { nonKeyAttributes: gsi.Projection?.NonKeyAttributes ?? [] } : {}),
    };
  });
}

function provisioned(c: TableCapacity): dynamodb.Billing {
  const target = c.targetUtilizationPercent;
  return dynamodb.Billing.provisioned({
    writeCapacity: dynamodb.Capacity.autoscaled({ minCapacity: c.write.min, maxCapacity: c.write.max, targetUtilizationPercent: target }),
    readCapacity: dynamodb.Capacity.autoscaled({ minCapacity: c.read.min, maxCapacity: c.read.max, targetUtilizationPercent: target }),
  });
}

/** Provisioned with those bounds, or on-demand (null: the cost model's lever says on-demand; the small tables). */
function billing(c: TableCapacity | null): dynamodb.Billing {
  return c ? provisioned(c) : dynamodb.Billing.onDemand();
}

export class StateStack extends Stack {
  readonly tables: Record<string, dynamodb.TableV2> = {};

  constructor(scope: Construct, id: string, dataKey: kms.IKey, capacity: Pick<Settings, 'changelogCapacity' | 'leaseCapacity'>, props?: StackProps) {
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
        globalSecondaryIndexes: secondaryIndexes(spec),
        billing: billing(spec.key === 'changelog' ? capacity.changelogCapacity : spec.key === 'leases' ? capacity.leaseCapacity : null),
        ...(spec.ttlAttribute ? { timeToLiveAttribute: spec.ttlAttribute } : {}),
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: spec.backups !== false },
        encryption: dynamodb.TableEncryptionV2.customerManagedKey(key),
        deletionProtection: true,
        removalPolicy: RemovalPolicy.RETAIN,
      });
    }
  }
}
