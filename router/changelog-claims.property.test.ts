// Property: routers that race for one project (a lease moved, the old owner still writing), crash
// between any two of their table requests, re-read from the last checkpoint, and meet a table
// whose items expire (TTL) and are deleted in any order, never reuse a seq, never go back, never
// publish a seq for another event than the changelog holds, and leave the live changelog one
// dense run ending at the head (so the replay API's 410 explains every gap); without expiry the
// changelog is exactly the stream, each event once, dense from 1. The routers' modes differ (full
// or thin entries, as across a switch of ROUTER_PAYLOAD_MODE): the rules compare ids, never forms.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { eventId } from '../lib/event-id.js';
import { buildItem, changelogEntry, type ChangelogItem, createIdSearch, entryId, isThinEntry, type ProjectRef, StaleHeadError } from './changelog.js';
import { ChangelogClaims, type ChangelogTable, RESERVE_SEQS, type Reservation, TIP_RECHECK_MS } from './changelog-claims.js';
import type { RouterEvent } from './event.js';
import { MemoryChangelogStore, MemoryChangelogTable } from './memory-changelog.js';
import type { PayloadMode } from './messages.js';
import { replayAnswer } from './replay.js';
import { idsToLookUp, planSequence, type ProjectHead } from './sequencer.js';

const P: ProjectRef = { workspaceId: 'w', projectId: 'p' };
const TTL_MS = 7 * 24 * 3600_000;
const EVENTS = 150;
const stream: RouterEvent[] = Array.from({ length: EVENTS }, (_, i) => {
  const position = { commitLsn: BigInt(0x100 * (i + 1)), txIndex: 0 };
  const id = eventId(position);
  return { id, position, envelope: { id, type: 'taskflow.task.updated', time: '2026-12-04T00:00:00Z', data: { key: { id: `t${i}` } } } } as unknown as RouterEvent;
});

class Crash extends Error {}

interface Written {
  item: ChangelogItem;
  atMs: number;
  /** Highest seq of any item written before, and whether one of them was live then. */
  maxBefore: number;
  liveBefore: boolean;
}

/** The shared table as one router sees it: each request waits for the scheduler, and may crash the router first. */
class RouterView implements ChangelogTable {
  calls = 0;
  crashAt = Infinity;

  constructor(
    private readonly shared: MemoryChangelogTable,
    private readonly s: fc.Scheduler,
    private readonly written: Written[],
  ) {}

  private async step(): Promise<void> {
    await this.s.schedule(Promise.resolve());
    if (++this.calls >= this.crashAt) throw new Crash();
  }

  async newestItem(p: ProjectRef) {
    await this.step();
    return this.shared.newestItem(p);
  }

  async head(p: ProjectRef) {
    await this.step();
    return this.shared.head(p);
  }

  async extendReservation(p: ProjectRef, r: Reservation) {
    await this.step();
    return this.shared.extendReservation(p, r);
  }

  async restart(p: ProjectRef, seen: number | null, r: Reservation) {
    await this.step();
    return this.shared.restart(p, seen, r);
  }

  async putItemIfAbsent(p: ProjectRef, item: ChangelogItem, expiresAtMs: number) {
    await this.step();
    const before = [...(this.shared.items.get('w/p')?.values() ?? [])];
    const maxBefore = Math.max(0, ...this.written.map((w) => w.item.toSeq));
    const ok = await this.shared.putItemIfAbsent(p, item, expiresAtMs);
    if (ok) this.written.push({ item, atMs: this.shared.now(), maxBefore, liveBefore: before.some((b) => b.expiresAtMs > this.shared.now()) });
    return ok;
  }

  async itemAt(p: ProjectRef, fromSeq: number) {
    await this.step();
    return this.shared.itemAt(p, fromSeq);
  }
}

interface Router {
  view: RouterView;
  mode: PayloadMode;
  claims: ChangelogClaims;
  head: ProjectHead | undefined;
  cursor: number;
}

const action = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('batches' as const), runs: fc.array(fc.record({ router: fc.nat({ max: 2 }), size: fc.integer({ min: 1, max: 4 }), crashAfter: fc.option(fc.nat({ max: 6 }), { freq: 4 }) }), { minLength: 1, maxLength: 3 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('wait' as const), ms: fc.constantFrom(1000, 60_000, TTL_MS - TIP_RECHECK_MS / 2, TTL_MS - 2 * TIP_RECHECK_MS, TTL_MS + 1000) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('sweep' as const), keep: fc.constantFrom([false], [false, true], [true, false, false]) }) },
);

describe('changelog claims (body items fence, the head reserves)', () => {
  it('never reuses a seq, never goes back, publishes what the changelog holds, and keeps the live changelog one dense run', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(action, { minLength: 1, maxLength: 25 }), fc.boolean(), fc.constantFrom(1, 3, RESERVE_SEQS), fc.array(fc.constantFrom<PayloadMode>('full', 'thin'), { minLength: 3, maxLength: 3 }), async (s, actions, expiring, reserveSeqs, modes) => {
        let now = 1_700_000_000_000;
        const shared = new MemoryChangelogTable(() => now);
        const written: Written[] = [];
        const published: { seq: number; id: string; atMs: number }[] = [];
        let checkpoint = 0;
        const fresh = (i: number): Router => {
          const view = new RouterView(shared, s, written);
          return { view, mode: modes[i]!, claims: new ChangelogClaims(view, () => now, TTL_MS, reserveSeqs), head: undefined, cursor: checkpoint };
        };
        const routers = [fresh(0), fresh(1), fresh(2)];

        // One batch as ShardRouter.sequence runs it: head (cached or read), lookups, plan, append.
        const batch = async (i: number, size: number): Promise<void> => {
          const r = routers[i]!;
          const events = stream.slice(r.cursor, r.cursor + size);
          if (events.length === 0) return;
          try {
            const head = r.head ?? (await r.claims.readHead(P));
            const lookUp = idsToLookUp(head, events);
            const search = createIdSearch(lookUp);
            for (const item of shared.live(P).filter((it) => it.fromSeq <= head.seq).reverse()) if (search.offer(item)) break;
            const plan = planSequence(head, events, search.found);
            if (plan.fresh.length > 0) await r.claims.append(P, [buildItem(plan.fresh.map((c) => changelogEntry(c.seq, c.event.envelope, r.mode)), plan.head)], head, plan.head);
            r.head = plan.head;
            for (const c of plan.changes) published.push({ seq: c.seq, id: c.event.id, atMs: now });
            r.cursor += events.length;
            checkpoint = Math.max(checkpoint, r.cursor);
          } catch (err) {
            if (err instanceof Crash) routers[i] = fresh(i);
            else if (err instanceof StaleHeadError) r.head = undefined;
            else throw err;
          }
        };

        for (const a of actions) {
          if (a.kind === 'wait') now += expiring ? a.ms : Math.min(a.ms, 60_000);
          else if (a.kind === 'sweep') {
            // DynamoDB deletes expired items late and in no particular order.
            let k = 0;
            const items = shared.items.get('w/p');
            for (const [from, it] of items ?? []) if (it.expiresAtMs <= now && !a.keep[k++ % a.keep.length]) items?.delete(from);
          } else {
            // Each router reads its shard one batch at a time; different routers race.
            const runs = a.runs.filter((run, k) => a.runs.findIndex((o) => o.router === run.router) === k);
            for (const run of runs) {
              const r = routers[run.router]!;
              r.view.crashAt = run.crashAfter === null ? Infinity : r.view.calls + run.crashAfter + 1;
            }
            const running = runs.map((run) => batch(run.router, run.size));
            await s.waitFor(Promise.all(running));
            for (const r of routers) r.view.crashAt = Infinity;
          }
        }

        // No seq is ever given to two items, and every item starts above everything before it:
        // right after the last one while anything was live, above it (a restart) otherwise.
        for (const [i, w] of written.entries()) {
          expect(w.item.fromSeq).toBeGreaterThan(w.maxBefore);
          if (w.liveBefore) expect(w.item.fromSeq).toBe(w.maxBefore + 1);
          for (const other of written.slice(0, i)) expect(other.item.toSeq < w.item.fromSeq || other.item.fromSeq > w.item.toSeq).toBe(true);
          // Within an item, stream order; its ids are its entries' (of either form), each in the form its writer keeps.
          expect(w.item.ids).toEqual([...w.item.ids].sort());
          expect(w.item.entries.map(entryId)).toEqual(w.item.ids);
          expect(new Set(w.item.entries.map((e) => (isThinEntry(e) ? 'thin' : 'full'))).size).toBe(1);
        }
        // An event gets a second seq only after the item holding its first had expired.
        const firstSeq = new Map<string, Written>();
        for (const w of written) {
          for (const id of w.item.ids) {
            const earlier = firstSeq.get(id);
            if (earlier) expect(earlier.atMs + TTL_MS).toBeLessThanOrEqual(w.atMs);
            else firstSeq.set(id, w);
          }
        }
        // Every published seq is the changelog's seq of that event.
        const holder = (seq: number) => written.find((w) => w.item.fromSeq <= seq && seq <= w.item.toSeq);
        for (const p of published) expect(holder(p.seq)?.item.ids[p.seq - holder(p.seq)!.item.fromSeq]).toBe(p.id);

        // The live changelog is one dense run ending at the head; replay serves it from any seq
        // in it and answers 410 below it.
        const reader = new MemoryChangelogStore(shared, TTL_MS);
        const live = shared.live(P);
        for (let k = 1; k < live.length; k += 1) expect(live[k]!.fromSeq).toBe(live[k - 1]!.toSeq + 1);
        const page = await reader.read(P, 0, 10_000);
        if (live.length > 0) expect(page.head.seq).toBe(live.at(-1)!.toSeq);
        const from = Math.max(0, (live[0]?.fromSeq ?? page.head.seq) - 3);
        for (const after of [0, ...Array.from({ length: Math.max(0, page.head.seq - from) }, (_, j) => from + j)].filter((a) => a < page.head.seq)) {
          const answer = replayAnswer(await reader.read(P, after, 10_000), after);
          const oldest = live[0]?.fromSeq;
          if (oldest !== undefined && after + 1 >= oldest) {
            expect(answer.status).toBe(200);
            expect(answer.status === 200 && answer.body.changes.map((c) => c.seq)).toEqual(Array.from({ length: page.head.seq - after }, (_, j) => after + 1 + j));
            // Replay answers each seq with the event the changelog (and the publish) gave it, in either form.
            if (answer.status === 200) for (const c of answer.body.changes) expect(entryId(c)).toBe(holder(c.seq)?.item.ids[c.seq - holder(c.seq)!.item.fromSeq]);
          } else expect(answer.status).toBe(410);
        }

        // Without expiry: the changelog is the stream's prefix, each event once, seq 1..n.
        if (!expiring) {
          const all = [...written].sort((a, b) => a.item.fromSeq - b.item.fromSeq).flatMap((w) => w.item.ids);
          expect(all).toEqual(stream.slice(0, all.length).map((e) => e.id));
          expect(written.map((w) => w.item.fromSeq).sort((a, b) => a - b)[0] ?? 1).toBe(1);
        }
      }),
      { numRuns: 200 },
    );
  });
});
