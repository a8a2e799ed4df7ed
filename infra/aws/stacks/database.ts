// RDS PostgreSQL 17 (the instance exists; this declares what capture needs of it): logical
// replication, and the slot synchronization that keeps capture's slot on a promoted replica
// (the slot must be created with failover = true). Attach Primary to the source instance and
// Standby to its replica; both changes need a reboot.
import { Stack, type StackProps } from 'aws-cdk-lib';
import * as rds from 'aws-cdk-lib/aws-rds';
import type { Construct } from 'constructs';

export const SOURCE_DATABASE = 'taskflow';
/** The physical slot the standby replica streams through (named on the primary). */
export const STANDBY_SLOT = 'taskflow_standby';
export const PARAMETER_FAMILY = 'postgres17';

const common = {
  'rds.logical_replication': '1',
  // A slot whose reader fell this far behind is invalidated instead of filling the disk; the
  // capture-slot-retained-wal runbook then re-snapshots (MB).
  max_slot_wal_keep_size: String(100 * 1024),
  wal_sender_timeout: '30000',
};

export class DatabaseStack extends Stack {
  readonly primary: rds.CfnDBParameterGroup;
  readonly standby: rds.CfnDBParameterGroup;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    this.primary = new rds.CfnDBParameterGroup(this, 'Primary', {
      family: PARAMETER_FAMILY,
      description: 'TaskFlow source primary: logical replication; failover slots wait for the standby',
      parameters: { ...common, synchronized_standby_slots: STANDBY_SLOT },
    });
    this.standby = new rds.CfnDBParameterGroup(this, 'Standby', {
      family: PARAMETER_FAMILY,
      description: 'TaskFlow source standby replica: synchronizes failover logical slots from the primary',
      parameters: { ...common, sync_replication_slots: '1', hot_standby_feedback: '1', 'rds.logical_slot_sync_dbname': SOURCE_DATABASE },
    });
  }
}
