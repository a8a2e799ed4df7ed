// Analytics: the archiver's Firehose stream to the raw archive (gzipped NDJSON under hourly UTC
// prefixes, 30 days), and the curated rows' Firehose stream to Snowflake (Snowpipe Streaming),
// its failures backed up to the same bucket.
import { Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secrets from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import type { Settings } from '../settings.js';
import { accessLogsBucket, importedKey } from './compliance.js';

export const RAW_PREFIX = 'raw/';
export const RAW_RETENTION_DAYS = 30;
export const RAW_FILE_EXTENSION = '.gz';
export const RAW_DELIVERY_STREAM = 'taskflow-raw-archive';
export const CURATED_DELIVERY_STREAM = 'taskflow-curated-snowflake';

export class AnalyticsStack extends Stack {
  readonly archive: s3.Bucket;
  readonly firehoseRole: iam.Role;
  /** The archiver's delivery stream (Direct PUT). */
  readonly raw: firehose.CfnDeliveryStream;

  constructor(scope: Construct, id: string, settings: Settings, deps: { key: kms.IKey }, props?: StackProps) {
    super(scope, id, props);
    const key = importedKey(this, deps.key);
    const accessLogs = accessLogsBucket(this);
    this.archive = new s3.Bucket(this, 'RawArchive', {
      bucketName: settings.rawArchiveBucket,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'raw-archive/',
      lifecycleRules: [{ expiration: Duration.days(RAW_RETENTION_DAYS), abortIncompleteMultipartUploadAfter: Duration.days(1) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const logGroup = new logs.LogGroup(this, 'FirehoseLogs', { retention: logs.RetentionDays.ONE_MONTH });
    const logStream = new logs.LogStream(this, 'FirehoseLogStream', { logGroup });
    this.firehoseRole = new iam.Role(this, 'FirehoseRole', { assumedBy: new iam.ServicePrincipal('firehose.amazonaws.com') });
    // What Firehose's S3 delivery needs (AWS's documented policy), on this bucket only.
    this.firehoseRole.addToPolicy(new iam.PolicyStatement({ actions: ['s3:GetBucketLocation', 's3:ListBucket', 's3:ListBucketMultipartUploads'], resources: [this.archive.bucketArn] }));
    this.firehoseRole.addToPolicy(new iam.PolicyStatement({ actions: ['s3:AbortMultipartUpload', 's3:GetObject', 's3:PutObject'], resources: [this.archive.arnForObjects('*')] }));
    key.grantEncryptDecrypt(this.firehoseRole);
    logGroup.grantWrite(this.firehoseRole);
    const logging = { enabled: true, logGroupName: logGroup.logGroupName, logStreamName: logStream.logStreamName };
    this.raw = new firehose.CfnDeliveryStream(this, 'Raw', {
      deliveryStreamName: RAW_DELIVERY_STREAM,
      deliveryStreamType: 'DirectPut',
      deliveryStreamEncryptionConfigurationInput: { keyType: 'CUSTOMER_MANAGED_CMK', keyArn: key.keyArn },
      extendedS3DestinationConfiguration: {
        bucketArn: this.archive.bucketArn,
        roleArn: this.firehoseRole.roleArn,
        // The archiver gzips its records (analytics/record-packing.ts: Firehose bills the bytes it
        // receives), so Firehose must not compress again: it concatenates the gzip members into
        // multi-member gzip objects, named .gz as its own GZIP objects were (readers see no change).
        compressionFormat: 'UNCOMPRESSED',
        fileExtension: RAW_FILE_EXTENSION,
        // Firehose's default layout under the prefix: YYYY/MM/dd/HH/ in UTC of the oldest record.
        prefix: RAW_PREFIX,
        errorOutputPrefix: 'errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/',
        bufferingHints: { intervalInSeconds: 60, sizeInMBs: 64 },
        encryptionConfiguration: { kmsEncryptionConfig: { awskmsKeyArn: key.keyArn } },
        cloudWatchLoggingOptions: logging,
      },
    });
    const snowflakeKey = new secrets.Secret(this, 'SnowflakeKey', { description: 'Key pair of the Snowflake user Firehose loads as (user, private_key): set by the data team', encryptionKey: key });
    snowflakeKey.grantRead(this.firehoseRole);
    new firehose.CfnDeliveryStream(this, 'Curated', {
      deliveryStreamName: CURATED_DELIVERY_STREAM,
      deliveryStreamType: 'DirectPut',
      deliveryStreamEncryptionConfigurationInput: { keyType: 'CUSTOMER_MANAGED_CMK', keyArn: key.keyArn },
      snowflakeDestinationConfiguration: {
        accountUrl: settings.snowflake.accountUrl,
        database: settings.snowflake.database,
        schema: settings.snowflake.schema,
        table: settings.snowflake.table,
        roleArn: this.firehoseRole.roleArn,
        dataLoadingOption: 'JSON_MAPPING',
        secretsManagerConfiguration: { enabled: true, secretArn: snowflakeKey.secretArn, roleArn: this.firehoseRole.roleArn },
        bufferingHints: { intervalInSeconds: 0, sizeInMBs: 1 },
        retryOptions: { durationInSeconds: 300 },
        s3BackupMode: 'FailedDataOnly',
        s3Configuration: { bucketArn: this.archive.bucketArn, roleArn: this.firehoseRole.roleArn, prefix: 'snowflake-failed/', compressionFormat: 'GZIP', encryptionConfiguration: { kmsEncryptionConfig: { awskmsKeyArn: key.keyArn } } },
        cloudWatchLoggingOptions: logging,
      },
    });
  }
}
