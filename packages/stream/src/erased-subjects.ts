// Erased subjects (gdpr/POLICY.md, issue 13 §4): a replay, a backfill, a redrive or a late old
// event must not put an erased person's data back into a consumer's store. Every consumer that
// applies events checks the ids they carry against the erased-subjects list and blanks what is
// the person's before applying. The rule is pure (`scrubErased`); `ErasedSubjects` is the
// read-through cache in front of the list, which the gdpr processor keeps: the subject-keys
// table's tombstones (lib/subject-keys.ts, written by its keys-destroyed step; keyed by a hash
// of the id, so the list names nobody). The list holds ids only — an erased person's email or
// name is not known here, and needs not be: it travels in no row image the stream carries.
import { PERSONAL_FIELDS } from '../../../schemas/personal-fields.js';
import type { Envelope, StreamEvent } from './change-event.js';

/** The columns of each captured table that name a user. */
export const PERSON_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  tasks: ['created_by', 'assignee_id'],
  comments: ['author_id'],
  projects: ['created_by'],
  memberships: ['user_id'],
};

/** A user's id inside text: an @mention (notifications/rules.ts reads them the same way). */
const MENTION = /@([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?![\w-])/gi;

export const ERASED_MARK = '[erased]';

/** What an erased author's text becomes: the schemas allow a task without a description, not a comment without a body. */
const ERASED_TEXT: Readonly<Record<string, null | ''>> = { tasks: null, comments: '' };

type Row = Record<string, unknown>;
interface EntityData {
  table?: unknown;
  before?: Row | null;
  after?: Row | null;
  source?: { actor?: { userId?: unknown } };
}

const images = (d: EntityData): Row[] => [d.before, d.after].filter((r): r is Row => !!r && typeof r === 'object');

/** Every user id the event carries: its person columns, its actor, the @mentions in its authored text. */
export function subjectIdsOf(envelope: Envelope): string[] {
  const d = envelope.data as EntityData;
  const ids = new Set<string>();
  const actor = d.source?.actor?.userId;
  if (typeof actor === 'string') ids.add(actor);
  const table = typeof d.table === 'string' ? d.table : '';
  for (const row of images(d)) {
    for (const c of PERSON_COLUMNS[table] ?? []) if (typeof row[c] === 'string') ids.add(row[c]);
    const text = PERSONAL_FIELDS[table] && row[PERSONAL_FIELDS[table].column];
    if (typeof text === 'string') for (const m of text.matchAll(MENTION)) ids.add(m[1]!.toLowerCase());
  }
  return [...ids];
}

/**
 * The envelope with the erased subjects' data blanked: their ids in person columns null, the text
 * they authored null (a comment's body empty), their @mentions in others' text replaced by the erased mark, the actor
 * dropped when it is them. `null` when the event is about them alone (a membership of theirs):
 * the consumer skips it. The same envelope (by reference) when none of its ids is erased.
 */
export function scrubErased(envelope: Envelope, isErased: (id: string) => boolean): Envelope | null {
  const d = envelope.data as EntityData;
  const table = typeof d.table === 'string' ? d.table : '';
  if (table === 'memberships' && images(d).some((r) => typeof r.user_id === 'string' && isErased(r.user_id))) return null;
  const authored = PERSONAL_FIELDS[table];
  const scrubRow = (row: Row | null | undefined): Row | null | undefined => {
    if (!row || typeof row !== 'object') return row;
    let out: Row | undefined;
    const set = (c: string, v: unknown) => ((out ??= { ...row })[c] = v);
    for (const c of PERSON_COLUMNS[table] ?? []) if (typeof row[c] === 'string' && isErased(row[c])) set(c, null);
    if (authored && authored.column in row) {
      const author = row[authored.subject];
      const text = row[authored.column];
      if (typeof author === 'string' && isErased(author)) {
        if (text !== ERASED_TEXT[table]) set(authored.column, ERASED_TEXT[table] ?? null);
      }
      else if (typeof text === 'string') {
        const next = text.replace(MENTION, (whole, id: string) => (isErased(id.toLowerCase()) ? `@${ERASED_MARK}` : whole));
        if (next !== text) set(authored.column, next);
      }
    }
    return out ?? row;
  };
  const before = scrubRow(d.before);
  const after = scrubRow(d.after);
  const actor = d.source?.actor?.userId;
  const dropActor = typeof actor === 'string' && isErased(actor);
  if (before === d.before && after === d.after && !dropActor) return envelope;
  const data: EntityData = { ...d, ...('before' in d ? { before } : {}), ...('after' in d ? { after } : {}) };
  if (dropActor) {
    const { actor: _dropped, ...source } = d.source!;
    data.source = source;
  }
  return { ...envelope, data } as Envelope;
}

export interface ErasedSubjectsOptions {
  /** Whether the list holds the subject (the gdpr processor's store; a failing read rejects: the batch is retried). */
  lookup: (subject: string) => Promise<boolean>;
  /** How long an answer is trusted: a subject erased elsewhere is blanked here within this time (the processor's scans purge what lands in between). */
  ttlMs?: number;
  maxEntries?: number;
  now?: () => number;
}

/** The read-through cache in front of the erased-subjects list, and the batch filter consumers apply before their store. */
export class ErasedSubjects {
  private readonly cache = new Map<string, { erased: Promise<boolean>; expiresAt: number }>();
  private readonly ttlMs: number;
  private readonly max: number;
  private readonly now: () => number;

  constructor(private readonly o: ErasedSubjectsOptions) {
    this.ttlMs = o.ttlMs ?? 30_000;
    this.max = o.maxEntries ?? 100_000;
    this.now = o.now ?? Date.now;
  }

  isErased(subject: string): Promise<boolean> {
    const hit = this.cache.get(subject);
    if (hit && hit.expiresAt > this.now()) return hit.erased;
    this.cache.delete(subject);
    const erased = this.o.lookup(subject);
    this.cache.set(subject, { erased, expiresAt: this.now() + this.ttlMs });
    erased.catch(() => this.cache.delete(subject));
    while (this.cache.size > this.max) this.cache.delete(this.cache.keys().next().value as string);
    return erased;
  }

  /** The erased subjects among the ids the events carry (one cached look-up per distinct id). */
  async erasedAmong(events: readonly StreamEvent[]): Promise<Set<string>> {
    const ids = [...new Set(events.flatMap((e) => subjectIdsOf(e.envelope)))];
    const answers = await Promise.all(ids.map((id) => this.isErased(id)));
    return new Set(ids.filter((_, i) => answers[i]));
  }

  /** The events as a consumer may apply them: erased subjects' data blanked, events about them alone left out. */
  async scrub(events: readonly StreamEvent[]): Promise<StreamEvent[]> {
    const erased = await this.erasedAmong(events);
    if (erased.size === 0) return [...events];
    const out: StreamEvent[] = [];
    for (const e of events) {
      const envelope = scrubErased(e.envelope, (id) => erased.has(id));
      if (envelope) out.push(envelope === e.envelope ? e : { ...e, envelope });
    }
    return out;
  }
}
