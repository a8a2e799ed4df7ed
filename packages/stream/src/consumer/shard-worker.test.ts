// A shard worker's endings and retries, with the real coordinator on an in-memory lease table
// and a scripted ShardReader (our own port, not Kinesis).
import { describe, expect, it } from '@jest/globals';
import { sleep, waitFor } from '../../../../test/support/wait.js';
import { silentLogger } from '../../../../lib/logger.js';
import { encodePlain } from '../record-codec.js';
import { LeaseCoordinator, LeaseLostError } from './coordinator.js';
import { MemoryLeaseStore } from './lease-store.js';
import { SHARD_END, TRIM_HORIZON, takenBy } from './leases.js';
import { noopConsumerMetrics } from './metrics.js';
import type { ShardProcessor, ShutdownReason } from './processor.js';
import type { ReadBatch, ShardReader, StartingPosition } from './shard-reader.js';
import { ShardWorker } from './shard-worker.js';

const raw = (seq: number) => ({ sequenceNumber: String(seq), partitionKey: 'ws', data: encodePlain(Buffer.from(JSON.stringify({ seq }))) });

/** Answers next() with each batch in turn (an Error is thrown instead), then waits for the stop. */
function scriptedReader(batches: (ReadBatch | Error)[]): ShardReader & { opened: StartingPosition[]; reads: number } {
  const opened: StartingPosition[] = [];
  const reader = {
    opened,
    reads: 0,
    open(_shardId: string, from: StartingPosition) {
      opened.push(from);
      return {
        next: (signal: AbortSignal) => {
          reader.reads += 1;
          const batch = batches.shift();
          if (batch instanceof Error) return Promise.reject(batch);
          if (batch) return Promise.resolve(batch);
          return new Promise<ReadBatch>((resolve) => signal.addEventListener('abort', () => resolve({ records: [], millisBehindLatest: 0, shardEnd: false }), { once: true }));
        },
        close: () => {},
      };
    },
  };
  return reader;
}

async function setup(batches: (ReadBatch | Error)[], processor: ShardProcessor, store = new MemoryLeaseStore(), failoverMs = 60_000, checkpointIntervalMs = 0) {
  await store.create({ leaseKey: 's0', leaseOwner: null, leaseCounter: 0, checkpoint: TRIM_HORIZON, checkpointSubSequence: 0, parentShardIds: [], ownerSwitchesSinceCheckpoint: 0 });
  const coordinator = new LeaseCoordinator({ workerId: 'me', store, failoverMs, initialPosition: TRIM_HORIZON });
  await coordinator.takeLeases();
  const ended: string[] = [];
  const reader = scriptedReader(batches);
  const worker = new ShardWorker({
    shardId: 's0',
    coordinator,
    reader,
    processor,
    metrics: noopConsumerMetrics,
    logger: silentLogger,
    backoff: { baseMs: 1, maxMs: 5 },
    random: () => 0.5,
    onShardEnd: (id) => ended.push(id),
    checkpointIntervalMs,
  });
  return { store, coordinator, worker, ended, reader };
}

function recorder(behaviour: { failFirst?: boolean; failTimes?: number; fail?: () => Error; checkpoint?: boolean } = {}) {
  const seen: string[][] = [];
  const shutdowns: { reason: ShutdownReason; withCheckpointer: boolean }[] = [];
  let calls = 0;
  const processor: ShardProcessor = {
    initialize: async () => {},
    processRecords: async (batch, checkpointer) => {
      calls += 1;
      seen.push(batch.records.map((r) => r.sequenceNumber));
      if (calls <= (behaviour.failTimes ?? (behaviour.failFirst ? 1 : 0))) throw behaviour.fail?.() ?? new Error('downstream unavailable');
      if (behaviour.checkpoint) await checkpointer.checkpoint(undefined, `after-${batch.records.at(-1)!.sequenceNumber}`);
    },
    shutdown: async (reason, checkpointer) => {
      shutdowns.push({ reason, withCheckpointer: checkpointer !== undefined });
    },
  };
  return { processor, seen, shutdowns };
}


describe('shard worker', () => {
  it('retries a batch whose processing failed, then goes on', async () => {
    const rec = recorder({ failFirst: true, checkpoint: true });
    const { store, worker } = await setup([{ records: [raw(1), raw(2)], millisBehindLatest: 0, shardEnd: false }, { records: [raw(3)], millisBehindLatest: 0, shardEnd: false }], rec.processor);
    await waitFor(() => rec.seen.length === 3, 'the retried batch and the next one', 5_000, 5);
    expect(rec.seen).toEqual([['1', '2'], ['1', '2'], ['3']]);
    await worker.stop('graceful');
    expect(store.items.get('s0')).toMatchObject({ checkpoint: '3', leaseOwner: null });
    expect(store.stateOf('s0')).toBe('after-3');
    expect(rec.shutdowns).toEqual([{ reason: 'shutdown', withCheckpointer: true }]);
  });

  it('writes no checkpoint for an idle shard: reads without records reach no processor and leave the lease as it was', async () => {
    const rec = recorder({ checkpoint: true });
    const idle = (): ReadBatch => ({ records: [], millisBehindLatest: 0, shardEnd: false });
    const { store, worker, reader } = await setup([{ records: [raw(1)], millisBehindLatest: 0, shardEnd: false }, idle(), idle(), idle(), idle()], rec.processor);
    await waitFor(() => reader.reads === 6, 'the batch, four empty reads and the read the stop ends', 5_000, 5);
    // Taken (counter 1), checkpointed after the batch (2), and nothing since.
    expect(store.items.get('s0')).toMatchObject({ checkpoint: '1', leaseCounter: 2 });
    expect(rec.seen).toEqual([['1']]);
    await worker.stop('graceful');
  });

  it('backs off and reads again after failed reads, delivering the batch once', async () => {
    const rec = recorder({ checkpoint: true });
    const { worker, reader } = await setup([new Error('socket hang up'), new Error('socket hang up'), { records: [raw(1)], millisBehindLatest: 0, shardEnd: false }], rec.processor);
    await waitFor(() => rec.seen.length === 1, 'the batch after two failed reads', 5_000, 5);
    await worker.stop('graceful');
    expect(rec.seen).toEqual([['1']]);
    expect(reader.opened).toHaveLength(1); // retried on the same subscription
    expect(reader.reads).toBe(4); // two failures, the batch, then the read the stop ended
  });

  it('keeps retrying a failing batch while it holds the lease, and stops the retries on a stop', async () => {
    const rec = recorder({ failTimes: Infinity });
    const { store, worker } = await setup([{ records: [raw(1)], millisBehindLatest: 0, shardEnd: false }], rec.processor);
    await waitFor(() => rec.seen.length >= 5, 'five attempts at the batch', 5_000, 5);
    await worker.stop('graceful');
    const attempts = rec.seen.length;
    expect(rec.seen.every((b) => b.join() === '1')).toBe(true);
    expect(rec.shutdowns).toEqual([{ reason: 'shutdown', withCheckpointer: true }]);
    expect(store.items.get('s0')).toMatchObject({ checkpoint: TRIM_HORIZON, leaseOwner: null }); // nothing was checkpointed
    expect(rec.seen.length).toBe(attempts); // no attempt after the stop
  });

  it('does not retry a batch whose processing lost the lease', async () => {
    const rec = recorder({ failTimes: Infinity, fail: () => new LeaseLostError('s0') });
    const { worker } = await setup([{ records: [raw(1)], millisBehindLatest: 0, shardEnd: false }], rec.processor);
    await worker.done;
    expect(rec.seen).toEqual([['1']]);
    expect(rec.shutdowns).toEqual([{ reason: 'lease_lost', withCheckpointer: false }]);
  });

  it('waits while its lease has lapsed by time only, then goes on where it was, without re-reading', async () => {
    // Lease writes fail for a while (an overloaded table), longer than the failover time.
    class FlakyStore extends MemoryLeaseStore {
      failing = false;
      override async replace(next: Parameters<MemoryLeaseStore['replace']>[0], expected: number): Promise<boolean> {
        if (this.failing) throw new Error('timed out');
        return super.replace(next, expected);
      }
    }
    const store = new FlakyStore();
    const seen: string[][] = [];
    const shutdowns: ShutdownReason[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const processor: ShardProcessor = {
      initialize: async () => {},
      processRecords: async (batch) => {
        seen.push(batch.records.map((r) => r.sequenceNumber));
        if (seen.length === 1) await gate; // the lease lapses while this batch is in hand
      },
      shutdown: async (reason) => {
        shutdowns.push(reason);
      },
    };
    const batches: ReadBatch[] = [{ records: [raw(1)], millisBehindLatest: 0, shardEnd: false }, { records: [raw(2)], millisBehindLatest: 0, shardEnd: false }];
    const { worker, coordinator, reader } = await setup(batches, processor, store, 150);
    await waitFor(() => seen.length === 1, 'the first batch', 5_000, 5);
    store.failing = true;
    await waitFor(() => !coordinator.holds('s0'), 'the lease to lapse past the failover time', 5_000, 5);
    release();
    // Asserting that nothing happens: for two failover times the worker must neither process the
    // next batch nor give the shard up while its renewals keep failing. No event marks "not yet".
    await sleep(300);
    expect({ seen, claims: coordinator.claims('s0') }).toEqual({ seen: [['1']], claims: true });
    store.failing = false;
    await waitFor(() => seen.length === 2, 'the second batch once renewals succeed', 5_000, 5);
    expect(seen).toEqual([['1'], ['2']]);
    expect(reader.opened).toHaveLength(1); // never gave the shard up
    expect(shutdowns).toEqual([]);
    await worker.stop('graceful');
  });

  it('marks the lease finished at shard end, keeping the state, and says so', async () => {
    const rec = recorder({ checkpoint: true });
    const { store, worker, ended } = await setup([{ records: [raw(5)], millisBehindLatest: 0, shardEnd: true }], rec.processor);
    await worker.done;
    expect(store.items.get('s0')).toMatchObject({ checkpoint: SHARD_END, leaseOwner: null });
    expect(store.stateOf('s0')).toBe('after-5');
    expect(rec.shutdowns).toEqual([{ reason: 'shard_end', withCheckpointer: true }]);
    expect(ended).toEqual(['s0']);
  });

  it('stops at once, without writing, when another worker took the lease', async () => {
    const shutdowns: ShutdownReason[] = [];
    const seen: string[] = [];
    const store = new MemoryLeaseStore();
    const processor: ShardProcessor = {
      initialize: async () => {},
      processRecords: async (batch, checkpointer) => {
        seen.push(...batch.records.map((r) => r.sequenceNumber));
        store.items.set('s0', takenBy(store.items.get('s0')!, 'thief')); // another worker steals it meanwhile
        await checkpointer.checkpoint(); // rejects with LeaseLostError, which ends the worker
      },
      shutdown: async (reason) => void shutdowns.push(reason),
    };
    const { worker } = await setup([{ records: [raw(9)], millisBehindLatest: 0, shardEnd: false }, { records: [raw(10)], millisBehindLatest: 0, shardEnd: false }], processor, store);
    await worker.done;
    expect(seen).toEqual(['9']);
    expect(shutdowns).toEqual(['lease_lost']);
    expect(store.items.get('s0')).toMatchObject({ leaseOwner: 'thief', checkpoint: TRIM_HORIZON });
  });

  it('resumes after the stored checkpoint and refuses to checkpoint backwards; an inline state of the previous version moves into a slot', async () => {
    const store = new MemoryLeaseStore();
    await store.create({ leaseKey: 's0', leaseOwner: null, leaseCounter: 0, checkpoint: '50', checkpointSubSequence: 0, checkpointState: 'kept', parentShardIds: [], ownerSwitchesSinceCheckpoint: 0 });
    const coordinator = new LeaseCoordinator({ workerId: 'me', store, failoverMs: 60_000, initialPosition: TRIM_HORIZON });
    await coordinator.takeLeases();
    const errors: unknown[] = [];
    const seen: string[] = [];
    const reader = scriptedReader([{ records: [raw(50), raw(51)], millisBehindLatest: 0, shardEnd: false }]);
    const worker = new ShardWorker({
      shardId: 's0',
      coordinator,
      reader,
      metrics: noopConsumerMetrics,
      logger: silentLogger,
      onShardEnd: () => {},
      processor: {
        initialize: async (init) => void expect(init.checkpoint).toEqual({ sequenceNumber: '50', subSequenceNumber: 0, state: 'kept' }),
        processRecords: async (batch, checkpointer) => {
          seen.push(...batch.records.map((r) => r.sequenceNumber));
          await checkpointer.checkpoint({ sequenceNumber: '49', subSequenceNumber: 0 }).catch((err: unknown) => errors.push(err));
          await checkpointer.checkpoint();
        },
        shutdown: async () => {},
      },
    });
    await waitFor(() => seen.length > 0, 'a batch', 5_000, 5);
    await worker.stop('graceful');
    expect(reader.opened).toEqual([{ type: 'AT_SEQUENCE_NUMBER', sequenceNumber: '50' }]);
    expect(seen).toEqual(['51']); // 50 itself was checkpointed
    expect(errors).toHaveLength(1);
    expect(store.items.get('s0')).toMatchObject({ checkpoint: '51', stateRef: { slot: 'a', writerCounter: 1 } });
    expect(store.items.get('s0')!.checkpointState).toBeUndefined();
    expect(store.stateOf('s0')).toBe('kept');
  });
});

describe('shard worker checkpoint interval', () => {
  const batch = (...seqs: number[]): ReadBatch => ({ records: seqs.map(raw), millisBehindLatest: 0, shardEnd: false });

  /** Counts the lease writes that carry a checkpoint (renewals carry none here: the coordinator is not cycled). */
  class CountingStore extends MemoryLeaseStore {
    readonly checkpoints: string[] = [];
    readonly writtenAt: number[] = [];
    override async replace(next: Parameters<MemoryLeaseStore['replace']>[0], expected: number): Promise<boolean> {
      const before = this.items.get(next.leaseKey);
      const ok = await super.replace(next, expected);
      if (ok && next.checkpoint !== before?.checkpoint) {
        this.checkpoints.push(next.checkpoint);
        this.writtenAt.push(Date.now());
      }
      return ok;
    }
  }

  it('writes the first checkpoint at once, keeps the later ones within the interval, and writes the newest before the release', async () => {
    const rec = recorder({ checkpoint: true });
    const store = new CountingStore();
    const { worker } = await setup([batch(1), batch(2), batch(3, 4)], rec.processor, store, 60_000, 60_000);
    await waitFor(() => rec.seen.length === 3, 'three batches', 5_000, 5);
    expect(store.items.get('s0')).toMatchObject({ checkpoint: '1' });
    expect(store.stateOf('s0')).toBe('after-1');
    await worker.stop('graceful');
    expect(store.checkpoints).toEqual(['1', '4']);
    expect(store.items.get('s0')).toMatchObject({ checkpoint: '4', leaseOwner: null });
    expect(store.stateOf('s0')).toBe('after-4');
  });

  it('writes a waiting checkpoint when the interval has passed, with no later batch to carry it, never two within the interval', async () => {
    const rec = recorder({ checkpoint: true });
    const store = new CountingStore();
    const { worker } = await setup([batch(1), batch(2), batch(3)], rec.processor, store, 60_000, 150);
    await waitFor(() => rec.seen.length === 3, 'three batches', 5_000, 5);
    await waitFor(() => store.items.get('s0')?.checkpoint === '3', 'the newest checkpoint, written by the timer', 5_000, 5);
    expect(store.checkpoints[0]).toBe('1'); // the first at once
    expect(store.items.get('s0')).toMatchObject({ leaseOwner: 'me' });
    expect(store.stateOf('s0')).toBe('after-3');
    // However the host schedules the batches, writes are an interval apart (timers may fire a millisecond early).
    const gaps = store.writtenAt.slice(1).map((t, i) => t - store.writtenAt[i]!);
    expect(gaps.every((g) => g >= 148)).toBe(true);
    await worker.stop('graceful');
  });

  it('drops a waiting checkpoint when the worker is abandoned: the next holder re-reads from the last one written', async () => {
    const store = new CountingStore();
    let processed = false;
    const processor: ShardProcessor = {
      initialize: async () => {},
      processRecords: async (_batch, checkpointer) => {
        await checkpointer.checkpoint(undefined, 'first'); // written at once
        await checkpointer.checkpoint(undefined, 'second'); // right after it: waits for the interval
        processed = true;
      },
      shutdown: async () => {},
    };
    const { worker } = await setup([batch(1)], processor, store, 60_000, 100);
    await waitFor(() => processed, 'the batch', 5_000, 5);
    await worker.stop('abandon');
    await sleep(250); // past the interval: a timer left armed would have written 'second'
    expect(store.checkpoints).toEqual(['1']);
    expect(store.stateOf('s0')).toBe('first');
  });

  it('ends with the lease lost when a waiting checkpoint finds the lease taken, and writes nothing more', async () => {
    const shutdowns: ShutdownReason[] = [];
    const store = new CountingStore();
    const processor: ShardProcessor = {
      initialize: async () => {},
      processRecords: async (_batch, checkpointer) => {
        await checkpointer.checkpoint(); // the first: written at once
        store.items.set('s0', takenBy(store.items.get('s0')!, 'thief'));
        await checkpointer.checkpoint(); // right after it: waits for the interval, then its timer finds the lease taken
        await sleep(250);
      },
      shutdown: async (reason) => void shutdowns.push(reason),
    };
    const { worker } = await setup([batch(1), batch(2)], processor, store, 60_000, 100);
    await worker.done;
    expect(shutdowns).toEqual(['lease_lost']);
    expect(store.checkpoints).toEqual(['1']);
    expect(store.items.get('s0')).toMatchObject({ leaseOwner: 'thief', checkpoint: '1' });
  });

  it('marks the shard finished with the newest state even when its checkpoint was waiting', async () => {
    const rec = recorder({ checkpoint: true });
    const { store, worker, ended } = await setup([batch(1), { records: [raw(2)], millisBehindLatest: 0, shardEnd: true }], rec.processor, new MemoryLeaseStore(), 60_000, 60_000);
    await worker.done;
    expect(store.items.get('s0')).toMatchObject({ checkpoint: SHARD_END, leaseOwner: null });
    expect(store.stateOf('s0')).toBe('after-2');
    expect(ended).toEqual(['s0']);
  });
});
