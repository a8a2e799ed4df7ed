import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { eventId, parseLsn } from '../../lib/event-id.js';
import { compareHistory, eventsFromSlotRows, parseTestDecodingLine, type HistoryEvent, type SeenEvent } from './history.js';

// Lines as test_decoding printed them on Postgres 17 (ids shortened where irrelevant).
const TASK_UPDATE =
  "table public.tasks: UPDATE: id[uuid]:'ec8ef6da-3434-594a-a908-073e8495baf4' workspace_id[uuid]:'ad718d0d-bc86-5888-b699-140c5500ee43' project_id[uuid]:'b9afe82b-94ac-559a-81d7-7ae933c7e410' title[text]:'it''s x' description[text]:unchanged-toast-datum status[text]:'todo' priority[smallint]:2 assignee_id[uuid]:'188ec1e0-bf17-50c4-b8d5-5516fdd3c807' due_date[date]:null \"position\"[double precision]:122368 created_by[uuid]:null created_at[timestamp with time zone]:'2026-11-26 11:55:00.1+00' updated_at[timestamp with time zone]:'2026-11-26 11:55:00.1+00'";
const MEMBERSHIP_DELETE =
  "table public.memberships: DELETE: id[uuid]:'cba8c848-0203-51a2-b4e7-4a134c1f57b3' workspace_id[uuid]:'0e060a85-42e5-57bc-b7a3-18b02b7657d5' user_id[uuid]:'8bbc5f59-943a-532e-8117-1541705259f1'";

describe('test_decoding parser', () => {
  it('parses an update with an unchanged TOAST column, a quoted identifier, nulls and escaped quotes', () => {
    const row = parseTestDecodingLine(TASK_UPDATE);
    expect(row.kind).toBe('change');
    if (row.kind !== 'change') return;
    expect(row.change.table).toBe('tasks');
    expect(row.change.op).toBe('u');
    const t = row.change.newTuple!;
    expect(t.title).toBe("it's x");
    expect(t.description).toBeUndefined();
    expect('description' in t).toBe(true);
    expect(t.due_date).toBeNull();
    expect(t.position).toBe('122368');
    expect(t.created_at).toBe('2026-11-26 11:55:00.1+00');
  });

  it('parses old-key/new-tuple, deletes by identity, truncates and transaction bounds', () => {
    const upd = parseTestDecodingLine("table public.tasks: UPDATE: old-key: id[uuid]:'a' workspace_id[uuid]:'w' project_id[uuid]:'p1' new-tuple: id[uuid]:'a' workspace_id[uuid]:'w' project_id[uuid]:'p2' title[text]:'new-tuple: not a marker'");
    expect(upd).toMatchObject({ kind: 'change', change: { oldKey: { project_id: 'p1' }, newTuple: { project_id: 'p2', title: 'new-tuple: not a marker' } } });
    expect(parseTestDecodingLine(MEMBERSHIP_DELETE)).toMatchObject({ kind: 'change', change: { op: 'd', oldKey: { user_id: '8bbc5f59-943a-532e-8117-1541705259f1' } } });
    expect(parseTestDecodingLine('table public.tasks, public.comments: TRUNCATE: (no-flags)')).toMatchObject({ kind: 'change', change: { op: 't', tables: ['tasks', 'comments'] } });
    expect(parseTestDecodingLine('BEGIN 743')).toEqual({ kind: 'begin', xid: '743' });
    expect(parseTestDecodingLine('COMMIT 743')).toEqual({ kind: 'commit', xid: '743' });
  });

  it('numbers only captured-table changes and routes them as the envelope does', () => {
    const rows = [
      { lsn: '0/100', xid: '9', data: 'BEGIN 9' },
      { lsn: '0/100', xid: '9', data: "table public.users: INSERT: id[uuid]:'u' email[text]:'e'" },
      { lsn: '0/180', xid: '9', data: TASK_UPDATE },
      { lsn: '0/200', xid: '9', data: MEMBERSHIP_DELETE },
      { lsn: '0/260', xid: '9', data: 'COMMIT 9' },
    ];
    const events = eventsFromSlotRows(rows, (end) => end - 0x30n);
    const truncate = eventsFromSlotRows(
      [
        { lsn: '0/300', xid: '10', data: 'BEGIN 10' },
        { lsn: '0/300', xid: '10', data: 'table public.workspaces, public.tasks, public.comments: TRUNCATE: cascade' },
        { lsn: '0/340', xid: '10', data: 'COMMIT 10' },
      ],
      (end) => end,
    );
    expect(truncate).toMatchObject([{ table: 'tasks', op: 't', workspaceId: '*', key: {}, txIndex: 0 }]);
    const commitLsn = parseLsn('0/230');
    expect(events).toEqual([
      {
        id: eventId({ commitLsn, txIndex: 0 }),
        commitLsn,
        txIndex: 0,
        xid: '9',
        table: 'tasks',
        op: 'u',
        workspaceId: 'ad718d0d-bc86-5888-b699-140c5500ee43',
        projectId: 'b9afe82b-94ac-559a-81d7-7ae933c7e410',
        key: { id: 'ec8ef6da-3434-594a-a908-073e8495baf4' },
      },
      { id: eventId({ commitLsn, txIndex: 1 }), commitLsn, txIndex: 1, xid: '9', table: 'memberships', op: 'd', workspaceId: '0e060a85-42e5-57bc-b7a3-18b02b7657d5', key: { id: 'cba8c848-0203-51a2-b4e7-4a134c1f57b3' } },
    ]);
  });
});

// ---- compareHistory properties ----

const WORKSPACES = ['w1', 'w2', 'w3'];
const PROJECTS: Record<string, (string | undefined)[]> = { w1: ['p1', 'p2', undefined], w2: ['p3', undefined], w3: ['p4'] };

/** A history: transactions of 1–4 changes with increasing commit LSNs, random routing. */
const historyArb = fc
  .array(fc.array(fc.tuple(fc.nat(2), fc.nat(2)), { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 25 })
  .map((txs) => {
    const out: HistoryEvent[] = [];
    txs.forEach((changes, t) => {
      const commitLsn = BigInt(0x1000 + t * 0x100);
      changes.forEach(([w, p], txIndex) => {
        const workspaceId = WORKSPACES[w]!;
        const projects = PROJECTS[workspaceId]!;
        const projectId = projects[p % projects.length];
        out.push({ id: eventId({ commitLsn, txIndex }), commitLsn, txIndex, xid: String(t), table: 'tasks', op: 'u', workspaceId, ...(projectId ? { projectId } : {}), key: { id: `k${t}.${txIndex}` } });
      });
    });
    return out;
  });

const asSeen = (e: HistoryEvent): SeenEvent => ({ id: e.id, workspaceid: e.workspaceId, projectid: e.projectId });
const nothing = { lost: [], duplicated: [], outOfOrderByWorkspace: [], outOfOrderByProject: [], unexpected: [], misrouted: [] };

describe('compareHistory', () => {
  it('reports nothing for an exact copy', () => {
    fc.assert(fc.property(historyArb, (truth) => expect(compareHistory(truth, truth.map(asSeen))).toEqual(nothing)));
  });

  it('reports exactly the dropped events as lost', () => {
    fc.assert(
      fc.property(historyArb, fc.infiniteStream(fc.boolean()), (truth, coin) => {
        const drop = truth.map(() => coin.next().value as boolean);
        const seen = truth.filter((_, i) => !drop[i]).map(asSeen);
        expect(compareHistory(truth, seen)).toEqual({ ...nothing, lost: truth.filter((_, i) => drop[i]).map((e) => e.id) });
      }),
    );
  });

  it('reports exactly the redelivered events as duplicated, with their counts', () => {
    fc.assert(
      fc.property(historyArb, fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 10 }), (truth, picks) => {
        const seen = truth.map(asSeen);
        const extra = new Map<string, number>();
        for (const [which, where] of picks) {
          const e = truth[which % truth.length]!;
          const original = seen.findIndex((s) => s.id === e.id);
          // A redelivery comes after the original delivery.
          seen.splice(original + 1 + (where % (seen.length - original)), 0, asSeen(e));
          extra.set(e.id, (extra.get(e.id) ?? 1) + 1);
        }
        const result = compareHistory(truth, seen);
        expect(new Map(result.duplicated.map((d) => [d.id, d.times]))).toEqual(extra);
        expect({ ...result, duplicated: [] }).toEqual(nothing);
      }),
    );
  });

  it('reports a delayed event as out of order exactly when a later event of its workspace/project overtook it', () => {
    fc.assert(
      fc.property(historyArb, fc.nat(), fc.nat(), (truth, a, b) => {
        const from = a % truth.length;
        const to = from + (b % (truth.length - from));
        const e = truth[from]!;
        const seen = truth.map(asSeen);
        seen.splice(from, 1);
        seen.splice(to, 0, asSeen(e));
        const overtakers = truth.slice(from + 1, to + 1);
        const result = compareHistory(truth, seen);
        expect(result.outOfOrderByWorkspace).toEqual(overtakers.some((o) => o.workspaceId === e.workspaceId) ? [e.id] : []);
        expect(result.outOfOrderByProject).toEqual(e.projectId !== undefined && overtakers.some((o) => o.projectId === e.projectId) ? [e.id] : []);
        expect({ ...result, outOfOrderByWorkspace: [], outOfOrderByProject: [] }).toEqual(nothing);
      }),
    );
  });

  it('flags every delayed event that was overtaken, for many delays at once (brute-force oracle)', () => {
    fc.assert(
      fc.property(historyArb, fc.infiniteStream(fc.boolean()), (truth, coin) => {
        const delayed = truth.filter(() => coin.next().value as boolean);
        const order = [...truth.filter((e) => !delayed.includes(e)), ...[...delayed].reverse()];
        const rank = new Map(truth.map((e, i) => [e.id, i]));
        const overtaken = (same: (x: HistoryEvent, y: HistoryEvent) => boolean) =>
          order.filter((e, i) => order.slice(0, i).some((o) => same(o, e) && rank.get(o.id)! > rank.get(e.id)!)).map((e) => e.id);
        const result = compareHistory(truth, order.map(asSeen));
        expect(result.outOfOrderByWorkspace).toEqual(overtaken((x, y) => x.workspaceId === y.workspaceId));
        expect(result.outOfOrderByProject).toEqual(overtaken((x, y) => y.projectId !== undefined && x.projectId === y.projectId));
        expect(result.lost).toEqual([]);
      }),
    );
  });

  it('reports unknown ids as unexpected and wrong routing as misrouted', () => {
    fc.assert(
      fc.property(historyArb, fc.nat(), (truth, n) => {
        const victim = truth[n % truth.length]!;
        const stranger: SeenEvent = { id: eventId({ commitLsn: 1n, txIndex: 0 }), workspaceid: 'w9' };
        const seen = [stranger, ...truth.map((e) => (e === victim ? { ...asSeen(e), workspaceid: 'elsewhere' } : asSeen(e)))];
        expect(compareHistory(truth, seen)).toEqual({ ...nothing, unexpected: [stranger.id], misrouted: [victim.id] });
      }),
    );
  });
});
