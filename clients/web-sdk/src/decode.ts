// Wire decoding, separate from connections: MQTT batch payloads (JSON, or gzip of it detected by
// the magic bytes 1F 8B) and replay API bodies, per schemas/CONTRACTS.md. Anything malformed is
// rejected with a DecodeError; the subscription then treats the message as never received and
// its gap detection fetches the range from the replay API.
import type { Change, ChangeEvent, FullChange, ThinChange } from './types.js';

export class DecodeError extends Error {
  override readonly name = 'DecodeError';
}

export interface Batch {
  readonly ws: string;
  readonly project: string;
  readonly mode: 'full' | 'thin';
  readonly fromSeq: number;
  readonly toSeq: number;
  readonly changes: readonly Change[];
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Most a gzipped batch may inflate to. IoT Core caps a message at 128 KB compressed; batch JSON
 * compresses about 10×, so 8 MiB leaves ample room while a 128 KB gzip bomb (which would inflate
 * to about 128 MB) is cut off before it can exhaust a browser tab.
 */
export const MAX_BATCH_BYTES = 8 * 1024 * 1024;

/** gunzip with the platform's DecompressionStream (browsers, Node ≥ 18): no dependency; stops at `maxBytes`. */
export async function gunzip(bytes: Uint8Array, maxBytes = MAX_BATCH_BYTES): Promise<Uint8Array> {
  const reader = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('gzip')).getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw new DecodeError(`gzip payload inflates beyond ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

const utf8 = new TextDecoder();

export async function decodeBatch(payload: Uint8Array): Promise<Batch> {
  const bytes = isGzip(payload) ? await gunzip(payload).catch((err: unknown) => fail(err instanceof DecodeError ? err.message : `bad gzip: ${String(err)}`)) : payload;
  if (bytes.byteLength > MAX_BATCH_BYTES) fail(`payload is larger than ${MAX_BATCH_BYTES} bytes`);
  let body: unknown;
  try {
    body = JSON.parse(utf8.decode(bytes));
  } catch {
    return fail('payload is not JSON');
  }
  return parseBatch(body);
}

export function parseBatch(body: unknown): Batch {
  const b = asObject(body, 'batch');
  if (b.v !== 1) fail(`unsupported batch version ${String(b.v)}`);
  const mode = b.mode;
  if (mode !== 'full' && mode !== 'thin') fail(`unknown mode ${String(mode)}`);
  const fromSeq = asSeq(b.fromSeq, 'fromSeq');
  const toSeq = asSeq(b.toSeq, 'toSeq');
  if (!Array.isArray(b.changes)) fail('changes is not an array');
  const changes = (b.changes as unknown[]).map((c) => (mode === 'full' ? parseFull(c) : parseThin(c)));
  for (const c of changes) if (c.seq < fromSeq || c.seq > toSeq) fail(`seq ${c.seq} outside ${fromSeq}..${toSeq}`);
  return { ws: asString(b.ws, 'ws'), project: asString(b.project, 'project'), mode, fromSeq, toSeq, changes };
}

export type ReplayBody =
  | { kind: 'ok'; changes: Change[]; latestSeq: number }
  | { kind: 'tooOld'; oldestSeq: number; latestSeq: number };

/**
 * A replay answer: 200 `{ changes, latestSeq }` or 410 `{ error: "resync_required", oldestSeq, latestSeq }`.
 * Each change is self-describing: `{ seq, event }` (full) or `{ seq, mode: "thin", id, type, time,
 * key, changed? }` (a router in thin mode keeps what its live messages carry), decoded to the same
 * Change the live messages give.
 */
export function parseReplay(status: 200 | 410, body: unknown): ReplayBody {
  const b = asObject(body, 'replay body');
  if (status === 410) return { kind: 'tooOld', oldestSeq: asSeq(b.oldestSeq, 'oldestSeq'), latestSeq: asSeq(b.latestSeq, 'latestSeq') };
  if (!Array.isArray(b.changes)) fail('changes is not an array');
  return { kind: 'ok', changes: (b.changes as unknown[]).map(parseReplayChange), latestSeq: asSeq(b.latestSeq, 'latestSeq') };
}

function parseReplayChange(value: unknown): Change {
  return asObject(value, 'change').mode === 'thin' ? parseThin(value) : parseFull(value);
}

function parseFull(value: unknown): FullChange {
  const c = asObject(value, 'change');
  const event = asObject(c.event, 'event');
  asString(event.id, 'event.id');
  asString(event.type, 'event.type');
  asObject(event.data, 'event.data');
  return { seq: asSeq(c.seq, 'seq'), mode: 'full', event: event as unknown as ChangeEvent };
}

function parseThin(value: unknown): ThinChange {
  const c = asObject(value, 'change');
  const changed = c.changed === undefined ? undefined : (c.changed as unknown);
  if (changed !== undefined && !(Array.isArray(changed) && changed.every((f) => typeof f === 'string'))) fail('changed is not a string list');
  return {
    seq: asSeq(c.seq, 'seq'),
    mode: 'thin',
    id: asString(c.id, 'id'),
    type: asString(c.type, 'type'),
    time: asString(c.time, 'time'),
    key: c.key === null ? null : asObject(c.key, 'key'),
    ...(changed === undefined ? {} : { changed: changed as string[] }),
  };
}

function asObject(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${what} is not an object`);
  return value as Record<string, unknown>;
}

function asString(value: unknown, what: string): string {
  if (typeof value !== 'string') fail(`${what} is not a string`);
  return value as string;
}

function asSeq(value: unknown, what: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) fail(`${what} is not a sequence number`);
  return value as number;
}

function fail(message: string): never {
  throw new DecodeError(message);
}
