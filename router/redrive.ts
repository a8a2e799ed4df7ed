// `taskflow dlq redrive`: put dead-lettered router events back on the change stream. They go on
// their workspace's shard (explicit hash key = what the workspace id as partition key would hash
// to) under a `redrive:` partition key, so the router lets them past the workspace's mark and
// the changelog lookup by id decides: an event that already has a seq is only re-published,
// never numbered twice.
import { type KinesisClient, PutRecordCommand } from '@aws-sdk/client-kinesis';
import type { DeadLetter, DeadLetterStore } from '../lib/dlq.js';
import { hashKeyOf, workspaceOf } from '../lib/partition-key.js';
import { REDRIVE_PARTITION_PREFIX } from './shard-router.js';

export interface RedriveOptions {
  store: DeadLetterStore;
  kinesis: KinesisClient;
  streamName: string;
  reason?: string;
  id?: string;
}

/** Redrives the matching router dead letters; returns those redriven. */
export async function redriveDeadLetters(opts: RedriveOptions): Promise<DeadLetter[]> {
  const candidates = opts.id ? [await opts.store.get(opts.id)].filter((d): d is DeadLetter => d !== undefined && d.redrivenAt === undefined) : await opts.store.list({ source: 'router' });
  const chosen = candidates.filter((d) => d.source === 'router' && (opts.reason === undefined || d.reason === opts.reason));
  for (const d of chosen) {
    const ws = workspaceOf(d.payload) ?? 'unknown';
    await opts.kinesis.send(
      new PutRecordCommand({ StreamName: opts.streamName, PartitionKey: `${REDRIVE_PARTITION_PREFIX}${ws}`, ExplicitHashKey: hashKeyOf(ws), Data: d.payload }),
    );
    await opts.store.markRedriven(d.id);
  }
  return chosen;
}
