// SOC 2 and GDPR: the environment's KMS key (every stream, table and bucket; it also wraps the
// per-subject data keys of crypto-shredding, whose table the state stack builds from its
// declaration in lib/subject-keys.ts, without PITR), the audit bucket under Object Lock, and the
// audit trail's identity mapping (pseudonym → user id) in a bucket erasure can delete from.
import { Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import type { Settings } from '../settings.js';

export const AUDIT_RETENTION_DAYS = 400;

/** Server access logs of a stack's buckets (kept in that stack: a bucket policy shared across stacks would tie them in a cycle). */
export function accessLogsBucket(scope: Construct): s3.Bucket {
  return new s3.Bucket(scope, 'AccessLogs', {
    encryption: s3.BucketEncryption.S3_MANAGED,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
    lifecycleRules: [{ expiration: Duration.days(90) }],
    removalPolicy: RemovalPolicy.RETAIN,
  });
}

/** The environment's key as seen from another stack: grants then go to the principals' own
 *  policies (the key policy trusts the account), not to the key policy, which would make the
 *  compliance stack depend on every stack that uses the key. */
export function importedKey(scope: Construct, key: kms.IKey): kms.IKey {
  return kms.Key.fromKeyArn(scope, 'DataKey', key.keyArn);
}

export class ComplianceStack extends Stack {
  readonly key: kms.Key;
  readonly audit: s3.Bucket;
  readonly auditIdentities: s3.Bucket;
  readonly accessLogs: s3.Bucket;

  constructor(scope: Construct, id: string, settings: Pick<Settings, 'auditBucket' | 'auditIdentityBucket'>, props?: StackProps) {
    super(scope, id, props);
    this.key = new kms.Key(this, 'DataKey', { alias: 'alias/taskflow', enableKeyRotation: true, removalPolicy: RemovalPolicy.RETAIN, description: 'TaskFlow pipeline: streams, tables, archive; wraps per-subject data keys' });
    this.accessLogs = accessLogsBucket(this);
    this.audit = new s3.Bucket(this, 'Audit', {
      bucketName: settings.auditBucket,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      objectLockEnabled: true,
      objectLockDefaultRetention: s3.ObjectLockRetention.compliance(Duration.days(AUDIT_RETENTION_DAYS)),
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'audit/',
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // The identity mapping (audit/identities.ts): the trail's only mutable objects, which the
    // gdpr processor's pseudonym cut deletes. No Object Lock, and no versioning either: a
    // versioned bucket would keep the deleted mapping as a noncurrent version, and the link
    // from the pseudonym to the person with it.
    this.auditIdentities = new s3.Bucket(this, 'AuditIdentities', {
      bucketName: settings.auditIdentityBucket,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: false,
      // A mapping lives until its person is erased: nothing expires, only failed uploads are cleaned.
      lifecycleRules: [{ abortIncompleteMultipartUploadAfter: Duration.days(1) }],
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'audit-identities/',
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}
