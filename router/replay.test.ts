import { describe, expect, it } from '@jest/globals';
import { sampleEvent } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import { entryId, type ProjectRef } from './changelog.js';
import { MemoryChangelogStore } from './memory-changelog.js';
import { replayAnswer } from './replay.js';
import { type InputRecord, REDRIVE_PARTITION_PREFIX, ShardRouter } from './shard-router.js';
import type { SequencedChange } from './sequencer.js';

const project: ProjectRef = { workspaceId: '11111111-1111-4111-8111-111111111111', projectId: '22222222-2222-4222-8222-222222222222' };

function record(lsn: number, n: number, partitionKey = project.workspaceId): InputRecord {
  const e = sampleEvent('task.updated', { workspaceId: project.workspaceId, projectId: project.projectId, commitLsn: BigInt(lsn), entityId: `33333333-3333-4333-8333-${String(lsn).padStart(12, '0')}` });
  return { data: Buffer.from(JSON.stringify(e)), sequenceNumber: String(n), partitionKey };
}

function setup() {
  const store = new MemoryChangelogStore();
  const published: SequencedChange[] = [];
  const router = new ShardRouter({
    shardId: 's',
    consumer: 'router',
    changelog: store,
    sink: { enqueue: (_p, changes) => void published.push(...changes), flush: async () => {}, revoke: () => {} },
    deadLetters: { put: async () => {} },
    memberships: { apply: async () => {} },
    validate: validateEvent,
  });
  return { store, published, router };
}

describe('replay answers', () => {
  it('returns exactly the missing range, and resync once the changelog no longer reaches back', async () => {
    const { store, router } = setup();
    await router.process([1, 2, 3, 4, 5].map((lsn, i) => record(lsn * 0x100, i)));
    const ok = replayAnswer(await store.read(project, 2, 100), 2);
    expect(ok.status).toBe(200);
    expect(ok.status === 200 && ok.body.changes.map((c) => c.seq)).toEqual([3, 4, 5]);
    expect(ok.body.latestSeq).toBe(5);
    const limited = replayAnswer(await store.read(project, 0, 2), 0);
    expect(limited.status === 200 && limited.body.changes.map((c) => c.seq)).toEqual([1, 2]);
    expect(replayAnswer(await store.read(project, 5, 100), 5)).toEqual({ status: 200, body: { changes: [], latestSeq: 5 } });

    await router.process([6, 7].map((lsn, i) => record(lsn * 0x100, 10 + i)));
    store.expireThrough(project, 5);
    expect(replayAnswer(await store.read(project, 1, 100), 1)).toEqual({ status: 410, body: { error: 'resync_required', oldestSeq: 6, latestSeq: 7 } });
    expect(replayAnswer(await store.read(project, 5, 100), 5).status).toBe(200);
  });
});

describe('redrive', () => {
  it('gives a redriven event its one seq, and a second redrive republishes it under the same seq', async () => {
    const { store, router, published } = setup();
    await router.process([record(0x100, 0), record(0x300, 1)]);
    // 0x200 was dead-lettered the first time; redriven after 0x300 went through.
    await router.process([record(0x200, 2, `${REDRIVE_PARTITION_PREFIX}${project.workspaceId}`)]);
    await router.process([record(0x200, 3, `${REDRIVE_PARTITION_PREFIX}${project.workspaceId}`), record(0x300, 4)]);
    const page = await store.read(project, 0, 100);
    expect(page.entries.map((e) => [e.seq, entryId(e)])).toEqual([
      [1, '0000000000000100-00000000'],
      [2, '0000000000000300-00000000'],
      [3, '0000000000000200-00000000'],
    ]);
    expect(published.map((c) => c.seq)).toEqual([1, 2, 3, 3]);
  });
});
