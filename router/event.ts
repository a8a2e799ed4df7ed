// The edge of the router: one user record's bytes become a RouterEvent, or a reason for the
// dead-letter store. Validation (and upcasting of older schema versions) is the schemas
// package's validator, injected so the core stays testable with any validator.
import { type EventPosition, parseEventId } from '../lib/event-id.js';
import type { RejectReason, ValidationResult } from '../schemas/validate.js';

export type DlqReason = 'malformed_json' | Exclude<RejectReason, 'not_an_object'>;

/** The parsed envelope as it travels: kept whole so full-mode messages carry what capture wrote (upcast). */
export type Envelope = Record<string, unknown> & { id: string; type: string; time: string; workspaceid: string; projectid?: string; data: EnvelopeData };

export interface EnvelopeData {
  op: string;
  table: string;
  key?: Record<string, unknown>;
  before?: Record<string, unknown> | null;
  after?: Record<string, unknown> | null;
  changed?: string[];
}

export interface RouterEvent {
  id: string;
  position: EventPosition;
  workspaceId: string;
  /** Absent for workspace-wide rows (workspace memberships, membership deletes) and truncates. */
  projectId?: string;
  type: string;
  envelope: Envelope;
}

export type EventCheck = (input: unknown) => ValidationResult;

export type DecodeResult = { ok: true; event: RouterEvent } | { ok: false; reason: DlqReason | 'undecodable_record'; message: string };

export function decodeEvent(bytes: Uint8Array, validate: EventCheck): DecodeResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    return { ok: false, reason: 'malformed_json', message: (err as Error).message };
  }
  const result = validate(parsed);
  if (!result.ok) return { ok: false, reason: result.reason === 'not_an_object' ? 'malformed_json' : result.reason, message: result.message };
  const envelope = result.event as unknown as Envelope;
  const event: RouterEvent = {
    id: envelope.id,
    position: parseEventId(envelope.id),
    workspaceId: envelope.workspaceid,
    type: envelope.type,
    envelope,
  };
  if (typeof envelope.projectid === 'string') event.projectId = envelope.projectid;
  return { ok: true, event };
}
