// A complete consumer of the TaskFlow change stream: every change once, in order per workspace,
// handed to `onChange` (run directly, it prints one JSON line per change). Its leases and
// checkpoints are its own (consumer name `change-log`), so it never disturbs other readers.
// Run: CHANGE_STREAM_NAME=… KINESIS_ENDPOINT=… npx tsx packages/stream/examples/change-log.ts
import { pathToFileURL } from 'node:url';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import {
  type Consumer, type HighWaterMarks, type ShardProcessor, type StreamEvent,
  admitBatch, boundMarks, createConsumer, deadLetterSink, loadConsumerConfig, mergeMarks, readBatch, serializeMarks,
} from '@taskflow/stream';
import { createDynamoClient, createKinesisClient, loadAwsConfig } from '../../../lib/aws.js';
import { type Env, tableEnvVar } from '../../../lib/config.js';
import { DynamoDeadLetterStore, type DeadLetterStore } from '../../../lib/dlq.js';
import { type Logger, createLogger } from '../../../lib/logger.js';
import { validateEvent } from '../../../schemas/validate.js';

export interface ChangeLogOptions {
  env: Env;
  kinesis: KinesisClient;
  dynamo: DynamoDBClient;
  dlq: DeadLetterStore;
  onChange(event: StreamEvent): Promise<void> | void;
  logger?: Logger;
}

export function changeLog(o: ChangeLogOptions): Consumer {
  const logger = o.logger ?? createLogger('change-log');
  const deadLetters = deadLetterSink(o.dlq, 'change-log', logger);
  const metrics = { eventsIn: () => {}, deadLettered: () => {} };
  const processor = (shardId: string): ShardProcessor => {
    let marks: HighWaterMarks = new Map(); // per workspace: the last event handled (the dedup)
    return {
      // Resume with the marks checkpointed last, or (a child after a reshard) its parents'.
      initialize: async (init) => void (marks = mergeMarks(init.checkpoint ? [init.checkpoint.state] : init.parentStates.map((p) => p.state))),
      processRecords: async (batch, checkpointer) => {
        const events = await readBatch(batch, shardId, { consumer: 'change-log', validate: validateEvent, deadLetters, metrics }); // bad records → DLQ
        const admitted = admitBatch(marks, events); // drops redeliveries, restores per-workspace order
        for (const e of admitted.admitted) await o.onChange(e);
        marks = boundMarks(admitted.marks, 10_000);
        await checkpointer.checkpoint(undefined, serializeMarks(marks)); // after the work: at-least-once
      },
      shutdown: async (reason, checkpointer) => {
        if (reason !== 'lease_lost') await checkpointer?.checkpoint(undefined, serializeMarks(marks));
      },
    };
  };
  return createConsumer({ ...loadConsumerConfig(o.env), name: 'change-log', kinesis: o.kinesis, dynamo: o.dynamo, processor, logger });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const aws = loadAwsConfig(process.env);
  const dynamo = createDynamoClient(aws);
  const dlq = new DynamoDeadLetterStore(dynamo, process.env[tableEnvVar('dlq')] ?? 'taskflow-dlq');
  const consumer = changeLog({ env: process.env, kinesis: createKinesisClient(aws), dynamo, dlq, onChange: (e) => void console.log(JSON.stringify({ id: e.id, workspace: e.workspaceId, type: e.type })) });
  await consumer.start();
  process.once('SIGINT', () => void consumer.stop());
}
