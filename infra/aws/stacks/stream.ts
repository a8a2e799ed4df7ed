// Kinesis: the change stream (shards from the cost model's peak), its EFO consumers, and the
// small presence stream the IoT rule fills with lifecycle events. Encrypted with the AWS-managed
// key: personal fields are already encrypted per subject, and a customer key would add KMS
// calls per producer and consumer.
import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type { Construct } from 'constructs';
import type { Settings } from '../settings.js';

export class StreamStack extends Stack {
  readonly changes: kinesis.Stream;
  readonly presence: kinesis.Stream;
  readonly consumers: Record<string, kinesis.CfnStreamConsumer> = {};

  constructor(scope: Construct, id: string, settings: Settings, props?: StackProps) {
    super(scope, id, props);
    this.changes = new kinesis.Stream(this, 'Changes', {
      streamName: settings.streamName,
      shardCount: settings.shards,
      streamMode: kinesis.StreamMode.PROVISIONED,
      retentionPeriod: Duration.hours(settings.retentionHours),
      encryption: kinesis.StreamEncryption.MANAGED,
    });
    for (const name of settings.efoConsumers) {
      const consumer = new kinesis.CfnStreamConsumer(this, `Efo-${name}`, { consumerName: name, streamArn: this.changes.streamArn });
      this.consumers[name] = consumer;
      // The readers' manifests take it from the ConfigMap the deployment fills with these (workloads.ts STREAM_CONSUMERS_CONFIG_MAP).
      new CfnOutput(this, `EfoConsumerArn${name}`, { value: consumer.attrConsumerArn, description: `ARN of the ${name} EFO consumer (key ${name} of the stream-consumers ConfigMap)` });
    }
    this.presence = new kinesis.Stream(this, 'Presence', {
      streamName: `${settings.streamName}-presence`,
      shardCount: 2,
      retentionPeriod: Duration.hours(24),
      encryption: kinesis.StreamEncryption.MANAGED,
    });
  }
}
