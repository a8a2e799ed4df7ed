import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { eventId } from '../../../lib/event-id.js';
import type { StreamEvent } from './change-event.js';
import { admitBatch, boundMarks, mergeMarks, parseMarks, serializeMarks } from './ordering.js';

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
