// The upcasters in use, property-tested: events generated from the old schema version become
// valid events of the new one that mean the same, and a reader pinned to the old version (not
// redeployed yet) still reads events of the new one (schemas/CONTRACTS.md, "Readers not yet
// redeployed").
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { arbitraryEvent, sampleEvent, type SampleKind } from './fixtures.js';
import { schemaDocuments } from './generated/schemas.js';
import { dueAtOfDueDate, UPCASTERS } from './upcasters.js';
import { compileValidators } from './compile-validators.js';
import { eventValidatorFrom, validateEvent } from './validate.js';

const KINDS = (entity: string): SampleKind[] => (['created', 'updated', 'deleted', 'snapshot'] as const).map((v) => `${entity}.${v}` as SampleKind);

/** A reader built before task v2 and comment v2 existed: it knows only the v1 documents. */
const v1Documents = Object.fromEntries(Object.entries(schemaDocuments).filter(([id]) => id.endsWith('/v1')));
const validateAsV1Reader = eventValidatorFrom(compileValidators(v1Documents), { upcasters: [] });

type Row = Record<string, unknown> | null;
interface Data { op: string; before: Row; after: Row; changed?: string[]; omitted?: string[] }

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

describe('task v1 → v2', () => {
  it('turns every v1 task event into a valid v2 event: due_at = due_date at 00:00 UTC beside it, labels [] on full rows, the rest unchanged', () => {
    fc.assert(
      fc.property(arbitraryEvent({ kinds: KINDS('task'), schemaVersion: 1 }), (v1) => {
        expect(v1.dataschema).toBe('taskflow://schemas/task/v1');
        expect(validateAsV1Reader(v1)).toMatchObject({ ok: true }); // the generator's sanity
        const original = structuredClone(v1);
        const r = validateEvent(deepFreeze(v1));
        if (!r.ok) throw new Error(`${r.reason}: ${r.message}`);
        expect(r.upcastFrom).toBe(1);
        expect(v1).toEqual(original); // not mutated
        const [from, to] = [v1.data as Data, r.event.data as Data];
        expect(r.event.dataschema).toBe('taskflow://schemas/task/v2');
        for (const image of ['before', 'after'] as const) {
          const [a, b] = [from[image], to[image]];
          if (a === null) {
            expect(b).toBeNull();
            continue;
          }
          // due_date is kept: what an event of the deprecation window carries (both columns).
          const expected: Record<string, unknown> = { ...a };
          if ('due_date' in a) expected.due_at = a.due_date === null ? null : `${String(a.due_date)}T00:00:00Z`;
          if (image === 'after') expected.labels = [];
          expect(b).toEqual(expected);
        }
        const renamed = (cs?: string[]) => (cs?.includes('due_date') ? [...cs, 'due_at'] : cs);
        expect(to.changed).toEqual(renamed(from.changed));
        expect(to.omitted).toEqual(renamed(from.omitted));
        // What the stream says besides the rows stays as it was.
        const { data: _d, dataschema: _s, ...attributes } = r.event;
        const { data: _d1, dataschema: _s1, ...oldAttributes } = original;
        expect(attributes).toEqual(oldAttributes);
      }),
    );
  });

  it('renders a date as that day at 00:00 UTC, like the migration backfill, and refuses what is not a date', () => {
    expect(dueAtOfDueDate('2026-12-01')).toBe('2026-12-01T00:00:00Z');
    expect(dueAtOfDueDate(null)).toBeNull();
    expect(() => dueAtOfDueDate('2026-12-01T10:00:00Z')).toThrow('is not a date');
    const bad = sampleEvent('task.created', { schemaVersion: 1, row: { due_date: 'soon' } as never });
    expect(validateEvent(bad)).toMatchObject({ ok: false, reason: 'unknown_schema', message: expect.stringContaining('upcaster from task v1 to v2 failed') });
  });
});

describe('comment v1 → v2', () => {
  it('turns every v1 comment event into a valid v2 event: edited_at null on full rows, the rest unchanged', () => {
    fc.assert(
      fc.property(arbitraryEvent({ kinds: KINDS('comment'), schemaVersion: 1 }), (v1) => {
        const r = validateEvent(deepFreeze(v1));
        if (!r.ok) throw new Error(`${r.reason}: ${r.message}`);
        const [from, to] = [v1.data as Data, r.event.data as Data];
        expect(r.event.dataschema).toBe('taskflow://schemas/comment/v2');
        expect(to.before).toEqual(from.before);
        expect(to.after).toEqual(from.after === null ? null : { ...from.after, edited_at: null });
      }),
    );
  });
});

describe('a reader not redeployed (pinned to v1)', () => {
  it('reads every v2 event as v1: valid, the fields v1 declares as they were written', () => {
    fc.assert(
      fc.property(arbitraryEvent({ kinds: [...KINDS('task'), ...KINDS('comment')] }), (v2) => {
        expect(v2.dataschema).toMatch(/\/v2$/);
        const r = validateAsV1Reader(v2);
        if (!r.ok) throw new Error(`${r.reason}: ${r.message}`);
        expect(r).toEqual({ ok: true, event: v2, readAsOlder: 2 });
      }),
    );
  });

  it('sees due_date through the deprecation window, while the database keeps both columns', () => {
    // Between migrations 0006 (expand) and 0007 (contract) a task row carries both.
    const windowEvent = sampleEvent('task.updated', { row: { due_date: '2026-12-01', due_at: '2026-12-01T00:00:00Z' } as never });
    const r = validateAsV1Reader(windowEvent);
    expect(r.ok && (r.event.data as unknown as { after: Record<string, unknown> }).after.due_date).toBe('2026-12-01');
    // ...and the current reader validates the same event as v2.
    expect(validateEvent(windowEvent)).toEqual({ ok: true, event: windowEvent });
  });

  it('every upcaster registered is for a schema and version that exist, one per step', () => {
    const steps = UPCASTERS.map((u) => `${u.schema}/v${u.fromVersion}`);
    expect(new Set(steps).size).toBe(steps.length);
    for (const u of UPCASTERS) {
      expect(schemaDocuments[`taskflow://schemas/${u.schema}/v${u.fromVersion}`]).toBeDefined();
      expect(schemaDocuments[`taskflow://schemas/${u.schema}/v${u.fromVersion + 1}`]).toBeDefined();
    }
  });
});
