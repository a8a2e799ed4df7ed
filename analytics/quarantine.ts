// The loader's quarantine: the archive holds what Firehose delivered, and an object may still be
// bad — not GZIP, a line that is not JSON, an event the schemas refuse (a writer other than the
// archiver, an archiver bug, a corrupted copy). One such object must neither stop the loader (a
// batch failing in DuckDB would fail at every poll) nor reach the warehouse. So each object is
// screened before it is loaded, as every reader checks the stream (schemas/validate): the bad
// parts go to the dead-letter store (source `analytics-loader`, keyed by object and line, so a
// pass repeated after a crash stores them once), the rest is loaded, and the object is logged as
// loaded. `taskflow analytics dlq redrive --source loader` brings them back once fixed (redrive.ts).
import { gunzipSync, gzipSync } from 'node:zlib';
import type { DeadLetterInput } from '../lib/dlq.js';
import type { ValidationResult } from '../schemas/validate.js';

export const LOADER_DLQ_SOURCE = 'analytics-loader';

export type QuarantineReason = 'bad_gzip' | 'malformed_json' | Exclude<Extract<ValidationResult, { ok: false }>['reason'], 'not_an_object'>;

export interface Quarantined {
  objectKey: string;
  /** 1-based line of the object; absent: the whole object (it is not GZIP). */
  line?: number;
  reason: QuarantineReason;
  message: string;
  /** The line's bytes, or the whole object's. */
  payload: Uint8Array;
}

export interface ScreenedObject {
  key: string;
  /** What the warehouse loads: the object itself when every line passed, else its good lines (GZIP). */
  body: Uint8Array;
  quarantined: Quarantined[];
}

const NEWLINE = 0x0a;

/** An object's lines checked one by one; pure. */
export function screenObject(key: string, body: Uint8Array, validate: (input: unknown) => ValidationResult): ScreenedObject {
  let text: Buffer;
  try {
    text = gunzipSync(body);
  } catch (err) {
    return { key, body: EMPTY_GZIP, quarantined: [{ objectKey: key, reason: 'bad_gzip', message: (err as Error).message, payload: body }] };
  }
  const quarantined: Quarantined[] = [];
  const good: Buffer[] = [];
  let line = 0;
  for (let start = 0; start < text.length; ) {
    const nl = text.indexOf(NEWLINE, start);
    const end = nl === -1 ? text.length : nl;
    const bytes = text.subarray(start, end);
    start = end + 1;
    line++;
    // Blank lines carry nothing (DuckDB's newline-delimited reader skips them too).
    if (bytes.every((b) => b === 0x20 || b === 0x09 || b === 0x0d)) continue;
    const problem = lineProblem(bytes, validate);
    if (problem) quarantined.push({ objectKey: key, line, ...problem, payload: Buffer.from(bytes) });
    else good.push(bytes);
  }
  if (quarantined.length === 0) return { key, body, quarantined };
  // Rare (a bad object): the good lines again, compressed fast.
  return { key, body: gzipSync(Buffer.concat(good.flatMap((b) => [b, NEWLINE_BUF])), { level: 1 }), quarantined };
}

/** Why a line cannot be loaded, or undefined when it is a valid event. */
export function lineProblem(bytes: Uint8Array, validate: (input: unknown) => ValidationResult): { reason: QuarantineReason; message: string } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    return { reason: 'malformed_json', message: (err as Error).message };
  }
  const result = validate(parsed);
  if (result.ok) return undefined;
  return { reason: result.reason === 'not_an_object' ? 'malformed_json' : result.reason, message: result.message };
}

/** The dead letter of a quarantined part: keyed by object and line, so a repeated pass stores it once. */
export function quarantineLetter(q: Quarantined): DeadLetterInput {
  const origin: Record<string, string> = { objectKey: q.objectKey };
  if (q.line !== undefined) origin.line = String(q.line);
  return { source: LOADER_DLQ_SOURCE, reason: q.reason, message: q.message, payload: q.payload, origin, dedupeKey: `${q.objectKey}#${q.line ?? 'object'}` };
}

const NEWLINE_BUF = Buffer.of(NEWLINE);
const EMPTY_GZIP = gzipSync(Buffer.alloc(0));
