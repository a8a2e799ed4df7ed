import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { parseSignal, parseSnapshot, survivingRows, type TableTouch, visibleIn, type XidSnapshot } from './snapshot.js';

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
 * A model of one chunk: transactions in WAL (commit) order, each setting one key to a new value
 * (or truncating), with LOW and HIGH watermarks among them. The chunk's snapshot sees every
 * transaction before LOW except some that committed there but were not yet visible, any of those
 * between LOW and HIGH, none after HIGH; per key it sees a prefix of its versions (a writer of a
 * key waits for the previous writer to finish). A reader applies the stream in order with the
 * surviving rows at HIGH; it must end with the table's last state.
 */
const chunkHistory = fc
  .record({
    keys: fc.integer({ min: 1, max: 6 }),
    txs: fc.array(fc.record({ key: fc.nat(5), truncate: fc.nat(9).map((n) => n === 0), seen: fc.boolean() }), { maxLength: 24 }),
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
    const history = txs.map((t, i) => ({ key: t.truncate ? undefined : String(t.key % keys), seen: t.seen, age: ages.get(i)!, xid: xidAfter(xidBase, ages.get(i)!), value: `v${i}` }));
    return { keys, history, low, high, late: new Set(lateBeforeLow.filter((i) => i < low)), xidBase };
  });

describe('snapshot chunk window', () => {
  it('a reader applying the stream and the surviving rows ends with the table (visibility out of WAL order)', () => {
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
        const state = (upTo: (i: number) => boolean) => {
          const table = new Map<string, string>(Array.from({ length: keys }, (_, k) => [String(k), 'initial']));
          history.forEach((t, i) => {
            if (!upTo(i)) return;
            if (t.key === undefined) table.clear();
            else table.set(t.key, t.value);
          });
          return table;
        };
        const rows = [...state((i) => visible.has(i))].map(([id, v]) => ({ id, v }));
        // the snapshot as Postgres would give it: xmax one past the youngest visible xid, the invisible ones below it in progress
        const youngestVisible = Math.max(-1, ...[...visible].map((i) => history[i]!.age));
        const xmax = xidAfter(xidBase, youngestVisible + 1);
        const inProgress = history.filter((t, i) => !visible.has(i) && t.age < youngestVisible).sort((a, b) => a.age - b.age);
        const s: XidSnapshot = { xmin: inProgress[0]?.xid ?? xmax, xmax, xip: new Set(inProgress.map((t) => t.xid)) };
        const touch = (t: (typeof history)[number]): TableTouch => ({ xid: t.xid, keys: t.key === undefined ? 'all' : [t.key] });
        const surviving = survivingRows(rows, { before: history.slice(0, low).map(touch), inside: history.slice(low, high).map(touch) }, s);
        // the reader: the stream up to HIGH, the surviving rows, then the rest of the stream
        const reader = new Map<string, string>(Array.from({ length: keys }, (_, k) => [String(k), 'initial']));
        const apply = (t: (typeof history)[number]) => (t.key === undefined ? reader.clear() : reader.set(t.key, t.value));
        history.slice(0, high).forEach(apply);
        for (const r of surviving) reader.set(String(r.id), String(r.v));
        history.slice(high).forEach(apply);
        expect(reader).toEqual(state(() => true));
      }),
    );
  });

  it('drops a row a transaction changed before LOW when the chunk snapshot did not see it yet', () => {
    const rows = [{ id: 'a' }, { id: 'b' }];
    const snapshot: XidSnapshot = { xmin: 100, xmax: 102, xip: new Set([100]) };
    const before: TableTouch[] = [{ xid: 99, keys: ['b'] }, { xid: 100, keys: ['a'] }];
    expect(survivingRows(rows, { before, inside: [] }, snapshot)).toEqual([{ id: 'b' }]);
    expect(survivingRows(rows, { before: [], inside: [{ xid: 101, keys: ['b'] }] }, snapshot)).toEqual([{ id: 'a' }]);
    expect(survivingRows(rows, { before: [], inside: [{ xid: 101, keys: 'all' }] }, snapshot)).toEqual([]);
  });

  it('accepts only well-formed signals for captured tables', () => {
    const enc = (o: unknown) => Buffer.from(JSON.stringify(o));
    expect(parseSignal(enc({ action: 'snapshot', request: { tables: ['tasks'], workspace: 'w' } }))).toMatchObject({ action: 'snapshot' });
    expect(parseSignal(enc({ action: 'stop-snapshot' }))).toEqual({ action: 'stop-snapshot' });
    expect(parseSignal(enc({ action: 'snapshot', request: { tables: ['users'] } }))).toBeUndefined();
    expect(parseSignal(Buffer.from('not json'))).toBeUndefined();
  });
});
