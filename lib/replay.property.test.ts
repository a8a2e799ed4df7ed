// The replay driver against an in-memory stream and archive: every event of the window is handed
// over (from the stream, or the archive for what the retention has dropped), none outside it, and
// a replay stopped at any point and run again resumes after the last checkpoint — nothing lost.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { gzipSync } from 'node:zlib';
import type { ProcessBatch, ReadBatch, ShardInfo, ShardProcessor, ShardSubscription, StartingPosition } from '@taskflow/stream';
import type { ObjectStore, StoredObject } from './object-store.js';
import { archiveKeysFor, archiveLines, archiveUntil, inWindow, type ProgressStore, replay, type ReplayProgress, type StreamSource } from './replay.js';

const HOUR = 3600_000;
const NOW = Date.UTC(2026, 11, 3, 12);
const WS = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222'];

interface Ev {
  id: string;
  workspaceid: string;
  time: number;
  /** Arrival in the stream: at or after the commit. */
  arrival: number;
}

class MemoryObjectStore implements ObjectStore {
  readonly objects = new Map<string, Uint8Array>();
  put(key: string, body: Uint8Array) {
    this.objects.set(key, body);
    return Promise.resolve();
  }
  get(key: string) {
    return Promise.resolve(this.objects.get(key)!);
  }
  list(prefix: string, startAfter = ''): Promise<StoredObject[]> {
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix) && k > startAfter).sort();
    return Promise.resolve(keys.map((key) => ({ key, size: this.objects.get(key)!.length, lastModified: new Date(0) })));
  }
  delete(key: string) {
    this.objects.delete(key);
    return Promise.resolve();
  }
}

const json = (e: Ev) => Buffer.from(JSON.stringify({ id: e.id, workspaceid: e.workspaceid, time: new Date(e.time).toISOString() }));

/** Shard i holds the events in arrival order; records before the trim horizon are gone. */
function memoryStream(shards: Ev[][], trimHorizon: number, closed: boolean[], readSize: number): StreamSource {
  const infos: ShardInfo[] = shards.map((_, i) => ({ shardId: `shard-${i}`, parentShardIds: [], closed: closed[i]! }));
  return {
    listShards: () => Promise.resolve(infos),
    retentionHours: () => Promise.resolve((NOW - trimHorizon) / HOUR),
    open(shardId: string, from: StartingPosition): ShardSubscription {
      const i = Number(shardId.slice(6));
      const records = shards[i]!.map((e, n) => ({ e, seq: String(1000 + n) })).filter((r) => r.e.arrival >= trimHorizon);
      let at = from.type === 'AT_TIMESTAMP' ? records.findIndex((r) => r.e.arrival >= from.timestamp.getTime()) : from.type === 'AT_SEQUENCE_NUMBER' ? records.findIndex((r) => r.seq === from.sequenceNumber) : 0;
      if (at < 0) at = records.length;
      return {
        next(): Promise<ReadBatch> {
          const slice = records.slice(at, at + readSize);
          at += slice.length;
          const atEnd = at >= records.length;
          return Promise.resolve({
            records: slice.map((r) => ({ sequenceNumber: r.seq, partitionKey: r.e.workspaceid, data: json(r.e), approximateArrivalTimestamp: new Date(r.e.arrival) })),
            millisBehindLatest: atEnd ? 0 : 1000,
            shardEnd: atEnd && closed[i]!,
          });
        },
        close() {},
      };
    },
  };
}

/** Records what each processor was handed; checkpoints after each batch, like search's. */
function recordingProcessors(handed: string[], stopAfter: { batches: number; abort: AbortController } | undefined) {
  let batches = 0;
  return (): ShardProcessor => ({
    initialize: () => Promise.resolve(),
    async processRecords(batch: ProcessBatch, checkpointer) {
      for (const r of batch.records) handed.push((JSON.parse(Buffer.from(r.data).toString('utf8')) as { id: string }).id);
      await checkpointer.checkpoint();
      if (stopAfter && ++batches >= stopAfter.batches) stopAfter.abort.abort();
    },
    shutdown: () => Promise.resolve(),
  });
}

function memoryProgress(): ProgressStore & { value: ReplayProgress | undefined } {
  const store = {
    value: undefined as ReplayProgress | undefined,
    load: () => Promise.resolve(store.value ? (structuredClone(store.value) as ReplayProgress) : undefined),
    save: (p: ReplayProgress) => {
      store.value = structuredClone(p);
      return Promise.resolve();
    },
  };
  return store;
}

const events = fc
  .array(fc.record({ ws: fc.constantFrom(...WS, '*'), ageMin: fc.integer({ min: 0, max: 48 * 60 }), lagMs: fc.integer({ min: 0, max: 30_000 }), shard: fc.integer({ min: 0, max: 2 }) }), { maxLength: 60 })
  .map((raw) =>
    raw.map((r, n): Ev & { shard: number } => {
      const time = NOW - r.ageMin * 60_000 - 40_000;
      return { id: `E${String(n).padStart(4, '0')}`, workspaceid: r.ws, time, arrival: time + r.lagMs, shard: r.shard };
    }),
  );

describe('replay', () => {
  it('hands over exactly the window, from the stream and the archive beyond its retention, and resumes after a stop', async () => {
    await fc.assert(
      fc.asyncProperty(
        events,
        fc.integer({ min: 1, max: 47 }), // window start, hours ago
        fc.integer({ min: 0, max: 40 }), // window end, hours ago (clamped below the start)
        fc.integer({ min: 6, max: 36 }), // retention in hours
        fc.option(fc.constantFrom(...WS), { nil: undefined }),
        fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }), // stop after that many batches
        fc.integer({ min: 1, max: 7 }), // read size
        fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
        async (evs, fromH, toH, retentionH, workspace, stopAt, readSize, closed) => {
          const window = { from: new Date(NOW - fromH * HOUR), to: new Date(NOW - Math.min(toH, fromH - 1) * HOUR), ...(workspace ? { workspace } : {}) };
          const perShard = [0, 1, 2].map((i) => evs.filter((e) => e.shard === i).sort((a, b) => a.arrival - b.arrival));
          const stream = memoryStream(perShard, NOW - retentionH * HOUR, closed, readSize);
          // The archive holds every event (the archiver reads from the start), in hourly objects.
          const store = new MemoryObjectStore();
          const byHour = new Map<string, Ev[]>();
          for (const e of evs) {
            const d = new Date(e.arrival + 60_000);
            const key = `raw/${d.toISOString().slice(0, 13).replace(/[-T]/g, '/')}/taskflow-1-${d.toISOString().slice(0, 19).replace(/[T:]/g, '-')}-${e.id}.gz`;
            byHour.set(key, [...(byHour.get(key) ?? []), e]);
          }
          for (const [key, es] of byHour) await store.put(key, gzipSync(Buffer.concat(es.map((e) => Buffer.concat([json(e), Buffer.of(0x0a)])))));

          const progress = memoryProgress();
          const handed: string[] = [];
          const run = async (stopAfter?: number) => {
            const abort = new AbortController();
            return replay({
              consumer: 'search',
              window,
              processor: recordingProcessors(handed, stopAfter ? { batches: stopAfter, abort } : undefined),
              stream,
              archive: { store, prefix: 'raw/' },
              progress,
              signal: abort.signal,
              now: () => NOW,
            });
          };
          const first = await run(stopAt);
          const final = first.done ? first : await run();
          expect(final.done).toBe(true);

          const expected = evs.filter((e) => inWindow({ time: new Date(e.time).toISOString(), workspaceid: e.workspaceid }, window)).map((e) => e.id);
          expect([...new Set(handed)].sort()).toEqual([...expected].sort());
          // Without a stop, each event once from the stream, and once more at most from the archive overlap.
          if (!stopAt) for (const id of new Set(handed)) expect(handed.filter((h) => h === id).length).toBeLessThanOrEqual(2);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('needs the archive only when the window starts before the retention (with two hours of overlap)', () => {
    const window = { from: new Date(NOW - 10 * HOUR), to: new Date(NOW) };
    expect(archiveUntil(window, NOW, 24)).toBeUndefined();
    expect(archiveUntil(window, NOW, 12)).toBeUndefined();
    expect(archiveUntil(window, NOW, 11)).toEqual(new Date(NOW - 9 * HOUR));
    expect(archiveUntil(window, NOW, 9)).toEqual(new Date(NOW - 7 * HOUR));
    expect(archiveUntil({ ...window, to: new Date(NOW - 9 * HOUR) }, NOW, 4)).toEqual(new Date(NOW - 9 * HOUR));
  });

  it('lists only the archive hours that can hold the window, and reads GZIP NDJSON lines', () => {
    const keys = ['raw/2026/12/03/08/a.gz', 'raw/2026/12/03/09/b.gz', 'raw/2026/12/03/11/c.gz', 'raw/2026/12/03/12/d.gz', 'raw/other.gz'];
    expect(archiveKeysFor(keys, 'raw/', new Date('2026-12-03T09:30:00Z'), new Date('2026-12-03T10:10:00Z'))).toEqual(['raw/2026/12/03/09/b.gz', 'raw/2026/12/03/11/c.gz', 'raw/other.gz']);
    expect(archiveLines(gzipSync('{"a":1}\n{"b":2}\n')).map((l) => Buffer.from(l).toString())).toEqual(['{"a":1}', '{"b":2}']);
    // The archiver's objects: gzip members one after another (analytics/record-packing.ts).
    expect(archiveLines(Buffer.concat([gzipSync('{"a":1}\n'), gzipSync('{"b":2}\n{"c":3}\n')])).map((l) => Buffer.from(l).toString())).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
  });
});
