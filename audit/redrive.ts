// `taskflow audit redrive`: put the audit trail's dead letters back on the change stream, on
// their workspace's shard (explicit hash key) under the audit trail's redrive prefix. The writer
// takes a redriven event past its workspace's mark once (a `redriven/<event id>` marker makes a
// second redrive of it a no-op) and records it flagged `redriven`.
import { type KinesisClient, PutRecordCommand } from '@aws-sdk/client-kinesis';
import type { DeadLetter, DeadLetterStore } from '../lib/dlq.js';
import { hashKeyOf, workspaceOf } from '../lib/partition-key.js';
import { AUDIT_DLQ_SOURCE, AUDIT_REDRIVE_PREFIX } from './shard-writer.js';

export interface AuditRedriveOptions {
  store: DeadLetterStore;
  kinesis: KinesisClient;
  streamName: string;
  reason?: string;
  id?: string;
}

/** Redrives the matching audit dead letters; returns those redriven. */
export async function redriveAuditDeadLetters(opts: AuditRedriveOptions): Promise<DeadLetter[]> {
  const candidates = opts.id ? [await opts.store.get(opts.id)].filter((d): d is DeadLetter => d !== undefined && d.redrivenAt === undefined) : await opts.store.list({ source: AUDIT_DLQ_SOURCE });
  const chosen = candidates.filter((d) => d.source === AUDIT_DLQ_SOURCE && (opts.reason === undefined || d.reason === opts.reason));
  for (const d of chosen) {
    const ws = workspaceOf(d.payload) ?? 'unknown';
    await opts.kinesis.send(new PutRecordCommand({ StreamName: opts.streamName, PartitionKey: `${AUDIT_REDRIVE_PREFIX}${ws}`, ExplicitHashKey: hashKeyOf(ws), Data: d.payload }));
    await opts.store.markRedriven(d.id);
  }
  return chosen;
}
