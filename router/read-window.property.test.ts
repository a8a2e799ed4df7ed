// Property: however a shard's records come in reads (any sizes, ages and gaps, reads delivered
// twice, a staging that fails and is retried), gathering them into windows (read-window.ts, as
// the shard processor does: on a due read, or at the window's timer) gives each project the same
// changelog as one staging per read: its events, each once, in stream order, seqs dense from 1;
// each project gets at most one changelog item per window; and what reaches the sink is every
// project's seqs once, in order.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { UserRecord } from '@taskflow/stream';
import { sampleEvent } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import { type ChangelogEntry, type ChangelogStore, entryId, projectKey, type ProjectRef } from './changelog.js';
import { MemoryChangelogStore } from './memory-changelog.js';
import { ReadWindow } from './read-window.js';
import { ShardRouter } from './shard-router.js';

const WORKSPACES = ['11111111-1111-4111-8111-111111111111', '11111111-1111-4111-8111-222222222222'];
const PROJECTS = ['22222222-2222-4222-8222-000000000001', '22222222-2222-4222-8222-000000000002', '22222222-2222-4222-8222-000000000003'];

interface Change {
  ws: number;
  project: number;
}

interface Read {
  size: number;
  /** Since the read before (ms). */
  gapMs: number;
  /** How old its oldest record is when it arrives (ms). */
  ageMs: number;
  twice: boolean;
}

const change = fc.record({ ws: fc.nat(WORKSPACES.length - 1), project: fc.nat(PROJECTS.length - 1) });
const read: fc.Arbitrary<Read> = fc.record({ size: fc.integer({ min: 1, max: 6 }), gapMs: fc.nat(150), ageMs: fc.nat(300), twice: fc.boolean() });

function records(changes: readonly Change[]): { records: UserRecord[]; projectOf: Map<string, string>; ids: string[] } {
  const projectOf = new Map<string, string>();
  const ids: string[] = [];
  const out = changes.map((c, i) => {
    const e = sampleEvent('task.updated', { workspaceId: WORKSPACES[c.ws], projectId: PROJECTS[c.project], commitLsn: BigInt(0x100 * (i + 1)), entityId: `33333333-3333-4333-8333-${String(i).padStart(12, '0')}` });
    projectOf.set(e.id, projectKey({ workspaceId: WORKSPACES[c.ws]!, projectId: PROJECTS[c.project]! }));
    ids.push(e.id);
    return { shardId: 's', sequenceNumber: String(i + 1), subSequenceNumber: 0, partitionKey: WORKSPACES[c.ws]!, data: Buffer.from(JSON.stringify(e)) };
  });
  return { records: out, projectOf, ids };
}

/** A changelog whose next append fails once, after writing nothing (a throttle), when armed. */
class FlakyChangelog implements ChangelogStore {
  failNext = false;
  constructor(readonly inner: MemoryChangelogStore) {}
  readHead = (p: ProjectRef) => this.inner.readHead(p);
  findSeqs: ChangelogStore['findSeqs'] = (p, h, ids) => this.inner.findSeqs(p, h, ids);
  read: ChangelogStore['read'] = (p, after, limit) => this.inner.read(p, after, limit);
  append: ChangelogStore['append'] = async (p, entries, expected, next) => {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('throttled');
    }
    return this.inner.append(p, entries, expected, next);
  };
}

describe('gathering reads into windows', () => {
  it('gives every project its events once, in order, dense, one item per window at most', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(change, { minLength: 1, maxLength: 40 }),
        fc.array(read, { minLength: 1, maxLength: 40 }),
        fc.constantFrom(0, 50, 100, 250),
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.boolean(), { maxLength: 40 }),
        async (changes, reads, windowMs, maxRecords, failures) => {
          const { records: all, projectOf, ids } = records(changes);
          const store = new MemoryChangelogStore();
          const changelog = new FlakyChangelog(store);
          const published = new Map<string, number[]>();
          const router = new ShardRouter({
            shardId: 's',
            consumer: 'router',
            changelog,
            deadLetters: { put: async () => {} },
            memberships: { apply: async () => {} },
            validate: validateEvent,
            sink: { enqueue: (p, cs) => published.set(projectKey(p), [...(published.get(projectKey(p)) ?? []), ...cs.map((c) => c.seq)]), flush: async () => {}, revoke: () => {} },
          });
          const window = new ReadWindow<UserRecord, number>({ windowMs, maxRecords });
          // Which projects each staged window held (one item each at most).
          const windows: Set<string>[] = [];
          let staging = 0;
          const stage = async () => {
            const taken = window.take();
            if (!taken) return;
            changelog.failNext = failures[staging++ % Math.max(1, failures.length)] ?? false;
            for (;;) {
              try {
                await router.stage(taken.records);
                break;
              } catch {
                // retried in place, as the shard processor does
              }
            }
            windows.push(new Set(taken.records.map((r) => projectOf.get(JSON.parse(Buffer.from(r.data).toString()).id)!)));
          };

          let now = 1_000_000;
          let at = 0;
          for (const [i, r] of reads.entries()) {
            if (at >= all.length) break;
            now += r.gapMs;
            const due = window.dueAt;
            if (due !== undefined && due <= now) await stage(); // the window's timer
            const slice = all.slice(at, (at += r.size));
            for (let n = 0; n < (r.twice ? 2 : 1); n += 1) {
              window.add(slice, i, now - r.ageMs, now);
              if (window.isDue(now)) await stage();
            }
          }
          if (at < all.length) {
            window.add(all.slice(at), reads.length, now, now);
          }
          await stage(); // the rest, as a shutdown stages it

          for (const [key, expectedIds] of groupBy(ids, projectOf)) {
            const [workspaceId, projectId] = key.split('/') as [string, string];
            const page = await store.read({ workspaceId, projectId }, 0, 1000);
            const entries: ChangelogEntry[] = page.entries;
            expect(entries.map(entryId)).toEqual(expectedIds);
            expect(entries.map((e) => e.seq)).toEqual(expectedIds.map((_, i) => i + 1));
            expect(store.table.items.get(key)?.size ?? 0).toBeLessThanOrEqual(windows.filter((w) => w.has(key)).length);
            // Re-published seqs (a read delivered twice within a window is deduplicated; across windows by the marks) come once, in order.
            expect(published.get(key)).toEqual(expectedIds.map((_, i) => i + 1));
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

function groupBy(ids: readonly string[], keyOf: ReadonlyMap<string, string>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const id of ids) {
    const key = keyOf.get(id)!;
    out.set(key, [...(out.get(key) ?? []), id]);
  }
  return out;
}
