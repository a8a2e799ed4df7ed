// `taskflow analytics dlq redrive`: the analytics path's dead letters back on their way once the
// cause is fixed, through the shared helper (packages/stream/src/dead-letters.ts: each letter checked
// again with today's validator, the valid ones applied in commit order, marked redriven only once
// applied — a crash in between redrives them again, and the loader's event-id dedup keeps each
// event once in the warehouse).
// - The archiver's (source analytics-archiver: records that did not validate, or that Firehose
//   refused): put to the Firehose delivery stream as the archiver puts them (deliverAll: its
//   limits, partial failures, throttling); a line Firehose refuses again stays, with its answer.
// - The loader's quarantined lines (source analytics-loader, quarantine.ts): written as one new
//   archive object, which the running loader picks up like any other.
// - The loader's quarantined objects (not GZIP): the object at its key — replaced by a good copy
//   meanwhile — copied under a new key, screened again by the loader as it loads it.
import { randomUUID } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { BackoffPolicy } from '../lib/backoff.js';
import { redriveConsumerDeadLetters, type RedriveResult } from '@taskflow/stream';
import type { EventCheck } from '@taskflow/stream/events';
import type { DeadLetter, DeadLetterStore } from '../lib/dlq.js';
import type { ObjectStore } from '../lib/object-store.js';
import { DLQ_SOURCE as ARCHIVER_DLQ_SOURCE, deliverAll } from './archiver.js';
import { PUT_RECORD_BATCH_LIMITS } from './delivery-plan.js';
import type { DeliveryStreamPort } from './firehose.js';
import { LOADER_DLQ_SOURCE } from './quarantine.js';

export interface RedriveFilter {
  store: DeadLetterStore;
  validate: EventCheck;
  reason?: string;
  id?: string;
}

export async function redriveArchiverDeadLetters(opts: RedriveFilter & { stream: DeliveryStreamPort; backoff: BackoffPolicy }): Promise<RedriveResult> {
  const { stream, backoff, ...rest } = opts;
  return redriveConsumerDeadLetters({
    ...rest,
    source: ARCHIVER_DLQ_SOURCE,
    async apply(events) {
      const refused: { id: string; message: string }[] = [];
      const lineOf = new Map<Uint8Array, string>();
      const lines: Uint8Array[] = [];
      for (const e of events) {
        const line = Buffer.from(`${JSON.stringify(e.envelope)}\n`);
        if (line.length > PUT_RECORD_BATCH_LIMITS.bytesPerRecord) refused.push({ id: e.id, message: `record_too_large: ${line.length} bytes as a line, above Firehose's ${PUT_RECORD_BATCH_LIMITS.bytesPerRecord} per record` });
        else {
          lines.push(line);
          lineOf.set(line, e.id);
        }
      }
      for (const r of await deliverAll(stream, lines, { backoff })) refused.push({ id: lineOf.get(r.line)!, message: `refused by Firehose: ${r.message}` });
      return refused;
    },
  });
}

/** A quarantined line's letter has the line in its origin; a whole object's has none. */
const isLine = (d: DeadLetter) => d.origin.line !== undefined;

export async function redriveLoaderDeadLetters(opts: RedriveFilter & { archive: ObjectStore; prefix: string; now?: () => Date }): Promise<RedriveResult> {
  const { archive, prefix, now = () => new Date(), ...rest } = opts;
  let stream: string | undefined;
  const lines = await redriveConsumerDeadLetters({
    ...rest,
    source: LOADER_DLQ_SOURCE,
    only: (d) => {
      if (isLine(d)) stream ??= streamOf(d.origin.objectKey);
      return isLine(d);
    },
    async apply(events) {
      await archive.put(redriveKey(prefix, stream, now()), gzipSync(events.map((e) => `${JSON.stringify(e.envelope)}\n`).join('')));
    },
  });
  const objects: RedriveResult = { redriven: [], refused: [] };
  const candidates = opts.id ? [await opts.store.get(opts.id)].filter((d): d is DeadLetter => d !== undefined && d.redrivenAt === undefined) : await opts.store.list({ source: LOADER_DLQ_SOURCE });
  for (const d of candidates.filter((c) => c.source === LOADER_DLQ_SOURCE && !isLine(c) && (opts.reason === undefined || c.reason === opts.reason))) {
    const key = d.origin.objectKey!;
    let body: Uint8Array;
    try {
      body = await archive.get(key);
      gunzipSync(body);
    } catch (err) {
      objects.refused.push({ letter: d, message: `${key} is still not a GZIP object (replace it with a good copy first): ${(err as Error).message}` });
      continue;
    }
    await archive.put(redriveKey(prefix, streamOf(key), now()), body);
    await opts.store.markRedriven(d.id);
    objects.redriven.push(d);
  }
  return { redriven: [...lines.redriven, ...objects.redriven], refused: [...lines.refused, ...objects.refused] };
}

/** The `<stream>-<version>-` part of a Firehose key. */
function streamOf(key: string | undefined): string | undefined {
  return key === undefined ? undefined : /([^/]*-)\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f-]+(?:\.gz)?$/i.exec(key)?.[1];
}

/**
 * A new archive key at `at` in Firehose's layout, named as the quarantined object's delivery
 * stream (`stream`): the loader lists from its newest key's name and time on (loader.ts
 * listingStart), so the copy sorts among the stream's objects and neither it nor the objects
 * after it wait for a full listing.
 */
export function redriveKey(prefix: string, stream: string | undefined, at: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const [y, mo, d, h, mi, s] = [at.getUTCFullYear(), p(at.getUTCMonth() + 1), p(at.getUTCDate()), p(at.getUTCHours()), p(at.getUTCMinutes()), p(at.getUTCSeconds())];
  return `${prefix}${y}/${mo}/${d}/${h}/${stream ?? 'redrive-1-'}${y}-${mo}-${d}-${h}-${mi}-${s}-${randomUUID()}.gz`;
}
