// The erased-subjects rule (erased-subjects.ts) over random valid events and random erased sets:
// what comes out names no erased subject (in a person column, as actor or as an @mention) and
// carries none of their authored text; an event naming none of them is returned as it is (same
// reference); the rule is idempotent; and the cache answers each id once per TTL.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { arbitraryEvent, sampleEvent } from '../../../schemas/fixtures.js';
import { validateEvent } from '../../../schemas/validate.js';
import { decodeEvent, type Envelope } from './change-event.js';
import { ERASED_MARK, ErasedSubjects, PERSON_COLUMNS, scrubErased, subjectIdsOf } from './erased-subjects.js';

const ALICE = '11111111-1111-4111-8111-00000000a11c';
const BOB = '11111111-1111-4111-8111-00000000b0b0';

/** An event whose person columns, actor and text may name Alice or Bob. */
const eventNamingSomeone = fc
  .tuple(arbitraryEvent({ kinds: ['task.created', 'task.updated', 'task.deleted', 'comment.created', 'comment.updated', 'membership.created', 'membership.deleted', 'project.created'] }), fc.constantFrom(ALICE, BOB, undefined), fc.constantFrom(ALICE, BOB, undefined), fc.boolean())
  .map(([e, person, mentioned, asActor]) => {
    const data = structuredClone(e.data) as unknown as { table: string; before?: Record<string, unknown> | null; after?: Record<string, unknown> | null; source: Record<string, unknown> };
    for (const row of [data.before, data.after]) {
      if (!row) continue;
      if (person) for (const c of PERSON_COLUMNS[data.table] ?? []) if (c in row) row[c] = person;
      if (mentioned && typeof row.body === 'string') row.body = `${row.body} cc @${mentioned} please`;
    }
    if (asActor && person) data.source.actor = { userId: person };
    return { ...e, data } as unknown as Envelope;
  });

const authoredBy = (e: Envelope, id: string): unknown[] => {
  const d = e.data as { table?: string; before?: Record<string, unknown> | null; after?: Record<string, unknown> | null };
  const [column, author] = d.table === 'tasks' ? ['description', 'created_by'] : d.table === 'comments' ? ['body', 'author_id'] : [];
  if (!column) return [];
  return [d.before, d.after].filter((r) => r && r[author!] === id && r[column] !== null && r[column] !== '' && r[column] !== undefined).map((r) => r![column]);
};

describe('scrubErased', () => {
  it('leaves nothing of an erased subject; an event naming none comes back as it is; idempotent; still a valid event', () => {
    fc.assert(
      fc.property(eventNamingSomeone, fc.subarray([ALICE, BOB]), (e, erasedList) => {
        const erased = new Set(erasedList);
        const out = scrubErased(e, (id) => erased.has(id));
        if (!subjectIdsOf(e).some((id) => erased.has(id))) {
          expect(out).toBe(e);
          return;
        }
        if (out === null) {
          // Only a membership of an erased subject is left out whole.
          expect((e.data as { table?: string }).table).toBe('memberships');
          return;
        }
        expect(subjectIdsOf(out).filter((id) => erased.has(id))).toEqual([]);
        for (const id of erased) expect(authoredBy(out, id)).toEqual([]);
        expect(JSON.stringify(out.data)).not.toMatch(new RegExp([...erased].join('|')));
        expect(scrubErased(out, (id) => erased.has(id))).toBe(out);
        const decoded = decodeEvent(Buffer.from(JSON.stringify(out)), validateEvent);
        expect(decoded.ok ? true : decoded.message).toBe(true);
      }),
    );
  });

  it('keeps the rest of a comment that mentions them and drops their actor', () => {
    const e = sampleEvent('comment.created', { userId: BOB, row: { body: `thanks @${ALICE}!` } }) as unknown as Envelope;
    (e.data as unknown as { source: Record<string, unknown> }).source.actor = { userId: ALICE };
    const out = scrubErased(e, (id) => id === ALICE)!;
    expect((out.data as { after: { body: string; author_id: string } }).after).toMatchObject({ body: `thanks @${ERASED_MARK}!`, author_id: BOB });
    expect((out.data as unknown as { source: Record<string, unknown> }).source.actor).toBeUndefined();
  });
});

describe('ErasedSubjects', () => {
  it('asks the list once per id per TTL, and again after it', async () => {
    let now = 0;
    const asked: string[] = [];
    const list = new ErasedSubjects({ lookup: (s) => (asked.push(s), Promise.resolve(s === ALICE)), ttlMs: 1000, now: () => now });
    const events = [ALICE, BOB, ALICE].map((u, i) => {
      const envelope = sampleEvent('task.created', { userId: u, commitLsn: BigInt(i + 1) });
      const d = decodeEvent(Buffer.from(JSON.stringify(envelope)), validateEvent);
      if (!d.ok) throw new Error(d.message);
      return d.event;
    });
    const out = await list.scrub(events);
    expect(out.map((e) => (e.envelope.data as { after: { created_by: unknown } }).after.created_by)).toEqual([null, BOB, null]);
    expect(out[1]).toBe(events[1]);
    await list.scrub(events);
    expect(asked.sort()).toEqual([ALICE, BOB]);
    now = 1001;
    await list.scrub(events.slice(0, 1));
    expect(asked.filter((s) => s === ALICE)).toHaveLength(2);
  });
});
