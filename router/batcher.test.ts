import { sampleEvent } from '../schemas/fixtures.js';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { gunzipSync } from 'node:zlib';
import { ProjectBatcher } from './batcher.js';
import type { RouterEvent } from './event.js';
import { encodeMessages, type OutboundMessage } from './messages.js';
import type { SequencedChange } from './sequencer.js';
import { createBucket, take } from '../lib/rate-limit.js';

const project = { workspaceId: 'ws-1', projectId: 'p-1' };

function change(seq: number, padding: number, time = '2026-11-26T12:00:00Z'): SequencedChange {
  const id = `${seq.toString(16).toUpperCase().padStart(16, '0')}-00000000`;
  const event = {
    id,
    position: { commitLsn: BigInt(seq), txIndex: 0 },
    workspaceId: project.workspaceId,
    projectId: project.projectId,
    type: 'taskflow.task.updated',
    envelope: sampleEvent('task.updated', { commitLsn: BigInt(seq), time, workspaceId: 'ws-1', projectId: 'p-1', entityId: `t${seq}`, changed: ['title'], row: { title: 'x'.repeat(padding) } }),
  } satisfies RouterEvent;
  return { seq, event };
}

function decode(m: OutboundMessage): { fromSeq: number; toSeq: number; mode: string; changes: { seq: number }[] } {
  const raw = m.payload[0] === 0x1f && m.payload[1] === 0x8b ? gunzipSync(m.payload) : m.payload;
  return JSON.parse(raw.toString()) as { fromSeq: number; toSeq: number; mode: string; changes: { seq: number }[] };
}

describe('encodeMessages', () => {
  it('never exceeds the size limit and keeps every change once, in seq order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 6000 }), { minLength: 1, maxLength: 60 }),
        fc.constantFrom('full' as const, 'thin' as const),
        fc.boolean(),
        fc.integer({ min: 2048, max: 20_000 }),
        (paddings, mode, gzip, maxBytes) => {
          const changes = paddings.map((p, i) => change(i + 1, p));
          const messages = encodeMessages(project, changes, { mode, gzip, maxBytes });
          const seqs: number[] = [];
          for (const m of messages) {
            expect(m.payload.length).toBeLessThanOrEqual(maxBytes);
            const body = decode(m);
            expect(body.fromSeq).toBe(m.fromSeq);
            expect(body.toSeq).toBe(m.toSeq);
            seqs.push(...body.changes.map((c) => c.seq));
          }
          expect(seqs).toEqual(changes.map((c) => c.seq));
        },
      ),
    );
  });

  it('sends a single change too big for a full message as thin', () => {
    const [m] = encodeMessages(project, [change(1, 200_000)], { mode: 'full', gzip: false, maxBytes: 128 * 1024 });
    expect(m && decode(m).mode).toBe('thin');
  });

  it('thin changes carry ids, seq and changed fields only', () => {
    const [m] = encodeMessages(project, [change(7, 10)], { mode: 'thin', gzip: false, maxBytes: 128 * 1024 });
    expect(m && decode(m).changes).toEqual([{ seq: 7, id: '0000000000000007-00000000', type: 'taskflow.task.updated', time: '2026-11-26T12:00:00Z', key: { id: 't7' }, changed: ['title'] }]);
  });
});

describe('ProjectBatcher', () => {
  it('holds a project for the window, then emits its changes in seq order, once', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 500 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 1, max: 5 })), { minLength: 1, maxLength: 40 }),
        (windowMs, steps) => {
          const batcher = new ProjectBatcher({ windowMs, mode: 'thin', gzip: false, maxBytes: 128 * 1024 });
          let now = 0;
          let seq = 0;
          let openedAt: number | undefined;
          const out: OutboundMessage[] = [];
          for (const [dt, n] of steps) {
            now += dt;
            const due = batcher.takeDue(now);
            if (due.length > 0) {
              expect(openedAt).toBeDefined();
              expect(now - (openedAt ?? 0)).toBeGreaterThanOrEqual(windowMs);
              openedAt = undefined;
            }
            out.push(...due);
            const changes = Array.from({ length: n }, () => change(++seq, 10));
            if (openedAt === undefined) openedAt = now;
            batcher.add(project, changes, now);
            if (windowMs === 0) expect(batcher.nextDueAt()).toBe(now);
          }
          out.push(...batcher.takeAll());
          expect(batcher.size).toBe(0);
          expect(out.flatMap((m) => decode(m).changes.map((c) => c.seq))).toEqual(Array.from({ length: seq }, (_, i) => i + 1));
        },
      ),
    );
  });

  it('opens the window at the first change commit time: what already waited that long goes at once', () => {
    const batcher = new ProjectBatcher({ windowMs: 100, mode: 'thin', gzip: false, maxBytes: 128 * 1024 });
    const committed = Date.parse('2026-11-26T12:00:00.000Z');
    batcher.add(project, [change(1, 1, '2026-11-26T12:00:00.000Z')], committed + 30); // read 30 ms after commit
    expect(batcher.nextDueAt()).toBe(committed + 100);
    expect(batcher.takeDue(committed + 99)).toEqual([]);
    batcher.add(project, [change(2, 1, '2026-11-26T12:00:00.090Z')], committed + 95); // joins the open window
    expect(batcher.takeDue(committed + 100).map((m) => decode(m).changes.map((c) => c.seq))).toEqual([[1, 2]]);
    batcher.add(project, [change(3, 1, '2026-11-26T12:00:00.000Z')], committed + 250); // waited longer than the window
    expect(batcher.nextDueAt()).toBe(committed + 100);
    expect(batcher.takeDue(committed + 250)).toHaveLength(1);
    batcher.add(project, [change(4, 1, '2026-11-26T12:00:09.000Z')], committed + 300); // clock ahead of ours: counts as now
    expect(batcher.nextDueAt()).toBe(committed + 400);
  });

  it('collapses a re-published seq into one change', () => {
    const batcher = new ProjectBatcher({ windowMs: 100, mode: 'thin', gzip: true, maxBytes: 128 * 1024 });
    batcher.add(project, [change(1, 1), change(2, 1)], 0);
    batcher.add(project, [change(2, 1), change(3, 1)], 50);
    expect(batcher.takeDue(99)).toEqual([]);
    const due = batcher.takeDue(100);
    expect(due.map((m) => decode(m).changes.map((c) => c.seq))).toEqual([[1, 2, 3]]);
  });

  it("gives each message its changes' commit times in seq order, as encoding them alone does", () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.tuple(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 60_000 }), fc.integer({ min: 0, max: 3000 })), { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 6 }),
        fc.constantFrom('full' as const, 'thin' as const),
        fc.integer({ min: 2048, max: 20_000 }),
        (adds, mode, maxBytes) => {
          const batcher = new ProjectBatcher({ windowMs: 100, mode, gzip: false, maxBytes });
          const latest = new Map<number, SequencedChange>();
          for (const add of adds) {
            const changes = add.map(([seq, ms, padding]) => change(seq, padding, new Date(Date.parse('2026-11-26T12:00:00Z') + ms).toISOString()));
            for (const c of changes) latest.set(c.seq, c); // a re-published seq replaces the change
            batcher.add(project, changes, 0);
          }
          const messages = batcher.takeAll();
          const expected = encodeMessages(project, [...latest.values()].sort((a, b) => a.seq - b.seq), { mode, gzip: false, maxBytes });
          expect(messages.map((m) => m.commitTimes)).toEqual(expected.map((m) => m.commitTimes));
          expect(messages.flatMap((m) => m.commitTimes)).toEqual([...latest.values()].sort((a, b) => a.seq - b.seq).map((c) => Date.parse(c.event.envelope.time)));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('token bucket', () => {
  it('allows at most burst + rate × elapsed publishes', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 30 }), { minLength: 1, maxLength: 300 }), (gaps) => {
        const bucket = createBucket(100, 10, 0);
        let now = 0;
        let allowed = 0;
        for (const g of gaps) {
          now += g;
          const r = take(bucket, now);
          if (r.ok) allowed += 1;
          else expect(r.waitMs).toBeGreaterThan(0);
        }
        expect(allowed).toBeLessThanOrEqual(10 + Math.floor((now * 100) / 1000));
      }),
    );
  });
});
