// MQTT messages to browsers (schemas/CONTRACTS.md "MQTT messages to browsers"): one project's
// sequenced changes as one or more messages, each within the broker's size limit (IoT Core:
// 128 KB), in seq order, in `full` or `thin` mode, optionally gzipped.
import { gzipSync } from 'node:zlib';
import { isEntityChange } from '../schemas/types.js';
import { type ProjectRef, projectTopicOf } from '@taskflow/realtime';
import { type Envelope, type EnvelopeJson, envelopeJsonOf, jsonBytes, jsonChars, writeJson } from './event.js';
import type { SequencedChange } from './sequencer.js';

export type PayloadMode = 'full' | 'thin';

export interface MessageOptions {
  mode: PayloadMode;
  gzip: boolean;
  maxBytes: number;
}

export const IOT_CORE_MAX_MESSAGE_BYTES = 128 * 1024;

export interface OutboundMessage {
  topic: string;
  payload: Buffer;
  fromSeq: number;
  toSeq: number;
  count: number;
  /** Commit times (ms) of the changes, for the commit-to-publish histogram. */
  commitTimes: number[];
}

export function projectTopic(p: ProjectRef): string {
  return projectTopicOf(p.workspaceId, p.projectId);
}

/** What a thin message carries of one change besides its seq (also the changelog's thin entry, changelog.ts). */
export interface ThinFields {
  id: string;
  type: string;
  time: string;
  key: Record<string, unknown> | null;
  /** An update's data.changed as on the stream; absent for other ops. */
  changed?: string[];
}

export function thinFieldsOf(e: Envelope): ThinFields {
  // Only entity changes have a project, so only they reach a project topic.
  const data = isEntityChange(e) ? e.data : undefined;
  const thin: ThinFields = { id: e.id, type: e.type, time: e.time, key: (data?.key as Record<string, unknown> | undefined) ?? null };
  if (Array.isArray(data?.changed)) thin.changed = data.changed;
  return thin;
}

function thinChange(c: SequencedChange): { seq: number } & ThinFields {
  return { seq: c.seq, ...thinFieldsOf(c.event.envelope) };
}

/**
 * One change as it appears in a message's `changes` array, serialized once (sizing and encoding
 * share it): in full mode the envelope's JSON (the record's own bytes when unchanged), which the
 * message wraps as {"seq":…,"event":…}; in thin mode the whole entry.
 */
function changeJson(c: SequencedChange, mode: PayloadMode): EnvelopeJson {
  return mode === 'full' ? envelopeJsonOf(c.event.envelope) : JSON.stringify(thinChange(c));
}

const fullPrefix = (seq: number): string => `{"seq":${seq},"event":`;
/** `{"seq":` and `,"event":`, the prefix without its seq (ASCII: characters = bytes). */
const FULL_PREFIX_CHARS = fullPrefix(0).length - 1;

/** Characters (ASCII: bytes) of the wrapping of a full-mode entry around the envelope's JSON. */
function fullWrapLength(seq: number): number {
  return FULL_PREFIX_CHARS + String(seq).length + 1;
}

/** Characters of a change's entry in the message: its part plus, in full mode, the wrapping. */
function entryLength(seq: number, part: EnvelopeJson, mode: PayloadMode): number {
  return mode === 'full' ? fullWrapLength(seq) + jsonChars(part) : jsonChars(part);
}

/**
 * The message body, the same bytes as JSON.stringify of { v, ws, project, mode, fromSeq, toSeq,
 * changes }, written straight into one buffer (no joined string, which Buffer.from would copy again).
 */
function encodeOne(project: ProjectRef, changes: readonly SequencedChange[], parts: readonly EnvelopeJson[], mode: PayloadMode, gzip: boolean): Buffer {
  const fromSeq = changes[0]?.seq ?? 0;
  const toSeq = changes[changes.length - 1]?.seq ?? 0;
  const head = `{"v":1,"ws":${JSON.stringify(project.workspaceId)},"project":${JSON.stringify(project.projectId)},"mode":"${mode}","fromSeq":${fromSeq},"toSeq":${toSeq},"changes":[`;
  const full = mode === 'full';
  let bytes = Buffer.byteLength(head) + Math.max(0, parts.length - 1) + 2;
  for (let i = 0; i < parts.length; i += 1) bytes += jsonBytes(parts[i]!) + (full ? fullWrapLength(changes[i]!.seq) : 0);
  const json = Buffer.allocUnsafe(bytes);
  let at = json.write(head);
  for (let i = 0; i < parts.length; i += 1) {
    if (i > 0) at = json.writeUInt8(0x2c /* , */, at);
    if (full) at += json.write(fullPrefix(changes[i]!.seq), at, 'latin1');
    at = writeJson(json, parts[i]!, at);
    if (full) at = json.writeUInt8(0x7d /* } */, at);
  }
  json.write(']}', at, 'latin1');
  return gzip ? gzipSync(json) : json;
}

function toMessage(project: ProjectRef, changes: readonly SequencedChange[], payload: Buffer, commitTimes: number[]): OutboundMessage {
  return {
    topic: projectTopic(project),
    payload,
    fromSeq: changes[0]?.seq ?? 0,
    toSeq: changes[changes.length - 1]?.seq ?? 0,
    count: changes.length,
    commitTimes,
  };
}

/**
 * Splits `changes` (seq order) into messages no larger than maxBytes. A single change too large
 * for a full message goes out thin: the browser fetches it through the replay API.
 * `commitTimes`: the changes' commit times (ms), when the caller parsed them already (the batcher).
 */
export function encodeMessages(
  project: ProjectRef,
  changes: readonly SequencedChange[],
  opts: MessageOptions,
  commitTimes: readonly number[] = changes.map((c) => Date.parse(c.event.envelope.time)),
): OutboundMessage[] {
  const out: OutboundMessage[] = [];
  // First cut by raw JSON size; gzip usually shrinks JSON several-fold, so allow more before checking.
  const rawBudget = opts.gzip ? opts.maxBytes * 4 : opts.maxBytes;
  const parts = changes.map((c) => changeJson(c, opts.mode));
  let from = 0;
  let chunkBytes = 200;
  for (let i = 0; i < changes.length; i += 1) {
    const size = entryLength(changes[i]!.seq, parts[i]!, opts.mode) + 1;
    if (i > from && chunkBytes + size > rawBudget) {
      emit(from, i);
      from = i;
      chunkBytes = 200;
    }
    chunkBytes += size;
  }
  if (changes.length > from) emit(from, changes.length);
  return out;

  function emit(start: number, end: number): void {
    const part = changes.slice(start, end);
    const payload = encodeOne(project, part, parts.slice(start, end), opts.mode, opts.gzip);
    if (payload.length <= opts.maxBytes) {
      out.push(toMessage(project, part, payload, commitTimes.slice(start, end)));
    } else if (end - start > 1) {
      const mid = start + Math.ceil((end - start) / 2);
      emit(start, mid);
      emit(mid, end);
    } else {
      out.push(toMessage(project, part, encodeOne(project, part, part.map((c) => changeJson(c, 'thin')), 'thin', opts.gzip), commitTimes.slice(start, end)));
    }
  }
}
