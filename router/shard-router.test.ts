// Property: whatever duplicates, capture replays, in-batch reorderings and router crashes the
// stream goes through, each project's changelog is exactly its committed history with seq dense
// from 1, and a subscriber that keeps the highest seq it has seen gets every change once, in order.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { sampleEvent } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import { ProjectBatcher } from './batcher.js';
import { entryId, projectKey, type ProjectRef } from './changelog.js';
import { MemoryChangelogStore } from './memory-changelog.js';
import type { OutboundMessage } from './messages.js';
import { type DeadLetter, type InputRecord, ShardRouter } from './shard-router.js';
import type { RouterEvent } from './event.js';
import { waitFor } from '../test/support/wait.js';
import { type HighWaterMarks, serializeMarks } from '@taskflow/stream';

const WORKSPACES = ['a0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000002'];
const PROJECTS = ['b0000000-0000-4000-8000-000000000001', 'b0000000-0000-4000-8000-000000000002', 'b0000000-0000-4000-8000-000000000003'];

interface Committed {
  id: string;
  project: ProjectRef;
  bytes: Uint8Array;
}

/** A workspace's committed history: transactions of 1–3 changes, each change in one of its projects. */
function history(ws: string, wsIndex: number, projectChoices: number[], txSizes: number[]): Committed[] {
  const out: Committed[] = [];
  let lsn = 0x1000n + BigInt(wsIndex);
  let p = 0;
  for (const size of txSizes) {
    lsn += 0x100n;
    for (let i = 0; i < size && p < projectChoices.length; i += 1, p += 1) {
      const project = { workspaceId: ws, projectId: PROJECTS[projectChoices[p] ?? 0] ?? '' };
      const e = sampleEvent('task.updated', { workspaceId: ws, projectId: project.projectId, commitLsn: lsn, txIndex: i, txSize: size, entityId: `c0000000-0000-4000-8000-${String(p).padStart(12, '0')}` });
      out.push({ id: e.id, project, bytes: Buffer.from(JSON.stringify(e)) });
    }
  }
  return out;
}

/** Capture's delivery of a history: in order, but restarts re-send from an earlier point. */
function delivery(h: Committed[], replayBacks: number[]): Committed[] {
  const out: Committed[] = [];
  let frontier = 0;
  let r = 0;
  while (frontier < h.length) {
    const back = replayBacks[r++ % Math.max(1, replayBacks.length)] ?? 0;
    const start = Math.max(0, frontier - back);
    const end = Math.min(h.length, frontier + 1 + (replayBacks[r % Math.max(1, replayBacks.length)] ?? 0));
    out.push(...h.slice(start, end));
    frontier = end;
  }
  return out;
}

const MALFORMED = [Buffer.from('{"not json'), Buffer.from(JSON.stringify({ type: 'taskflow.task.updated', id: 'x' })), Buffer.from(JSON.stringify({ type: 'taskflow.nope.updated' }))];

const scenario = fc.record({
  ws: fc.array(
    fc.record({
      projects: fc.array(fc.integer({ min: 0, max: PROJECTS.length - 1 }), { minLength: 1, maxLength: 25 }),
      txSizes: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 25, maxLength: 25 }),
      replayBacks: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 6 }),
    }),
    { minLength: 1, maxLength: WORKSPACES.length },
  ),
  interleave: fc.array(fc.nat(), { minLength: 1, maxLength: 40 }),
  malformedAt: fc.array(fc.nat({ max: 60 }), { maxLength: 3 }),
  batchSizes: fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 10 }),
  // GetRecords after a restart cuts the stream differently: each read takes 1–3 reordered chunks.
  chunksPerRead: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 7 }),
  shuffleSeeds: fc.array(fc.nat(), { minLength: 1, maxLength: 10 }),
  // 1 and 2 make the router forget marks (the changelog lookup must still prevent double seqs).
  maxMarks: fc.constantFrom(1, 2, 4000),
  // Crash points: [batch attempt number, where]
  crashes: fc.array(fc.tuple(fc.nat({ max: 30 }), fc.constantFrom('before-item', 'before-checkpoint', 'before-flush')), { maxLength: 4 }),
  // Batches staged before the oldest is published and checkpointed (1: one at a time).
  pipelineDepth: fc.integer({ min: 1, max: 3 }),
});

function shuffle<T>(items: T[], seed: number): T[] {
  const a = [...items];
  let s = seed + 1;
  for (let i = a.length - 1; i > 0; i -= 1) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}

class Crash extends Error {}

describe('ShardRouter under duplicates, replays, reordering and crashes', () => {
  it('changelog = committed history per project; subscribers see each change once, in order, gap-free', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const histories = s.ws.map((w, i) => history(WORKSPACES[i] ?? '', i, w.projects, w.txSizes));
        const streams = s.ws.map((w, i) => delivery(histories[i] ?? [], w.replayBacks));
        // Interleave the workspaces' deliveries (each stays in its own order), then add garbage.
        const merged: Uint8Array[] = [];
        const cursors = streams.map(() => 0);
        let k = 0;
        while (cursors.some((c, i) => c < (streams[i]?.length ?? 0))) {
          const live = cursors.map((c, i) => i).filter((i) => (cursors[i] ?? 0) < (streams[i]?.length ?? 0));
          const pick = live[(s.interleave[k++ % s.interleave.length] ?? 0) % live.length] ?? 0;
          merged.push((streams[pick] ?? [])[cursors[pick]!]!.bytes);
          cursors[pick]! += 1;
        }
        for (const at of s.malformedAt) merged.splice(Math.min(at, merged.length), 0, MALFORMED[at % MALFORMED.length]!);
        // Chunks of the stream, each possibly reordered (reordering never crosses a read).
        const batches: InputRecord[][] = [];
        let offset = 0;
        for (let b = 0; offset < merged.length; b += 1) {
          const size = s.batchSizes[b % s.batchSizes.length] ?? 1;
          const records = merged.slice(offset, offset + size).map((data, i) => ({ data, sequenceNumber: String(offset + i) }));
          batches.push(shuffle(records, s.shuffleSeeds[b % s.shuffleSeeds.length] ?? 0));
          offset += size;
        }

        const store = new MemoryChangelogStore();
        const published: OutboundMessage[] = [];
        const deadLetters = new Map<string, DeadLetter>();
        let checkpoint: { batch: number; state?: string } = { batch: 0 };
        let attempt = 0;
        let crashes = 0;
        while (checkpoint.batch < batches.length) {
          const batcher = new ProjectBatcher({ windowMs: 0, mode: 'full', gzip: false, maxBytes: 128 * 1024 });
          let crashWhere: string | undefined;
          // Like the real pipeline: a publish that fails for good means it is closing, so nothing
          // after it is published either.
          let sinkClosed = false;
          const sink = {
            enqueue: (p: ProjectRef, c: Parameters<ProjectBatcher['add']>[1]) => batcher.add(p, c, 0),
            revoke: () => {}, // no membership events in these histories
            flush: async () => {
              if (crashWhere === 'before-flush') sinkClosed = true;
              if (sinkClosed) throw new Crash();
              published.push(...batcher.takeAll());
            },
          };
          const router = new ShardRouter(
            {
              shardId: 'shard-0',
              consumer: 'router',
              changelog: store,
              sink,
              deadLetters: { put: async (l) => void deadLetters.set(l.origin.sequenceNumber, l) },
              memberships: { apply: async (_events: readonly RouterEvent[]) => {} },
              validate: validateEvent,
              maxMarks: s.maxMarks,
            },
            checkpoint.state,
          );
          // Staged batches wait for their publish, then checkpoint in order (as the service does).
          const staged: { next: number; marks: HighWaterMarks; published: Promise<void>; crashBeforeCheckpoint: boolean }[] = [];
          try {
            for (let b = checkpoint.batch, read = crashes; b < batches.length; read += 1) {
              const take = s.chunksPerRead[read % s.chunksPerRead.length] ?? 1;
              attempt += 1;
              crashWhere = s.crashes.find(([at]) => at === attempt)?.[1];
              store.table.beforeWrite = crashWhere === 'before-item' ? (_p, what) => { if (what === 'item') throw new Crash(); } : undefined;
              const { marks, published } = await router.stage(batches.slice(b, b + take).flat());
              b += take;
              staged.push({ next: b, marks, published, crashBeforeCheckpoint: crashWhere === 'before-checkpoint' });
              while (staged.length >= s.pipelineDepth || (b >= batches.length && staged.length > 0)) {
                const oldest = staged.shift()!;
                await oldest.published;
                if (oldest.crashBeforeCheckpoint) throw new Crash();
                // Serialized only now, after later batches were staged, as the processor does.
                checkpoint = { batch: oldest.next, state: serializeMarks(oldest.marks) };
              }
            }
          } catch (err) {
            if (!(err instanceof Crash)) throw err;
            crashes += 1;
          }
        }

        // 1. The changelog of each project is exactly its committed history, seq 1..n.
        const expected = new Map<string, string[]>();
        for (const c of histories.flat()) {
          const key = projectKey(c.project);
          expected.set(key, [...(expected.get(key) ?? []), c.id]);
        }
        const seqOf = new Map<string, Map<number, string>>();
        for (const [key, ids] of expected) {
          const [workspaceId = '', projectId = ''] = key.split('/');
          const page = await store.read({ workspaceId, projectId }, 0, 10_000);
          expect(page.entries.map(entryId)).toEqual(ids);
          expect(page.entries.map((e) => e.seq)).toEqual(ids.map((_, i) => i + 1));
          expect(page.head.seq).toBe(ids.length);
          seqOf.set(key, new Map(page.entries.map((e) => [e.seq, entryId(e)])));
        }
        // 2. A subscriber keeping its highest seq sees every change once, in order, with no gap.
        const seen = new Map<string, number>();
        for (const m of published) {
          const body = JSON.parse(m.payload.toString()) as { ws: string; project: string; changes: { seq: number; event: { id: string } }[] };
          const key = `${body.ws}/${body.project}`;
          for (const c of body.changes) {
            expect(c.event.id).toBe(seqOf.get(key)?.get(c.seq));
            const last = seen.get(key) ?? 0;
            if (c.seq <= last) continue;
            expect(c.seq).toBe(last + 1);
            seen.set(key, c.seq);
          }
        }
        for (const [key, ids] of expected) expect(seen.get(key)).toBe(ids.length);
        // Without crashes, and with every workspace's mark kept, nothing is published twice.
        if (crashes === 0 && s.maxMarks >= WORKSPACES.length) {
          const total = published.reduce((n, m) => n + m.count, 0);
          expect(total).toBe(histories.flat().length);
        }
        // 3. Every malformed record is in the DLQ, and nothing else.
        expect(deadLetters.size).toBe(s.malformedAt.length);
      }),
      { numRuns: 150 },
    );
  });
});

describe('ShardRouter with membership events in the batch', () => {
  it('writes the changelog while the projection is written, and hands nothing to the sink before the projection is done', async () => {
    const ws = WORKSPACES[0]!;
    const project = { workspaceId: ws, projectId: PROJECTS[0]! };
    const membership = sampleEvent('membership.deleted', { workspaceId: ws, projectId: project.projectId, userId: 'd0000000-0000-4000-8000-000000000001', entityId: 'e0000000-0000-4000-8000-000000000001', commitLsn: 0x10n });
    const task = sampleEvent('task.updated', { workspaceId: ws, projectId: project.projectId, commitLsn: 0x20n, entityId: 'c0000000-0000-4000-8000-000000000001' });
    const records: InputRecord[] = [membership, task].map((e, i) => ({ data: Buffer.from(JSON.stringify(e)), sequenceNumber: String(i + 1) }));
    let projectionDone!: () => void;
    const projection = new Promise<void>((resolve) => (projectionDone = resolve));
    const changelog = new MemoryChangelogStore();
    const calls: string[] = [];
    const router = new ShardRouter({
      shardId: 's',
      consumer: 'router',
      changelog,
      deadLetters: { put: async () => {} },
      memberships: { apply: () => projection.then(() => void calls.push('projection')) },
      validate: validateEvent,
      sink: { enqueue: (_p, changes) => void calls.push(`enqueue ${changes.length}`), flush: async () => {}, revoke: () => void calls.push('revoke') },
    });
    const staging = router.stage(records);
    await waitFor(async () => (await changelog.read(project, 0, 10)).entries.length === 1, 'the task in the changelog while the projection is pending');
    expect(calls).toEqual([]);
    projectionDone();
    await staging;
    expect(calls).toEqual(['projection', 'revoke', 'enqueue 1']);
  });
});
