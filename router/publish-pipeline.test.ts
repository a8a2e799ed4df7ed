// The publish pipeline against a scripted publisher: per-topic order under failures and
// retries, flush as a barrier (not starved by later enqueues), and close.
import { sampleEvent } from '../schemas/fixtures.js';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { gunzipSync } from 'node:zlib';
import type { RouterEvent } from './event.js';
import { PublishPipeline } from './publish-pipeline.js';
import type { ConnectionRevoker } from './connection-revoker.js';
import type { Publisher } from '../lib/publishers.js';
import type { SequencedChange } from './sequencer.js';
import { sleep, waitFor } from '../test/support/wait.js';

const projects = [
  { workspaceId: 'ws-1', projectId: 'p-1' },
  { workspaceId: 'ws-1', projectId: 'p-2' },
];

function change(seq: number): SequencedChange {
  const id = `${seq.toString(16).toUpperCase().padStart(16, '0')}-00000000`;
  const event = {
    id,
    position: { commitLsn: BigInt(seq), txIndex: 0 },
    workspaceId: 'ws-1',
    type: 'taskflow.task.updated',
    envelope: sampleEvent('task.updated', { commitLsn: BigInt(seq), time: new Date().toISOString(), workspaceId: 'ws-1', entityId: `t${seq}` }),
  } satisfies RouterEvent;
  return { seq, event };
}

/** Fails the publishes whose ordinal is in `failures`; records what went out, per topic. */
class ScriptedPublisher implements Publisher {
  calls = 0;
  readonly out = new Map<string, number[]>();
  constructor(private readonly failures: ReadonlySet<number>) {}
  async publish(topic: string, payload: Buffer): Promise<void> {
    const n = this.calls++;
    await sleep(n % 3); // not a wait: publishes take 0-2 ms so they finish out of order
    if (this.failures.has(n)) throw new Error(`publish ${n} failed`);
    const body = JSON.parse((payload[0] === 0x1f ? gunzipSync(payload) : payload).toString()) as { changes: { seq: number }[] };
    this.out.set(topic, [...(this.out.get(topic) ?? []), ...body.changes.map((c) => c.seq)]);
  }
  async close(): Promise<void> {}
}

const pipelineWith = (publisher: Publisher, windowMs: number) =>
  new PublishPipeline({ batcher: { windowMs, mode: 'full', gzip: false, maxBytes: 128 * 1024 }, publisher, hasSubscriber: null, retry: { baseMs: 1, maxMs: 2 } });

describe('PublishPipeline', () => {
  it('publishes each project in seq order exactly once, retrying failures in place, and each flush covers what came before it', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat({ max: 1 }), fc.integer({ min: 1, max: 4 }), fc.boolean()), { minLength: 1, maxLength: 25 }),
        fc.uniqueArray(fc.nat({ max: 40 }), { maxLength: 8 }),
        fc.constantFrom(0, 5),
        async (steps, failing, windowMs) => {
          const publisher = new ScriptedPublisher(new Set(failing));
          const pipeline = pipelineWith(publisher, windowMs);
          const next = [0, 0];
          const flushes: { expected: number[]; done: Promise<void> }[] = [];
          for (const [p, n, flush] of steps) {
            const changes = Array.from({ length: n }, () => change(++next[p]!));
            pipeline.enqueue(projects[p]!, changes);
            if (flush) flushes.push({ expected: [...next], done: pipeline.flush() });
          }
          for (const f of flushes) {
            await f.done;
            // Everything enqueued before the flush is out when it resolves.
            projects.forEach((project, i) => {
              const seqs = publisher.out.get(`taskflow/v1/ws/${project.workspaceId}/projects/${project.projectId}`) ?? [];
              expect(seqs.slice(0, f.expected[i])).toEqual(Array.from({ length: f.expected[i]! }, (_, k) => k + 1));
            });
          }
          await pipeline.flush();
          projects.forEach((project, i) => {
            expect(publisher.out.get(`taskflow/v1/ws/${project.workspaceId}/projects/${project.projectId}`) ?? []).toEqual(Array.from({ length: next[i]! }, (_, k) => k + 1));
          });
          await pipeline.close();
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a flush waits for its changes even when the clock has not reached their due time after the timer', async () => {
    // Timers and Date.now() run on different clocks: a timer can fire a millisecond "early".
    // Here the clock never moves, the extreme case.
    const publisher = new ScriptedPublisher(new Set());
    const frozen = Date.now();
    const pipeline = new PublishPipeline({ batcher: { windowMs: 5, mode: 'full', gzip: false, maxBytes: 128 * 1024 }, publisher, hasSubscriber: null, now: () => frozen });
    try {
      pipeline.enqueue(projects[0]!, [change(1), change(2)]);
      await pipeline.flush();
      expect(publisher.out.get('taskflow/v1/ws/ws-1/projects/p-1')).toEqual([1, 2]);
    } finally {
      await pipeline.close('abandon');
    }
  });

  it('close(abandon) stops retrying and rejects a waiting flush', async () => {
    let attempts = 0;
    const failing: Publisher = { publish: () => Promise.reject(new Error(`broker gone (attempt ${++attempts})`)), close: async () => {} };
    const pipeline = pipelineWith(failing, 0);
    pipeline.enqueue(projects[0]!, [change(1)]);
    const flushed = pipeline.flush();
    await waitFor(() => attempts >= 2, 'the publish to be retried', 5_000, 2);
    await pipeline.close('abandon');
    await expect(flushed).rejects.toThrow('closed');
  });

  describe('revocation holds', () => {
    const other = { workspaceId: 'ws-2', projectId: 'p-9' };
    const otherChange = (seq: number): SequencedChange => {
      const c = change(seq);
      return { seq, event: { ...c.event, workspaceId: 'ws-2' } };
    };
    /** A revoker whose disconnect the test confirms (or never does). */
    const scriptedRevoker = () => {
      const calls: string[][] = [];
      let confirm: () => void = () => {};
      const revoker: ConnectionRevoker = {
        disconnect: (userIds, signal) =>
          new Promise<void>((resolve, reject) => {
            calls.push([...userIds]);
            confirm = resolve;
            signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
          }),
      };
      return { revoker, calls, confirm: () => confirm() };
    };
    const holds: [number, string][] = [];
    const metrics = { published() {}, withoutSubscriber() {}, publishRetried() {}, revocationHold: (s: number, o: string) => void holds.push([s, o]) };

    it('publishes nothing of the workspace after the revocation before the disconnect is confirmed; other workspaces and earlier changes go on', async () => {
      holds.length = 0;
      const publisher = new ScriptedPublisher(new Set());
      const r = scriptedRevoker();
      const pipeline = new PublishPipeline({ batcher: { windowMs: 0, mode: 'full', gzip: false, maxBytes: 128 * 1024 }, publisher, hasSubscriber: null, metrics, revocation: { revoker: r.revoker, holdTimeoutMs: 60_000 } });
      try {
        pipeline.enqueue(projects[0]!, [change(1)]);
        pipeline.revoke('ws-1', change(1).event.id, ['alice']);
        pipeline.enqueue(projects[0]!, [change(2), change(3)]);
        pipeline.enqueue(projects[1]!, [change(4)]);
        pipeline.enqueue(other, [otherChange(1)]);
        const flushed = pipeline.flush();
        let done = false;
        void flushed.then(() => (done = true));
        await waitFor(() => r.calls.length > 0 && publisher.out.has('taskflow/v1/ws/ws-2/projects/p-9') && publisher.out.has('taskflow/v1/ws/ws-1/projects/p-1'), 'the disconnect asked and the unheld changes published', 5_000, 2);
        // Asserting that nothing happens: the held changes must still be unpublished a while later.
        await sleep(30);
        expect(r.calls).toEqual([['alice']]);
        expect(publisher.out.get('taskflow/v1/ws/ws-1/projects/p-1')).toEqual([1]);
        expect(publisher.out.get('taskflow/v1/ws/ws-1/projects/p-2')).toBeUndefined();
        expect(publisher.out.get('taskflow/v1/ws/ws-2/projects/p-9')).toEqual([1]);
        expect(done).toBe(false); // the checkpoint must not pass held changes
        r.confirm();
        await flushed;
        expect(publisher.out.get('taskflow/v1/ws/ws-1/projects/p-1')).toEqual([1, 2, 3]);
        expect(publisher.out.get('taskflow/v1/ws/ws-1/projects/p-2')).toEqual([4]);
        expect(holds.map(([, o]) => o)).toEqual(['confirmed']);
      } finally {
        await pipeline.close('abandon');
      }
    });

    it('releases held changes at the bound when the disconnect is never confirmed, and counts the timeout', async () => {
      holds.length = 0;
      const publisher = new ScriptedPublisher(new Set());
      const r = scriptedRevoker();
      const pipeline = new PublishPipeline({ batcher: { windowMs: 0, mode: 'full', gzip: false, maxBytes: 128 * 1024 }, publisher, hasSubscriber: null, metrics, revocation: { revoker: r.revoker, holdTimeoutMs: 100 } });
      try {
        pipeline.revoke('ws-1', change(0).event.id, ['alice']);
        pipeline.enqueue(projects[0]!, [change(1)]);
        const started = Date.now();
        await pipeline.flush();
        expect(Date.now() - started).toBeGreaterThanOrEqual(90);
        expect(publisher.out.get('taskflow/v1/ws/ws-1/projects/p-1')).toEqual([1]);
        expect(holds.map(([, o]) => o)).toEqual(['timed_out']);
      } finally {
        await pipeline.close('abandon');
      }
    });
  });
});
