import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { decodeEvent, type StreamEvent } from '@taskflow/stream/events';
import { sampleEvent } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import { mentionsIn, mergeWatches, type Notification, notificationsOf, planBatch, type Watchers, watchesOf } from './rules.js';
import { historyOf, steps, USERS } from './test-histories.js';

const byKey = (ns: readonly Notification[]) => [...ns].sort((a, b) => `${a.userId}/${a.id}`.localeCompare(`${b.userId}/${b.id}`));

/** Runs the plan batch by batch against a store that keeps every fact recorded (`initial` first). */
function planInBatches(events: readonly StreamEvent[], cuts: readonly number[], initial: ReadonlyMap<string, Watchers> = new Map()): Notification[] {
  const store = new Map<string, Watchers>(initial);
  const out: Notification[] = [];
  const bounds = [...new Set([0, ...cuts.map((c) => c % (events.length + 1)), events.length])].sort((a, b) => a - b);
  for (let i = 1; i < bounds.length; i += 1) {
    const plan = planBatch(events.slice(bounds[i - 1], bounds[i]), store);
    out.push(...plan.notifications);
    for (const w of plan.watches) store.set(w.taskId, mergeWatches(store.get(w.taskId) ?? new Map(), [w]));
  }
  return out;
}

function allFacts(events: readonly StreamEvent[]): Map<string, Watchers> {
  const store = new Map<string, Watchers>();
  for (const w of events.flatMap(watchesOf)) store.set(w.taskId, mergeWatches(store.get(w.taskId) ?? new Map(), [w]));
  return store;
}

describe('notification rules', () => {
  it('equal the in-order model for any history, in any split into batches', () => {
    fc.assert(
      fc.property(steps, fc.array(fc.nat(), { maxLength: 8 }), (list, cuts) => {
        const h = historyOf(list);
        expect(byKey(planInBatches(h.events, cuts))).toEqual(byKey(h.notifications));
      }),
    );
  });

  it('are the same when the store already holds facts of later events (a batch re-read after a crash, a replay)', () => {
    fc.assert(
      fc.property(steps, fc.array(fc.nat(), { maxLength: 8 }), fc.nat(), (list, cuts, from) => {
        const h = historyOf(list);
        // Everything was processed once; the stream is read again from an arbitrary event on.
        const start = h.events.length === 0 ? 0 : from % h.events.length;
        const again = planInBatches(h.events.slice(start), cuts, allFacts(h.events));
        expect(byKey(again)).toEqual(byKey(h.notifications.filter((n) => n.id >= (h.events[start]?.id ?? ''))));
      }),
    );
  });

  it('notify each user at most once per event, never the one who made the change', () => {
    fc.assert(
      fc.property(steps, (list) => {
        const h = historyOf(list);
        const plan = planBatch(h.events, new Map());
        const keys = plan.notifications.map((n) => `${n.userId}/${n.id}`);
        expect(new Set(keys).size).toBe(keys.length);
        for (const n of plan.notifications) expect(n.userId).not.toBe(n.actorId);
      }),
    );
  });
});

describe('mentionsIn', () => {
  const [a, b] = USERS;
  it('finds @<uuid> mentions once each, case-folded, and nothing that only looks like one', () => {
    expect(mentionsIn(`hi @${a}, @${b!.toUpperCase()} and @${a} again`)).toEqual([a, b]);
    expect(mentionsIn(`mail x@${a} or @${a}x or @${a}-1 or @@${a}`)).toEqual([]);
    expect(mentionsIn(`(@${a})`)).toEqual([a]);
  });
});

describe('notificationsOf', () => {
  const ev = (e: unknown): StreamEvent => {
    const d = decodeEvent(Buffer.from(JSON.stringify(e)), validateEvent);
    if (!d.ok) throw new Error(d.message);
    return d.event;
  };
  const [a, b] = USERS;

  it('an update that does not name assignee_id as changed notifies nobody, even with an assignee', () => {
    expect(notificationsOf(ev(sampleEvent('task.updated', { row: { assignee_id: a }, changed: ['title'] })))).toEqual([]);
    expect(notificationsOf(ev(sampleEvent('task.updated', { row: { assignee_id: a }, changed: ['assignee_id'] })))).toMatchObject([{ userId: a, kind: 'assigned' }]);
    // Without changed-column capture on tasks, `changed` lists every column: nothing can be told.
    const unknown = sampleEvent('task.updated', { row: { assignee_id: a } });
    expect(notificationsOf(ev({ ...unknown, data: { ...unknown.data, changed: Object.keys(unknown.data.after ?? {}) } }))).toEqual([]);
  });

  it('a deleted or snapshot row notifies nobody; an encrypted body gives no text and no mentions', () => {
    expect(notificationsOf(ev(sampleEvent('task.deleted')))).toEqual([]);
    expect(notificationsOf(ev(sampleEvent('task.snapshot', { row: { assignee_id: a, created_by: b } })))).toEqual([]);
    const sealed = ev(sampleEvent('comment.created', { row: { author_id: b, body: { enc: 'v1', kid: 'k', iv: 'AAAA', ct: '' } as never } }));
    expect(notificationsOf(sealed, new Map([[a!, '0']]))).toEqual([expect.not.objectContaining({ text: expect.anything() })]);
  });

  it('a watcher from this very event or a later one is not notified', () => {
    const c = ev(sampleEvent('comment.created', { row: { author_id: b } }));
    expect(notificationsOf(c, new Map([[a!, c.id]]))).toEqual([]);
    expect(notificationsOf(c, new Map([[a!, '0']]))).toMatchObject([{ userId: a, kind: 'commented', commentId: sampleEvent('comment.created').data.key.id }]);
  });
});
