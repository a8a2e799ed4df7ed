// The claims' rules one by one (changelog-claims.property.test.ts checks them together under races).
import { describe, expect, it } from '@jest/globals';
import { type ChangelogEntry, entryId, type ProjectRef, StaleHeadError } from './changelog.js';
import { RESERVE_SEQS } from './changelog-claims.js';
import type { Envelope } from './event.js';
import { MemoryChangelogStore, MemoryChangelogTable } from './memory-changelog.js';
import { replayAnswer } from './replay.js';
import type { ProjectHead } from './sequencer.js';

const P: ProjectRef = { workspaceId: 'w', projectId: 'p' };
const TTL_MS = 7 * 24 * 3600_000;
const id = (n: number) => `${n.toString(16).toUpperCase().padStart(16, '0')}-00000000`;
const entries = (from: number, ids: number[]): ChangelogEntry[] => ids.map((n, i) => ({ seq: from + i, event: { id: id(n) } as unknown as Envelope }));
const headAfter = (seq: number, n: number): ProjectHead => ({ seq, lastId: id(n) });

async function append(store: MemoryChangelogStore, ids: number[]): Promise<ProjectHead> {
  const head = await store.readHead(P);
  const next = headAfter(head.seq + ids.length, ids.at(-1)!);
  await store.append(P, entries(head.seq + 1, ids), head, next);
  return next;
}

describe('changelog claims', () => {
  it('writes the head once per reservation, not per batch', async () => {
    const table = new MemoryChangelogTable();
    const writes: string[] = [];
    table.beforeWrite = (_p, what) => void writes.push(what);
    const store = new MemoryChangelogStore(table);
    for (let n = 1; n <= 5; n += 1) await append(store, [n]);
    expect(writes).toEqual(['reservation', 'item', 'item', 'item', 'item', 'item']);
    expect((await table.head(P))?.reserved).toBe(1 + RESERVE_SEQS);
  });

  it('starts at seq 1 after a crash between the first reservation and the first item', async () => {
    const table = new MemoryChangelogTable();
    table.beforeWrite = (_p, what) => {
      if (what === 'item') throw new Error('crash');
    };
    await expect(append(new MemoryChangelogStore(table), [1])).rejects.toThrow('crash');
    table.beforeWrite = undefined;
    await append(new MemoryChangelogStore(table), [1, 2]);
    expect((await new MemoryChangelogStore(table).read(P, 0, 10)).entries.map((e) => e.seq)).toEqual([1, 2]);
  });

  it('restarts above the reservation once every item expired and was deleted: never back, and replay answers 410', async () => {
    let now = 1_700_000_000_000;
    const table = new MemoryChangelogTable(() => now);
    await append(new MemoryChangelogStore(table), [1, 2, 3]);
    now += TTL_MS + 1000;
    table.items.clear(); // the TTL's deletion
    const next = await append(new MemoryChangelogStore(table), [4]);
    expect(next.seq).toBe(3 + RESERVE_SEQS + 1);
    const reader = new MemoryChangelogStore(table);
    expect(replayAnswer(await reader.read(P, 3, 10), 3)).toEqual({ status: 410, body: { error: 'resync_required', oldestSeq: next.seq, latestSeq: next.seq } });
    // And the next router goes on densely after the restart.
    expect((await append(new MemoryChangelogStore(table), [5])).seq).toBe(next.seq + 1);
  });

  it('refuses a router that continues the old run after another restarted above it (clocks apart)', async () => {
    const now = 1_700_000_000_000;
    const table = new MemoryChangelogTable(() => now);
    const a = new MemoryChangelogStore(table, TTL_MS);
    await append(a, [1]);
    const aHead = await a.readHead(P); // a believes seq 1 is the last, its item live for days yet
    // Another router whose clock is past the item's expiry restarts above the reservation.
    const restarted = await append(new MemoryChangelogStore(table, TTL_MS, () => now + TTL_MS + 1000), [2]);
    expect(restarted.seq).toBeGreaterThan(1 + RESERVE_SEQS);
    // a's run needs more reservation than it holds: the floor refuses it.
    const many = Array.from({ length: 2 * RESERVE_SEQS }, (_, i) => 3 + i);
    await expect(a.append(P, entries(2, many), aHead, headAfter(1 + many.length, many.at(-1)!))).rejects.toBeInstanceOf(StaleHeadError);
  });

  it('refuses a writer whose seqs another router holds, and accepts its own retried write', async () => {
    const table = new MemoryChangelogTable();
    const a = new MemoryChangelogStore(table);
    const b = new MemoryChangelogStore(table);
    const head = await a.readHead(P);
    expect(await b.readHead(P)).toEqual(head);
    await a.append(P, entries(1, [1, 2]), head, headAfter(2, 2));
    await expect(b.append(P, entries(1, [7]), head, headAfter(1, 7))).rejects.toBeInstanceOf(StaleHeadError);
    await b.append(P, entries(1, [1, 2]), head, headAfter(2, 2)); // the same run: already stored
    expect((await a.read(P, 0, 10)).entries.map(entryId)).toEqual([id(1), id(2)]);
  });
});
