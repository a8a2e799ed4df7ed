// A read is handed to the processor in slices (MAX_RECORDS_PER_CALL): whatever the batches, the
// aggregation and the slice size, every user record arrives once per incarnation, in order, in
// calls of at most the slice size with the event loop turned between them; a worker killed
// mid-batch and restarted under its id resumes exactly after its last checkpoint (which may lie
// inside an aggregated record), so checkpointed records are never delivered again. With a
// checkpoint interval the stored checkpoint may lag what the processor checkpointed, never pass it.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { waitFor } from '../../../../test/support/wait.js';
import { silentLogger } from '../../../../lib/logger.js';
import { encodeAggregated } from '../record-codec.js';
import { LeaseCoordinator, LeaseLostError } from './coordinator.js';
import { MemoryLeaseStore } from './lease-store.js';
import { TRIM_HORIZON } from './leases.js';
import { noopConsumerMetrics } from './metrics.js';
import type { ShardProcessor } from './processor.js';
import type { RawRecord, ReadBatch, ShardReader, StartingPosition } from './shard-reader.js';
import { ShardWorker } from './shard-worker.js';

/** Serves the records from where it is opened, in reads of the given sizes, then waits for the stop. */
function reader(records: readonly RawRecord[], readSizes: readonly number[]): ShardReader {
  return {
    open(_shardId: string, from: StartingPosition) {
      let at = from.type === 'AT_SEQUENCE_NUMBER' ? records.findIndex((r) => r.sequenceNumber === from.sequenceNumber) : 0;
      let read = 0;
      return {
        next: (signal: AbortSignal) => {
          if (at < records.length) {
            const size = readSizes[read++ % readSizes.length]!;
            const batch: ReadBatch = { records: records.slice(at, at + size), millisBehindLatest: 0, shardEnd: false };
            at += size;
            return new Promise<ReadBatch>((resolve) => setImmediate(() => resolve(batch))); // as a network read would
          }
          return new Promise<ReadBatch>((resolve) => signal.addEventListener('abort', () => resolve({ records: [], millisBehindLatest: 0, shardEnd: false }), { once: true }));
        },
        close: () => {},
      };
    },
  };
}

interface Incarnation {
  delivered: string[];
  checkpointed: string[];
  calls: number[];
  turnedBetweenCalls: boolean;
  died: boolean;
}

/** A processor that checkpoints every call, until (optionally) call `dieAt`, where it dies before checkpointing. */
function processor(run: Incarnation, dieAt: number | undefined): ShardProcessor {
  let turned = true;
  return {
    initialize: async () => {},
    processRecords: async (batch, checkpointer) => {
      if (!turned) run.turnedBetweenCalls = false;
      turned = false;
      setImmediate(() => (turned = true));
      const ids = batch.records.map((r) => `${r.sequenceNumber}.${r.subSequenceNumber}`);
      run.calls.push(ids.length);
      run.delivered.push(...ids);
      if (run.calls.length === dieAt) {
        run.died = true;
        throw new LeaseLostError('s0'); // stands in for the SIGKILL: no checkpoint, no release
      }
      await checkpointer.checkpoint();
      run.checkpointed.push(...ids);
    },
    shutdown: async () => {},
  };
}

function worker(store: MemoryLeaseStore, source: ShardReader, proc: ShardProcessor, perCall: number, checkpointIntervalMs: number): Promise<ShardWorker> {
  const coordinator = new LeaseCoordinator({ workerId: 'me', store, failoverMs: 60_000, initialPosition: TRIM_HORIZON });
  return coordinator.takeLeases().then(
    () => new ShardWorker({ shardId: 's0', coordinator, reader: source, processor: proc, metrics: noopConsumerMetrics, logger: silentLogger, onShardEnd: () => {}, maxRecordsPerCall: perCall, checkpointIntervalMs }),
  );
}

/** How many of `all` the stored checkpoint covers. */
function storedCount(store: MemoryLeaseStore, all: readonly string[]): number {
  const lease = store.items.get('s0')!;
  return lease.checkpoint === TRIM_HORIZON ? 0 : all.indexOf(`${lease.checkpoint}.${lease.checkpointSubSequence}`) + 1;
}

describe('shard worker slices', () => {
  it('deliver every user record once per incarnation, in order, in bounded calls; a restart resumes after the last checkpoint', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 25 }),
        fc.array(fc.integer({ min: 1, max: 10 }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 8 }),
        fc.option(fc.integer({ min: 1, max: 20 }), { nil: undefined }),
        fc.constantFrom(0, 1, 20),
        async (aggregation, readSizes, perCall, dieAt, intervalMs) => {
          const records: RawRecord[] = aggregation.map((n, i) => ({
            sequenceNumber: String(1000 + i),
            partitionKey: 'ws',
            data: encodeAggregated('ws', Array.from({ length: n }, (_, j) => Buffer.from(`${i}.${j}`))),
          }));
          const all = aggregation.flatMap((n, i) => Array.from({ length: n }, (_, j) => `${1000 + i}.${j}`));
          const store = new MemoryLeaseStore();
          await store.create({ leaseKey: 's0', leaseOwner: null, leaseCounter: 0, checkpoint: TRIM_HORIZON, checkpointSubSequence: 0, parentShardIds: [], ownerSwitchesSinceCheckpoint: 0 });

          const runs: Incarnation[] = [];
          const incarnation = async (die: number | undefined) => {
            const run: Incarnation = { delivered: [], checkpointed: [], calls: [], turnedBetweenCalls: true, died: false };
            runs.push(run);
            const before = storedCount(store, all);
            const w = await worker(store, reader(records, readSizes), processor(run, die), perCall, intervalMs);
            await waitFor(() => run.died || before + run.checkpointed.length === all.length, 'all records checkpointed or the processor dead', 5_000, 1);
            await w.stop('abandon');
            return run;
          };
          const first = await incarnation(dieAt);
          const stored = storedCount(store, all);
          // The stored checkpoint never passes what the processor checkpointed; without an interval it is exactly that.
          expect(stored).toBeLessThanOrEqual(first.checkpointed.length);
          if (intervalMs === 0) expect(stored).toBe(first.checkpointed.length);
          const second = stored < all.length ? await incarnation(undefined) : undefined;

          for (const run of runs) {
            expect(run.calls.every((n) => n >= 1 && n <= perCall)).toBe(true);
            expect(new Set(run.delivered).size).toBe(run.delivered.length);
            expect(run.turnedBetweenCalls).toBe(true);
          }
          expect(first.delivered).toEqual(all.slice(0, first.delivered.length));
          // Records the stored checkpoint covers are never delivered again; nothing is skipped.
          expect([...all.slice(0, stored), ...(second?.delivered ?? [])]).toEqual(all);
        },
      ),
      { numRuns: 150 },
    );
  });
});
