// `taskflow dlq redrive`: put dead-lettered router events back on the change stream. They go on
// their workspace's shard (explicit hash key = what the workspace id as partition key would hash
// to) under a `redrive:` partition key, so the router lets them past the workspace's mark and
// the changelog lookup by id decides: an event that already has a seq is only re-published,
// never numbered twice (schemas/CONTRACTS.md says what other readers do with them).
//
// Each dead letter is checked first, exactly as the router will check it (record forms, then
// each user record's JSON and schema): one that would be dead-lettered again is refused with the
// reason, unless forced — redriving it would only move it from one DLQ entry to the next.
import { type KinesisClient, PutRecordCommand } from '@aws-sdk/client-kinesis';
import type { DeadLetter, DeadLetterStore } from '../lib/dlq.js';
import { hashKeyOf, workspaceOf } from '../lib/partition-key.js';
import { decodeRecord } from '@taskflow/stream/codec';
import { validateEvent } from '../schemas/validate.js';
import { decodeEvent, type EventCheck } from './event.js';
import { REDRIVE_PARTITION_PREFIX } from './shard-router.js';

/** Why the router would dead-letter these bytes again, or undefined when it would accept them. */
export function recheck(payload: Uint8Array, validate: EventCheck = validateEvent): { reason: string; message: string } | undefined {
  let userRecords: Uint8Array[];
  try {
    userRecords = decodeRecord(payload);
  } catch (err) {
    return { reason: 'undecodable_record', message: (err as Error).message };
  }
  for (const bytes of userRecords) {
    const decoded = decodeEvent(bytes, validate);
    if (!decoded.ok) return { reason: decoded.reason, message: decoded.message };
  }
  return undefined;
}

export interface RedriveOptions {
  store: DeadLetterStore;
  kinesis: KinesisClient;
  streamName: string;
  reason?: string;
  id?: string;
  /** Redrive even what would be dead-lettered again. */
  force?: boolean;
  validate?: EventCheck;
}

export interface RefusedRedrive {
  letter: DeadLetter;
  /** What the router would dead-letter it for now. */
  reason: string;
  message: string;
}

export interface RedriveOutcome {
  redriven: DeadLetter[];
  refused: RefusedRedrive[];
}

/** Redrives the matching router dead letters that now pass the router's checks (all of them with `force`). */
export async function redriveDeadLetters(opts: RedriveOptions): Promise<RedriveOutcome> {
  const candidates = opts.id ? [await opts.store.get(opts.id)].filter((d): d is DeadLetter => d !== undefined && d.redrivenAt === undefined) : await opts.store.list({ source: 'router' });
  const chosen = candidates.filter((d) => d.source === 'router' && (opts.reason === undefined || d.reason === opts.reason));
  const outcome: RedriveOutcome = { redriven: [], refused: [] };
  for (const d of chosen) {
    const problem = recheck(d.payload, opts.validate);
    if (problem && !opts.force) {
      outcome.refused.push({ letter: d, ...problem });
      continue;
    }
    const ws = workspaceOf(d.payload) ?? 'unknown';
    await opts.kinesis.send(
      new PutRecordCommand({ StreamName: opts.streamName, PartitionKey: `${REDRIVE_PARTITION_PREFIX}${ws}`, ExplicitHashKey: hashKeyOf(ws), Data: d.payload }),
    );
    await opts.store.markRedriven(d.id);
    outcome.redriven.push(d);
  }
  return outcome;
}
