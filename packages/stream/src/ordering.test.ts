import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { eventId } from '../../../lib/event-id.js';
import type { StreamEvent } from './change-event.js';
import { admitBatch, boundMarks, mergeMarks, packMarks, parseMarks, serializeMarks, unpackMarks } from './ordering.js';

function ev(ws: string, lsn: number, txIndex = 0): StreamEvent {
  const position = { commitLsn: BigInt(lsn), txIndex };
  return { id: eventId(position), position, workspaceId: ws, type: 'taskflow.task.updated', envelope: {} as StreamEvent['envelope'] };
}

describe('admitBatch', () => {
  it('puts a reordered batch back in order and counts the moves', () => {
    const r = admitBatch(new Map(), [ev('w', 3), ev('w', 1), ev('w', 2), ev('v', 9)]);
    expect(r.admitted.map((e) => `${e.workspaceId}${e.position.commitLsn}`)).toEqual(['w1', 'w2', 'w3', 'v9']);
    expect(r.reordered).toBe(2);
    expect(r.duplicates).toBe(0);
  });

  it('drops anything at or below the mark, and repeats within the batch', () => {
    const first = admitBatch(new Map(), [ev('w', 1), ev('w', 2, 1)]);
    const second = admitBatch(first.marks, [ev('w', 2, 1), ev('w', 2, 0), ev('w', 2, 2), ev('w', 2, 2)]);
    expect(second.admitted.map((e) => e.id)).toEqual([ev('w', 2, 2).id]);
    expect(second.duplicates).toBe(3);
  });

  it('for any arrival order with repeats, admits each new event once in position order', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('a', 'b'), fc.integer({ min: 1, max: 30 })), { maxLength: 60 }), fc.integer({ min: 0, max: 30 }), (raw, markAt) => {
        const marks = new Map([['a', { commitLsn: BigInt(markAt), txIndex: 0 }]]);
        const r = admitBatch(marks, raw.map(([ws, lsn]) => ev(ws, lsn)));
        for (const ws of ['a', 'b']) {
          const floor = ws === 'a' ? markAt : 0;
          const expected = [...new Set(raw.filter(([w, l]) => w === ws && l > floor).map(([, l]) => l))].sort((x, y) => x - y);
          expect(r.admitted.filter((e) => e.workspaceId === ws).map((e) => Number(e.position.commitLsn))).toEqual(expected);
        }
        expect(r.admitted.length + r.duplicates).toBe(raw.length);
      }),
    );
  });

  it('round-trips marks through the checkpoint state', () => {
    const { marks } = admitBatch(new Map(), [ev('w', 5, 2), ev('v', 7)]);
    expect(parseMarks(serializeMarks(marks))).toEqual(marks);
    expect(parseMarks(undefined).size).toBe(0);
  });
});

describe('the checkpoint state', () => {
  const uuidArb = fc.uuid().map((u) => u.toLowerCase());
  const positionArb = fc.record({ commitLsn: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), txIndex: fc.integer({ min: 0, max: 99_999_999 }) });

  it('packs UUID workspaces in 28 bytes each and reads them back in their order (the order boundMarks keeps by)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(uuidArb, positionArb), { maxLength: 50 }), (entries) => {
        const marks = new Map(entries);
        const state = serializeMarks(marks);
        expect(JSON.parse(state)).toMatchObject({ v: 2 });
        const read = parseMarks(state);
        expect([...read]).toEqual([...marks]);
        expect(Buffer.from(packMarks(marks)!, 'base64').length).toBe(28 * marks.size);
      }),
    );
  });

  it('keeps the JSON form when a workspace id is not a lower-case UUID, and reads states written before the packed form', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.oneof(uuidArb, fc.stringMatching(/^[A-Za-z0-9-]{1,36}$/)), positionArb), { minLength: 1, maxLength: 20 }), (entries) => {
        const marks = new Map(entries);
        const v1 = { v: 1, marks: Object.fromEntries([...marks].map(([ws, pos]) => [ws, eventId(pos)])) };
        // (A JSON object lists integer-like keys first: the v1 form keeps the marks, not always their order.)
        expect(parseMarks(JSON.stringify(v1))).toEqual(marks);
        expect(parseMarks(serializeMarks(marks))).toEqual(marks);
      }),
    );
    expect(JSON.parse(serializeMarks(new Map([['A1B2C3D4-0000-4000-8000-000000000000', { commitLsn: 1n, txIndex: 0 }]])))).toMatchObject({ v: 1 });
  });

  it('refuses packed marks that are not whole entries rather than reading a shifted mark', () => {
    expect(() => unpackMarks(Buffer.alloc(27).toString('base64'))).toThrow(/not whole 28-byte entries/);
  });

  it('is under 40 bytes a workspace: the lease item it is rewritten in costs 1 WRU per KB', () => {
    const marks = new Map(Array.from({ length: 1000 }, (_, i) => [`6f1c0a2e-0000-4000-8000-${String(i).padStart(12, '0')}`, { commitLsn: 0x1a2b3c4d5e6fn, txIndex: 12 }] as const));
    expect((serializeMarks(marks).length - serializeMarks(new Map()).length) / 1000).toBeLessThan(40);
  });
});

describe('mergeMarks', () => {
  it('takes the highest mark per workspace across parent shards', () => {
    const a = serializeMarks(new Map([['w', ev('w', 5).position], ['v', ev('v', 1).position]]));
    const b = serializeMarks(new Map([['w', ev('w', 3).position], ['u', ev('u', 2).position]]));
    expect(mergeMarks([a, undefined, b])).toEqual(new Map([['w', ev('w', 5).position], ['v', ev('v', 1).position], ['u', ev('u', 2).position]]));
  });
});

describe('boundMarks', () => {
  it('keeps the most recently advanced workspaces', () => {
    const first = admitBatch(new Map(), [ev('a', 1), ev('b', 1), ev('c', 1)]);
    const second = admitBatch(first.marks, [ev('a', 2), ev('b', 1)]);
    expect([...boundMarks(second.marks, 2).keys()]).toEqual(['c', 'a']);
    expect(boundMarks(second.marks, 5)).toBe(second.marks);
  });
});
