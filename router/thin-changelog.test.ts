// The changelog of a router in thin mode (ROUTER_PAYLOAD_MODE=thin): it keeps what the thin
// messages carry, the replay API answers that over HTTP (each change self-describing, both forms
// across a mode switch), and an erased subject's id never comes back from a thin replay — whether
// they were erased before the entry was written or after.
import { afterEach, describe, expect, it } from '@jest/globals';
import { ErasedSubjects } from '@taskflow/stream';
import { sampleEvent } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import type { ChangelogEntry, ProjectRef } from './changelog.js';
import type { Envelope } from './event.js';
import { MemoryChangelogStore, MemoryChangelogTable } from './memory-changelog.js';
import { encodeMessages, type PayloadMode } from './messages.js';
import { replayPreparer } from './replay.js';
import { type ReplayDeps, startReplayServer } from './replay-server.js';
import type { SequencedChange } from './sequencer.js';
import { type InputRecord, ShardRouter } from './shard-router.js';

const WS = 'a0000000-0000-4000-8000-000000000001';
const P: ProjectRef = { workspaceId: WS, projectId: 'b0000000-0000-4000-8000-000000000001' };
const BOB = 'd0000000-0000-4000-8000-00000000000b';

const servers: { close(): void }[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A task update, a comment by Bob, and Bob's membership under a key that names him (the schema allows any primary-key columns). */
function events(lsn: bigint): Envelope[] {
  const task = sampleEvent('task.updated', { workspaceId: WS, projectId: P.projectId, commitLsn: lsn, entityId: 'c0000000-0000-4000-8000-000000000001', changed: ['title'] });
  const comment = sampleEvent('comment.created', { workspaceId: WS, projectId: P.projectId, commitLsn: lsn + 1n, userId: BOB, entityId: 'c1000000-0000-4000-8000-000000000001' });
  const membership = sampleEvent('membership.created', { workspaceId: WS, projectId: P.projectId, commitLsn: lsn + 2n, userId: BOB, entityId: 'e0000000-0000-4000-8000-000000000001' });
  const keyed = { ...membership, data: { ...membership.data, key: { id: 'e0000000-0000-4000-8000-000000000001', user_id: BOB } } };
  return [task, comment, keyed] as unknown as Envelope[];
}

const records = (es: Envelope[]): InputRecord[] => es.map((e, i) => ({ data: Buffer.from(JSON.stringify(e)), sequenceNumber: `${e.id}-${i}` }));

function routerOver(store: MemoryChangelogStore, mode: PayloadMode, enqueued: SequencedChange[] = [], erased?: ErasedSubjects): ShardRouter {
  return new ShardRouter({
    shardId: 's',
    consumer: 'router',
    changelog: store,
    changelogMode: mode,
    deadLetters: { put: async () => {} },
    memberships: { apply: async () => {} },
    validate: validateEvent,
    sink: { enqueue: (_p, changes) => void enqueued.push(...changes), flush: async () => {}, revoke() {} },
    ...(erased ? { erased } : {}),
  });
}

async function replay(store: MemoryChangelogStore, extra: Partial<ReplayDeps> = {}): Promise<(after: number) => Promise<{ changes: Record<string, unknown>[]; latestSeq: number }>> {
  const started = await startReplayServer(
    { store, verify: async () => ({ userId: 'u1', expiresAt: 9e9 }), memberships: async () => [{ workspaceId: WS, projectId: null, role: 'member' }], maxLimit: 100, ...extra },
    0,
  );
  servers.push(started.server);
  return async (after) => {
    const res = await fetch(`${started.url}/v1/workspaces/${WS}/projects/${P.projectId}/changes?after=${after}&forms=thin`, { headers: { authorization: 'Bearer t' } });
    expect(res.status).toBe(200);
    return (await res.json()) as { changes: Record<string, unknown>[]; latestSeq: number };
  };
}

const erasedList = () => new ErasedSubjects({ lookup: async (s) => s === BOB, ttlMs: 0 });

describe('the changelog in thin mode', () => {
  it('keeps what the thin messages carried, and the replay API answers exactly that, marked thin', async () => {
    const store = new MemoryChangelogStore();
    const enqueued: SequencedChange[] = [];
    await routerOver(store, 'thin', enqueued).process(records(events(0x100n)));
    const [message] = encodeMessages(P, enqueued, { mode: 'thin', gzip: false, maxBytes: 128 * 1024 });
    const live = (JSON.parse(message!.payload.toString()) as { changes: Record<string, unknown>[] }).changes;
    const answer = await (await replay(store))(0);
    expect(answer.latestSeq).toBe(3);
    expect(answer.changes).toEqual(live.map((c) => ({ ...c, mode: 'thin' })));
    expect(answer.changes[0]).toMatchObject({ seq: 1, type: 'taskflow.task.updated', key: { id: 'c0000000-0000-4000-8000-000000000001' }, changed: ['title'] });
    // A few hundred bytes a change, where the full envelope is kilobytes.
    expect(JSON.stringify(answer.changes[0]).length).toBeLessThan(300);
  });

  it('holds both forms across a switch of mode, and answers each as it is stored, whatever the answering router writes', async () => {
    const table = new MemoryChangelogTable();
    await routerOver(new MemoryChangelogStore(table), 'full').process(records(events(0x100n).slice(0, 2)));
    const thinRouter = routerOver(new MemoryChangelogStore(table), 'thin');
    await thinRouter.process(records(events(0x200n).slice(0, 2)));
    // A full-mode router's replay API (its store's mode is not a thing: entries describe themselves).
    const answer = await (await replay(new MemoryChangelogStore(table)))(0);
    expect(answer.changes.map((c) => [c.seq, c.mode ?? 'full', 'event' in c])).toEqual([
      [1, 'full', true],
      [2, 'full', true],
      [3, 'thin', false],
      [4, 'thin', false],
    ]);
    // Reprocessing the same events (a crash before the checkpoint) finds their seqs by id in either form.
    const enqueued: SequencedChange[] = [];
    await routerOver(new MemoryChangelogStore(table), 'thin', enqueued).process(records([...events(0x100n).slice(0, 2), ...events(0x200n).slice(0, 2)]));
    expect(enqueued.map((c) => c.seq)).toEqual([1, 2, 3, 4]);
    expect((await new MemoryChangelogStore(table).readHead(P)).seq).toBe(4);
  });

  it('answers a client that does not read thin entries (no forms=thin: an SDK from before them) the full entries before the first thin one, then a resync', async () => {
    const table = new MemoryChangelogTable();
    await routerOver(new MemoryChangelogStore(table), 'full').process(records(events(0x100n).slice(0, 2)));
    await routerOver(new MemoryChangelogStore(table), 'thin').process(records(events(0x200n).slice(0, 2)));
    const started = await startReplayServer(
      { store: new MemoryChangelogStore(table), verify: async () => ({ userId: 'u1', expiresAt: 9e9 }), memberships: async () => [{ workspaceId: WS, projectId: null, role: 'member' }], maxLimit: 100 },
      0,
    );
    servers.push(started.server);
    const ask = async (after: number) => {
      const res = await fetch(`${started.url}/v1/workspaces/${WS}/projects/${P.projectId}/changes?after=${after}`, { headers: { authorization: 'Bearer t' } });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const first = await ask(0);
    expect(first.status).toBe(200);
    expect((first.body.changes as { seq: number; event?: unknown }[]).map((c) => [c.seq, 'event' in c])).toEqual([[1, true], [2, true]]);
    // At the thin entries: nothing it can read is held, as after a whole changelog expired.
    expect(await ask(2)).toEqual({ status: 410, body: { error: 'resync_required', oldestSeq: 5, latestSeq: 4 } });
    expect(await ask(4)).toEqual({ status: 200, body: { changes: [], latestSeq: 4 } });
  });

  it("never answers an erased subject's id from a thin replay: erased before the entry was written, or after", async () => {
    // Erased before: the router writes the thin entries without them.
    const before = new MemoryChangelogStore();
    await routerOver(before, 'thin', [], erasedList()).process(records(events(0x100n)));
    const stored = JSON.stringify(before.table.live(P).flatMap((i) => i.entries));
    expect(stored).not.toContain(BOB);
    expect(JSON.stringify(await (await replay(before))(0))).not.toContain(BOB);

    // Erased after: the entry holds their id; the replay answer does not.
    const after = new MemoryChangelogStore();
    await routerOver(after, 'thin').process(records(events(0x100n)));
    const plain = await (await replay(after))(0);
    expect(JSON.stringify(plain)).toContain(BOB); // the check below looks at something
    const answer = await (await replay(after, { prepare: replayPreparer(async (e) => e, erasedList()) }))(0);
    expect(JSON.stringify(answer)).not.toContain(BOB);
    expect(answer.changes.map((c) => c.seq)).toEqual([1, 2, 3]); // every seq still there
    expect(answer.changes[2]).toMatchObject({ mode: 'thin', key: { id: 'e0000000-0000-4000-8000-000000000001', user_id: null } });
  });

  it('stores full envelopes in full mode, as before', async () => {
    const store = new MemoryChangelogStore();
    await routerOver(store, 'full').process(records(events(0x100n)));
    const entries: ChangelogEntry[] = store.table.live(P).flatMap((i) => i.entries);
    expect(entries.every((e) => 'event' in e && !('mode' in e))).toBe(true);
  });
});
