// The router's shard processor with pipelined batches: checkpoints follow publishes, in batch
// order, and never pass a batch that was not published.
import { describe, expect, it } from '@jest/globals';
import type { Checkpointer, ProcessBatch, UserRecord } from '@taskflow/stream';
import { createLogger } from '../lib/logger.js';
import { sampleEvent } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import { MemoryChangelogStore } from './memory-changelog.js';
import { PublishPipeline } from './publish-pipeline.js';
import type { Publisher } from '../lib/publishers.js';
import { RouterShardProcessor } from './shard-processor.js';
import { sleep, waitFor } from '../test/support/wait.js';

const WS = '11111111-1111-4111-8111-111111111111';
const P = '22222222-2222-4222-8222-222222222222';

function batch(n: number): ProcessBatch {
  const e = sampleEvent('task.updated', { workspaceId: WS, projectId: P, commitLsn: BigInt(0x100 * (n + 1)), entityId: `33333333-3333-4333-8333-${String(n).padStart(12, '0')}` });
  const record: UserRecord = { shardId: 's', sequenceNumber: String(n), subSequenceNumber: 0, partitionKey: WS, data: Buffer.from(JSON.stringify(e)) };
  return { records: [record], millisBehindLatest: 0 };
}

/** A publisher whose publishes wait until released (or fail for good once `broken`). */
class GatedPublisher implements Publisher {
  published = 0;
  broken = false;
  private waiting: (() => void)[] = [];
  publish(): Promise<void> {
    if (this.broken) return Promise.reject(new Error('broker gone'));
    return new Promise((resolve) => this.waiting.push(() => resolve(void (this.published += 1))));
  }
  release(): void {
    for (const w of this.waiting.splice(0)) w();
  }
  /** Publishes started and not yet released. */
  get pending(): number {
    return this.waiting.length;
  }
  async close(): Promise<void> {}
}

function setup(ready?: Promise<unknown>, windowMs = 0, checkpointEveryMs = 0) {
  const publisher = new GatedPublisher();
  const pipeline = () => new PublishPipeline({ batcher: { windowMs: 0, mode: 'full', gzip: false, maxBytes: 128 * 1024 }, publisher, hasSubscriber: null, retry: { baseMs: 1, maxMs: 2 }, closeGraceMs: 200 });
  const deps = { consumer: 'router', changelog: new MemoryChangelogStore(), deadLetters: { put: async () => {} }, memberships: { apply: async () => {} }, validate: validateEvent };
  const processor = new RouterShardProcessor('s', deps, pipeline, createLogger('test', 'silent'), ready, { windowMs, checkpointEveryMs });
  const checkpoints: string[] = [];
  const checkpointer = (label: string): Checkpointer => ({
    checkpoint: async () => {
      checkpoints.push(label);
    },
  });
  return { publisher, processor, checkpoints, checkpointer, changelog: deps.changelog };
}

const within = (probe: () => boolean, what: string) => waitFor(probe, what, 5_000, 2);

describe('RouterShardProcessor', () => {
  it('stages nothing before the publisher is ready (its subscriptions loaded), then goes on', async () => {
    let resolveReady!: () => void;
    const ready = new Promise<void>((resolve) => (resolveReady = resolve));
    const { publisher, processor, checkpoints, checkpointer, changelog } = setup(ready);
    await processor.initialize({ shardId: 's', parentStates: [] });
    const processing = processor.processRecords(batch(1), checkpointer('b1'));
    await new Promise((resolve) => setTimeout(resolve, 50)); // a while in which nothing may be staged
    expect((await changelog.read({ workspaceId: WS, projectId: P }, 0, 10)).entries).toEqual([]);
    expect(publisher.published).toBe(0);
    resolveReady();
    await processing;
    expect((await changelog.read({ workspaceId: WS, projectId: P }, 0, 10)).entries).toHaveLength(1);
    publisher.release();
    await processor.shutdown('shutdown', checkpointer('end'));
    expect(publisher.published).toBe(1);
    expect(checkpoints[0]).toBe('b1');
  });

  it('reads on while a batch is publishing, and checkpoints each batch after its publish, in order', async () => {
    const { publisher, processor, checkpoints, checkpointer } = setup();
    await processor.initialize({ shardId: 's', parentStates: [] });
    await processor.processRecords(batch(1), checkpointer('b1'));
    await processor.processRecords(batch(2), checkpointer('b2')); // returned although b1 is not published
    await within(() => publisher.pending === 1, "b1's publish to start");
    expect(checkpoints).toEqual([]);
    publisher.release();
    await within(() => publisher.published === 1 && publisher.pending === 1, "b1 published and b2's publish started");
    publisher.release();
    await within(() => checkpoints.length === 2, 'both checkpoints');
    expect(publisher.published).toBe(2);
    expect(checkpoints).toEqual(['b1', 'b2']);
    await processor.shutdown('shutdown', checkpointer('final'));
    expect(checkpoints).toEqual(['b1', 'b2', 'final']);
  });

  it('holds at most three batches unpublished: the fourth waits for the oldest', async () => {
    const { publisher, processor, checkpoints, checkpointer } = setup();
    await processor.initialize({ shardId: 's', parentStates: [] });
    for (let n = 1; n <= 3; n += 1) await processor.processRecords(batch(n), checkpointer(`b${n}`));
    let fourthDone = false;
    const fourth = processor.processRecords(batch(4), checkpointer('b4')).then(() => (fourthDone = true));
    await within(() => publisher.pending > 0, 'a publish to start');
    // Asserting that nothing happens: the fourth batch must still be held after a while with no
    // publish released; no event marks "still waiting".
    await sleep(20);
    expect(fourthDone).toBe(false);
    await within(() => {
      publisher.release(); // release whatever has started, until the fourth is let in
      return fourthDone;
    }, 'the fourth batch to be taken once the oldest was published');
    await fourth;
    expect(checkpoints[0]).toBe('b1');
  });

  it('never checkpoints past a batch that was not published, and will not let the shard be finished', async () => {
    const { publisher, processor, checkpoints, checkpointer } = setup();
    await processor.initialize({ shardId: 's', parentStates: [] });
    publisher.broken = true;
    await processor.processRecords(batch(1), checkpointer('b1'));
    await processor.processRecords(batch(2), checkpointer('b2'));
    await expect(processor.shutdown('shard_end', checkpointer('final'))).rejects.toThrow(/not yet published/);
    expect(checkpoints).toEqual([]);
  });

  it('gathers young reads over the window into one changelog item per project, checkpointed at the last read', async () => {
    const { publisher, processor, checkpoints, checkpointer, changelog } = setup(undefined, 100);
    await processor.initialize({ shardId: 's', parentStates: [] });
    await processor.processRecords(batch(1), checkpointer('b1'));
    await processor.processRecords(batch(2), checkpointer('b2'));
    // Staged by the window's timer, without another read.
    await within(() => publisher.pending === 1, 'the window staged and its publish started');
    expect(changelog.table.items.get(`${WS}/${P}`)?.size).toBe(1);
    expect((await changelog.read({ workspaceId: WS, projectId: P }, 0, 10)).entries.map((e) => e.seq)).toEqual([1, 2]);
    publisher.release();
    await within(() => checkpoints.length === 1, 'the checkpoint');
    expect(checkpoints).toEqual(['b2']);
    await processor.shutdown('shutdown', checkpointer('final'));
  });

  it('stages a window still open at shutdown before the final checkpoint', async () => {
    const { publisher, processor, checkpoints, checkpointer, changelog } = setup(undefined, 10_000);
    await processor.initialize({ shardId: 's', parentStates: [] });
    await processor.processRecords(batch(1), checkpointer('b1'));
    expect((await changelog.read({ workspaceId: WS, projectId: P }, 0, 10)).entries).toEqual([]);
    const closing = processor.shutdown('shutdown', checkpointer('final'));
    await within(() => publisher.pending === 1, 'the open window staged');
    publisher.release();
    await closing;
    expect(checkpoints).toEqual(['b1', 'final']);
  });

  it('checkpoints at most once per interval: a sooner one waits, replaced by later ones, and the final checkpoint covers it', async () => {
    const { publisher, processor, checkpoints, checkpointer } = setup(undefined, 0, 60_000);
    await processor.initialize({ shardId: 's', parentStates: [] });
    await processor.processRecords(batch(1), checkpointer('b1'));
    publisher.release();
    await within(() => checkpoints.length === 1, 'the first checkpoint, at once');
    for (const n of [2, 3]) {
      await processor.processRecords(batch(n), checkpointer(`b${n}`));
      await within(() => publisher.pending === 1, `b${n}'s publish to start`);
      publisher.release();
    }
    await within(() => publisher.published === 3, 'b2 and b3 published');
    // Asserting that nothing happens: within the minute neither is written (no event marks it).
    await sleep(50);
    expect(checkpoints).toEqual(['b1']);
    await processor.shutdown('shutdown', checkpointer('final'));
    expect(checkpoints).toEqual(['b1', 'final']);
  });

  it('writes a waiting checkpoint once the interval has passed, with no further read, and never more often', async () => {
    const intervalMs = 150;
    const { publisher, processor, checkpoints, checkpointer } = setup(undefined, 0, intervalMs);
    await processor.initialize({ shardId: 's', parentStates: [] });
    const started = Date.now();
    for (const n of [1, 2, 3, 4]) {
      await processor.processRecords(batch(n), checkpointer(`b${n}`));
      await within(() => publisher.pending === 1, `b${n}'s publish to start`);
      publisher.release();
      await within(() => publisher.published === n, `b${n} published`);
    }
    await within(() => checkpoints.at(-1) === 'b4', "the newest batch's checkpoint, by the interval's timer");
    const elapsed = Date.now() - started;
    // Written in batch order, the first at once, each later one an interval after the one before.
    expect(checkpoints[0]).toBe('b1');
    expect([...checkpoints].sort()).toEqual(checkpoints);
    expect(checkpoints.length).toBeLessThanOrEqual(1 + Math.floor(elapsed / intervalMs));
    await processor.shutdown('lease_lost');
  });

  it('drops a waiting checkpoint with the lease', async () => {
    const { publisher, processor, checkpoints, checkpointer } = setup(undefined, 0, 100);
    await processor.initialize({ shardId: 's', parentStates: [] });
    await processor.processRecords(batch(1), checkpointer('b1'));
    publisher.release();
    await within(() => checkpoints.length === 1, 'the first checkpoint');
    await processor.processRecords(batch(2), checkpointer('b2'));
    await within(() => publisher.pending === 1, "b2's publish to start");
    publisher.release();
    await within(() => publisher.published === 2, 'b2 published');
    await processor.shutdown('lease_lost');
    // Asserting that nothing happens: past the interval, the timer that would have written it is gone.
    await sleep(200);
    expect(checkpoints).toEqual(['b1']);
  });

  it('retries a failed staging in place: processRecords does not fail, the changes go out once', async () => {
    const { publisher, processor, checkpoints, checkpointer, changelog } = setup();
    const append = changelog.append.bind(changelog);
    let failures = 2;
    changelog.append = async (...args) => {
      if (failures-- > 0) throw new Error('throttled');
      return append(...args);
    };
    await processor.initialize({ shardId: 's', parentStates: [] });
    await processor.processRecords(batch(1), checkpointer('b1'));
    expect((await changelog.read({ workspaceId: WS, projectId: P }, 0, 10)).entries.map((e) => e.seq)).toEqual([1]);
    publisher.release();
    await within(() => checkpoints.length === 1, 'the checkpoint');
    await processor.shutdown('shutdown', checkpointer('final'));
    expect(publisher.published).toBe(1);
  });
});
