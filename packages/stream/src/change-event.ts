// One user record's bytes become a validated change event, or a reason for the dead-letter
// store: the edge every reader of the change stream shares (router, search …). Validation (and
// upcasting of older schema versions) is the schemas package's validator, injected so a reader's
// core stays testable with any validator.
import { isUtf8 } from 'node:buffer';
import { type EventPosition, parseEventId } from '../../../lib/event-id.js';
import type { ChangeEvent } from '../../../schemas/types.js';
import type { RejectReason, ValidationResult } from '../../../schemas/validate.js';

/** Why a record goes to the dead-letter store. */
export type DlqReason = 'malformed_json' | Exclude<RejectReason, 'not_an_object'>;

/**
 * The parsed envelope as it travels, typed by the schemas (schemas/types.ts): the validator's own
 * result, kept whole (upcast), e.g. so the router's full-mode messages carry what capture wrote.
 */
export type Envelope = ChangeEvent;

export interface StreamEvent {
  id: string;
  position: EventPosition;
  workspaceId: string;
  /** Absent for workspace-wide rows (workspace memberships, membership deletes) and truncates. */
  projectId?: string;
  type: string;
  envelope: Envelope;
}

/**
 * An envelope's JSON: the bytes of the record it was parsed from (with their length in UTF-16
 * characters, what JSON.stringify's string would have), or a string.
 */
export type EnvelopeJson = string | RecordJson;

export interface RecordJson {
  bytes: Uint8Array;
  chars: number;
}

/**
 * Envelopes parsed from a record as they are (no upcast) carry the record's bytes under this
 * key: re-serializing such an envelope gives those bytes (capture writes JSON.stringify's), so
 * envelopeJsonOf reuses them. The bytes, not the decoded text: they are the record's buffer,
 * outside the JS heap, so keeping them costs the garbage collector nothing, while the text (as
 * large as the envelope's own objects) would be copied by every collection it survived.
 *
 * A property of the envelope's own, not a WeakMap entry: a WeakMap's entries are ephemerons,
 * which every collection has to visit, and setting one cost about as much as validating the
 * envelope's ids. Non-enumerable and symbol-keyed, so JSON.stringify, spreads, Object.assign,
 * structuredClone and deep equality never see or copy it: a scrub, a decryption or an upcast
 * makes a new object, which does not have it and is serialized anew. Nothing changes an
 * envelope in place.
 */
const RECORD_JSON = Symbol('taskflow.recordJson');

type WithRecordJson = Envelope & { [RECORD_JSON]?: RecordJson };

/** An envelope's JSON: the record's own bytes while it is the envelope parsed from it, else JSON.stringify. */
export function envelopeJsonOf(envelope: Envelope): EnvelopeJson {
  return (envelope as WithRecordJson)[RECORD_JSON] ?? JSON.stringify(envelope);
}

/** Length of the JSON in UTF-16 characters (a string's length). */
export function jsonChars(json: EnvelopeJson): number {
  return typeof json === 'string' ? json.length : json.chars;
}

/** Length of the JSON in UTF-8 bytes. */
export function jsonBytes(json: EnvelopeJson): number {
  return typeof json === 'string' ? Buffer.byteLength(json) : json.bytes.byteLength;
}

/** Writes the JSON as UTF-8 into `out` at `at`; returns the offset after it. */
export function writeJson(out: Buffer, json: EnvelopeJson, at: number): number {
  if (typeof json === 'string') return at + out.write(json, at);
  out.set(json.bytes, at);
  return at + json.bytes.byteLength;
}

/** An envelope as a JSON string: the record's own text while it is the envelope parsed from it, else JSON.stringify. */
export function envelopeText(envelope: Envelope): string {
  const json = envelopeJsonOf(envelope);
  return typeof json === 'string' ? json : Buffer.from(json.bytes.buffer, json.bytes.byteOffset, json.bytes.byteLength).toString('utf8');
}

/** The event's envelope as a JSON string (envelopeText). */
export function envelopeJson(event: StreamEvent): string {
  return envelopeText(event.envelope);
}

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

export type EventCheck = (input: unknown) => ValidationResult;

export type DecodeResult = { ok: true; event: StreamEvent } | { ok: false; reason: DlqReason | 'undecodable_record'; message: string };

export function decodeEvent(bytes: Uint8Array, validate: EventCheck): DecodeResult {
  let parsed: unknown;
  let text: string;
  try {
    // A view of the record's bytes, not a copy.
    text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
    parsed = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: 'malformed_json', message: (err as Error).message };
  }
  const result = validate(parsed);
  if (!result.ok) return { ok: false, reason: result.reason === 'not_an_object' ? 'malformed_json' : result.reason, message: result.message };
  const envelope = result.event;
  // Text padded with whitespace (not capture's) is not reused: re-serializing drops the padding.
  // Nor are bytes that are not valid UTF-8: decoding replaced what it could not read (U+FFFD),
  // which JSON.stringify writes, not the bytes.
  const reuse = envelope === parsed && text.charCodeAt(0) === OPEN_BRACE && text.charCodeAt(text.length - 1) === CLOSE_BRACE && isUtf8(bytes);
  const event: StreamEvent = {
    id: envelope.id,
    position: parseEventId(envelope.id),
    workspaceId: envelope.workspaceid,
    type: envelope.type,
    envelope,
  };
  if (reuse) Object.defineProperty(envelope, RECORD_JSON, { value: { bytes, chars: text.length } });
  if (typeof envelope.projectid === 'string') event.projectId = envelope.projectid;
  return { ok: true, event };
}

/**
 * Whether the consumer named `consumer` applies this event. A snapshot aimed at one consumer
 * (`taskflow capture snapshot --for NAME` sets `target`) is for that consumer only: a snapshot is
 * not a change, and every other reader already holds what it re-reads, so they skip it — no
 * publish, no changelog entry, no notification, no audit record, no archive line. Events without
 * `target` (every change, and untargeted snapshots) are for everyone.
 */
export function isForConsumer(envelope: { target?: string }, consumer: string): boolean {
  return envelope.target === undefined || envelope.target === consumer;
}
