import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { parseSignal, parseSnapshot, settleChunk, type TableTouch, visibleIn, type XidSnapshot } from './snapshot.js';

const XID_SPACE = 2 ** 32;
/** The xid `n` assignments after `base`, skipping the special xids 0-2 as Postgres does on wraparound. */
const xidAfter = (base: number, n: number) => 3 + ((base - 3 + n) % (XID_SPACE - 3));

describe('chunk snapshot visibility', () => {
  it('reads pg_current_snapshot() text, reducing 64-bit xids to the 32-bit xids pgoutput carries', () => {
    const s = parseSnapshot(`${2 ** 32 + 100}:${2 ** 32 + 110}:${2 ** 32 + 100},${2 ** 32 + 105}`);
    expect(s).toEqual({ xmin: 100, xmax: 110, xip: new Set([100, 105]) });
    expect(parseSnapshot('741:741:')).toEqual({ xmin: 741, xmax: 741, xip: new Set() });
    expect(() => parseSnapshot('garbage')).toThrow(/not a pg_snapshot/);
  });

  it('sees what committed before xmin, not what is in progress or at/after xmax, across the wraparound', () => {
    const s: XidSnapshot = { xmin: XID_SPACE - 5, xmax: 10, xip: new Set([XID_SPACE - 5, 4]) };
    expect(visibleIn(s, XID_SPACE - 6)).toBe(true);
    expect(visibleIn(s, XID_SPACE - 5)).toBe(false);
    expect(visibleIn(s, XID_SPACE - 4)).toBe(true);
    expect(visibleIn(s, 3)).toBe(true);
    expect(visibleIn(s, 4)).toBe(false);
    expect(visibleIn(s, 10)).toBe(false);
    expect(visibleIn(s, 11)).toBe(false);
  });
});

/**
 * A model of one chunk: transactions in WAL (commit) order, each writing one row whole (value and
 * a TOASTed column), updating only its value (the TOASTed column left out, as pgoutput sends an
 * unchanged one), or truncating the table, with LOW and HIGH watermarks among them. The chunk's
 * snapshot sees every transaction before LOW except some that committed there but were not yet
 * visible, any of those between LOW and HIGH, none after HIGH; per key it sees a prefix of its
 * versions (a writer of a key waits for the previous writer to finish). A reader that never had
 * the table applies the stream in order with the chunk's rows at HIGH; it must end with the
 * table's last state.
 */
type Version = { v: string; toast: string };
const chunkHistory = fc
  .record({
    keys: fc.integer({ min: 1, max: 6 }),
    txs: fc.array(fc.record({ key: fc.nat(5), kind: fc.constantFrom('whole', 'partial', 'partial', 'truncate'), seen: fc.boolean() }), { maxLength: 24 }),
    cuts: fc.tuple(fc.nat(24), fc.nat(24)),
    lateBeforeLow: fc.array(fc.nat(24), { maxLength: 3 }),
    xidBase: fc.oneof(fc.integer({ min: 3, max: 1000 }), fc.integer({ min: XID_SPACE - 30, max: XID_SPACE - 1 })),
    xidOrder: fc.array(fc.nat(), { minLength: 24, maxLength: 24 }),
  })
  .map(({ keys, txs, cuts, lateBeforeLow, xidBase, xidOrder }) => {
    const low = Math.min(cuts[0], cuts[1], txs.length);
    const high = Math.min(Math.max(cuts[0], cuts[1]), txs.length);
    // xids are assigned in an order unrelated to commit order
    const order = txs.map((_, i) => i).sort((a, b) => xidOrder[a]! - xidOrder[b]! || a - b);
    const ages = new Map(order.map((tx, n) => [tx, n]));
    // an update of a row that does not exist (any more) is an insert: a whole row
    const exists = new Set(Array.from({ length: keys }, (_, k) => String(k)));
    const history = txs.map((t, i) => {
      const key = t.kind === 'truncate' ? undefined : String(t.key % keys);
      const kind = t.kind === 'partial' && !exists.has(key!) ? 'whole' : t.kind;
      if (key === undefined) exists.clear();
      else exists.add(key);
      return { key, kind, seen: t.seen, age: ages.get(i)!, xid: xidAfter(xidBase, ages.get(i)!), value: `v${i}` };
    });
    return { keys, history, low, high, late: new Set(lateBeforeLow.filter((i) => i < low)), xidBase };
  });

function apply(table: Map<string, Partial<Version>>, t: { key: string | undefined; kind: string; value: string }): void {
  if (t.key === undefined) table.clear();
  else if (t.kind === 'partial') table.set(t.key, { ...table.get(t.key), v: t.value });
  else table.set(t.key, { v: t.value, toast: `toast of ${t.value}` });
}

describe('snapshot chunk window', () => {
  it('a reader that never had the table, applying the stream and the chunk in order, ends with the table', () => {
    fc.assert(
      fc.property(chunkHistory, ({ keys, history, low, high, late, xidBase }) => {
        // what the snapshot sees: per key a prefix of its versions (a truncate orders with every key)
        const visible = new Set<number>();
        let blocked = new Set<string | undefined>();
        history.forEach((t, i) => {
          const wanted = i < low ? !late.has(i) : i < high ? t.seen : false;
          const waitsOn = t.key === undefined ? blocked.size > 0 : blocked.has(t.key) || blocked.has(undefined);
          if (wanted && !waitsOn) visible.add(i);
          else blocked = new Set([...blocked, t.key]);
        });
        const tableAfter = (upTo: (i: number) => boolean) => {
          const table = new Map<string, Partial<Version>>(Array.from({ length: keys }, (_, k) => [String(k), { v: 'initial', toast: 'initial toast' }]));
          history.forEach((t, i) => upTo(i) && apply(table, t));
          return table;
        };
        const rows = [...tableAfter((i) => visible.has(i))].map(([id, row]) => ({ id, ...row }));
        // the snapshot as Postgres would give it: xmax one past the youngest visible xid, the invisible ones below it in progress
        const youngestVisible = Math.max(-1, ...[...visible].map((i) => history[i]!.age));
        const xmax = xidAfter(xidBase, youngestVisible + 1);
        const inProgress = history.filter((t, i) => !visible.has(i) && t.age < youngestVisible).sort((a, b) => a.age - b.age);
        const s: XidSnapshot = { xmin: inProgress[0]?.xid ?? xmax, xmax, xip: new Set(inProgress.map((t) => t.xid)) };
        const touch = (t: (typeof history)[number]): TableTouch =>
          t.key === undefined ? { xid: t.xid, whole: 'all', partial: [] } : t.kind === 'partial' ? { xid: t.xid, whole: [], partial: [{ id: t.key, v: t.value }] } : { xid: t.xid, whole: [t.key], partial: [] };
        const emitted = settleChunk(rows, { before: history.slice(0, low).map(touch), inside: history.slice(low, high).map(touch) }, s);
        // the reader: the stream up to HIGH, the chunk's rows (whole rows), the rest of the stream
        const reader = new Map<string, Partial<Version>>();
        history.slice(0, high).forEach((t) => apply(reader, t));
        for (const { id, ...row } of emitted) reader.set(String(id), row);
        history.slice(high).forEach((t) => apply(reader, t));
        expect(reader).toEqual(tableAfter(() => true));
      }),
    );
  });

  it('drops a row a transaction changed before LOW when the chunk snapshot did not see it yet', () => {
    const rows = [{ id: 'a' }, { id: 'b' }];
    const snapshot: XidSnapshot = { xmin: 100, xmax: 102, xip: new Set([100]) };
    const before: TableTouch[] = [{ xid: 99, whole: ['b'], partial: [] }, { xid: 100, whole: ['a'], partial: [] }];
    expect(settleChunk(rows, { before, inside: [] }, snapshot)).toEqual([{ id: 'b' }]);
    expect(settleChunk(rows, { before: [], inside: [{ xid: 101, whole: ['b'], partial: [] }] }, snapshot)).toEqual([{ id: 'a' }]);
    expect(settleChunk(rows, { before: [], inside: [{ xid: 101, whole: 'all', partial: [] }] }, snapshot)).toEqual([]);
  });

  it("lays the values of updates that left a column out over the row read, in stream order; a whole row or delete leaves it to the stream", () => {
    const rows = [{ id: 'a', status: 'todo', description: 'long' }, { id: 'b', status: 'todo', description: 'long' }, { id: 'c', status: 'todo', description: 'x' }];
    const snapshot: XidSnapshot = { xmin: 100, xmax: 100, xip: new Set() };
    const inside: TableTouch[] = [
      { xid: 100, whole: [], partial: [{ id: 'a', status: 'doing' }, { id: 'b', status: 'doing' }] },
      { xid: 101, whole: ['b'], partial: [{ id: 'a', status: 'done' }] },
    ];
    expect(settleChunk(rows, { before: [], inside }, snapshot)).toEqual([{ id: 'a', status: 'done', description: 'long' }, rows[2]]);
    expect(rows[0]).toEqual({ id: 'a', status: 'todo', description: 'long' });
  });

  it('accepts only well-formed signals for captured tables', () => {
    const enc = (o: unknown) => Buffer.from(JSON.stringify(o));
    expect(parseSignal(enc({ action: 'snapshot', request: { tables: ['tasks'], workspace: 'w' } }))).toMatchObject({ action: 'snapshot' });
    expect(parseSignal(enc({ action: 'stop-snapshot' }))).toEqual({ action: 'stop-snapshot' });
    expect(parseSignal(enc({ action: 'snapshot', request: { tables: ['users'] } }))).toBeUndefined();
    expect(parseSignal(enc({ action: 'snapshot', request: { tables: ['tasks'], target: 'search' } }))).toEqual({ action: 'snapshot', request: { tables: ['tasks'], target: 'search' } });
    expect(parseSignal(enc({ action: 'snapshot', request: { tables: ['tasks'], target: 'not a name' } }))).toBeUndefined();
    expect(parseSignal(Buffer.from('not json'))).toBeUndefined();
  });
});
