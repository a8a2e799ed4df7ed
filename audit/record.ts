// One audit record per change, pure: who (a pseudonym of the actor), what (type, subject, the
// columns an update changed, keyed digests of the row images instead of their contents), when
// (commit time) and from which transaction (commit LSN, xid, index in it). No personal contents
// travel into the append-only store: a record that can never be deleted must not hold what
// erasure has to remove.
//
// Pseudonym = HMAC-SHA256(environment key, user id). The identity store maps pseudonyms back to
// user ids for `taskflow audit query`; GDPR erasure deletes that mapping (`taskflow audit
// forget`), which cuts the link without touching a segment, so the chain still verifies.
// Digests are keyed too (HMAC with the same key, another domain): a plain hash of a low-entropy
// value (a status, a short title) could be reversed by guessing.
import { createHmac } from 'node:crypto';
import { GDPR_ERASURE_TYPE } from '../schemas/kinds.js';
import type { ChangeEvent } from '../schemas/validate.js';
import { canonicalJson } from './chain.js';

export interface AuditRecord {
  /** The change event's id (commit LSN - index in its transaction): the record's identity. */
  eventId: string;
  type: string;
  /** <table>/<primary key>, or the table of a truncate. */
  subject: string;
  workspaceId: string;
  projectId?: string;
  op: string;
  /** update: the columns whose new value the change carries. */
  changed?: string[];
  /** truncate: every table it emptied. */
  tables?: string[];
  /** Pseudonym of who made the change; null when the application named nobody. */
  actor: string | null;
  /** Commit time (snapshot events: read time). */
  time: string;
  lsn: string;
  xid: number;
  txIndex: number;
  /** Keyed digests of the row images (null where the event has none). */
  before: string | null;
  after: string | null;
  /** Put back from the dead-letter store rather than read in stream order. */
  redriven?: true;
}

export class Pseudonymizer {
  constructor(private readonly key: Uint8Array) {
    if (key.length < 16) throw new Error('the audit key must be at least 16 bytes');
  }

  /** The actor's pseudonym: 128 bits of HMAC-SHA256, hex. */
  actor(userId: string): string {
    return createHmac('sha256', this.key).update(`actor\0${userId}`).digest('hex').slice(0, 32);
  }

  /** Keyed digest of a row image (canonical JSON), hex. */
  digest(row: Record<string, unknown> | null | undefined): string | null {
    if (row === null || row === undefined) return null;
    return createHmac('sha256', this.key).update(`row\0${canonicalJson(row)}`).digest('hex');
  }
}

/** The record of one validated change event, plus the actor's user id (for the identity store). */
export function auditRecordOf(event: ChangeEvent, pseudonyms: Pseudonymizer): { record: AuditRecord; userId?: string } {
  const data = event.data as { op?: string; before?: Record<string, unknown> | null; after?: Record<string, unknown> | null; changed?: string[]; tables?: string[]; source?: { lsn?: string; xid?: number; txIndex?: number; actor?: { userId?: string } } };
  const source = data.source ?? {};
  const userId = source.actor?.userId;
  const record: AuditRecord = {
    eventId: event.id,
    type: event.type,
    // An erasure request's subject is users/<user id>: the trail keeps the pseudonym instead.
    subject: event.type === GDPR_ERASURE_TYPE ? `users/${pseudonyms.actor(String((event.data as { userId?: unknown }).userId))}` : event.subject,
    workspaceId: event.workspaceid,
    // Entity and truncate events carry op; an erasure request is named by its verb.
    op: data.op ?? event.type.slice(event.type.lastIndexOf('.') + 1),
    actor: userId ? pseudonyms.actor(userId) : null,
    time: event.time,
    lsn: source.lsn ?? '',
    xid: source.xid ?? 0,
    txIndex: source.txIndex ?? 0,
    before: pseudonyms.digest(data.before),
    after: pseudonyms.digest(data.after),
  };
  if (typeof event.projectid === 'string') record.projectId = event.projectid;
  if (data.changed) record.changed = data.changed;
  if (data.tables) record.tables = data.tables;
  return userId ? { record, userId } : { record };
}
