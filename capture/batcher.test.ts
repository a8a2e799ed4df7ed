import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { decodeRecord } from '@taskflow/stream/codec';
import { type Batch, Batcher, KINESIS_LIMITS } from './batcher.js';

interface Ev {
  partitionKey: string;
  data: Uint8Array;
  seq: number;
}
const limits = { maxRecords: 5, maxBatchBytes: 3000, maxRecordBytes: 1000 };
const backoff = { baseMs: 10, maxMs: 200 };

function event(key: string, seq: number, pad: number): Ev {
  return { partitionKey: key, seq, data: Buffer.from(JSON.stringify({ key, seq, pad: 'x'.repeat(pad) })) };
}

type Step = { kind: 'enqueue'; key: number; pad: number } | { kind: 'send' } | { kind: 'settle'; which: number; fails: boolean[] } | { kind: 'wait'; ms: number };
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('enqueue' as const), key: fc.integer({ min: 0, max: 3 }), pad: fc.integer({ min: 0, max: 400 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('send' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('settle' as const), which: fc.nat(), fails: fc.array(fc.boolean(), { maxLength: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 300 }) }) },
);

describe('Batcher', () => {
  it('never reorders a key under any partial PutRecords failures, and delivers everything once', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 120 }), fc.boolean(), fc.constantFrom('none' as const, 'gzip' as const, 'zstd' as const), (steps, aggregate, compression) => {
        const b = new Batcher<Ev>({ aggregate, compression, limits, backoff });
        const stream = new Map<string, number[]>(); // what a reader of each key sees, in order
        const enqueued = new Map<string, number[]>();
        const inFlight: Batch<Ev>[] = [];
        let now = 0;
        let seq = 0;
        const checkBatch = (batch: Batch<Ev>) => {
          expect(batch.records.length).toBeLessThanOrEqual(limits.maxRecords);
          let bytes = 0;
          for (const r of batch.records) {
            const size = r.data.length + r.partitionKey.length;
            expect(size).toBeLessThanOrEqual(limits.maxRecordBytes);
            bytes += size;
            // the bytes hold exactly the items, in order
            expect(decodeRecord(r.data).map((d) => (JSON.parse(Buffer.from(d).toString()) as { seq: number }).seq)).toEqual(r.items.map((i) => i.seq));
          }
          expect(bytes).toBeLessThanOrEqual(limits.maxBatchBytes);
          const keys = [...batch.records, ...inFlight.flatMap((f) => f.records)].map((r) => r.partitionKey);
          expect(new Set(keys).size).toBe(keys.length); // one record in flight per key
        };
        const settle = (batch: Batch<Ev>, ok: boolean[]) => {
          // a real PutRecords applies the successful records; failed ones are not written
          batch.records.forEach((r, i) => {
            if (ok[i]) stream.set(r.partitionKey, [...(stream.get(r.partitionKey) ?? []), ...r.items.map((x) => x.seq)]);
          });
          const acked = b.settle(batch, ok, now, () => 0.5);
          expect(acked.length).toBe(batch.records.filter((_, i) => ok[i]).reduce((n, r) => n + r.items.length, 0));
        };
        for (const s of steps) {
          if (s.kind === 'enqueue') {
            const key = `ws-${s.key}`;
            expect(b.enqueue(event(key, seq, s.pad))).toEqual({ ok: true });
            enqueued.set(key, [...(enqueued.get(key) ?? []), seq++]);
          } else if (s.kind === 'send') {
            const batch = b.next(now);
            if (batch) {
              checkBatch(batch);
              inFlight.push(batch);
            }
          } else if (s.kind === 'settle') {
            if (inFlight.length === 0) continue;
            const [batch] = inFlight.splice(s.which % inFlight.length, 1);
            settle(batch!, batch!.records.map((_, i) => !(s.fails[i] ?? false)));
          } else {
            now += s.ms;
          }
          for (const [key, seen] of stream) expect(seen).toEqual(enqueued.get(key)!.slice(0, seen.length));
        }
        // Drain: Kinesis recovers.
        for (const batch of inFlight.splice(0)) settle(batch, batch.records.map(() => true));
        for (let guard = 0; b.pendingEvents > 0; guard++) {
          expect(guard).toBeLessThan(1000);
          const batch = b.next(now);
          if (!batch) {
            now = b.nextSendAt(now) ?? now + 1;
            continue;
          }
          checkBatch(batch);
          settle(batch, batch.records.map(() => true));
        }
        expect(Object.fromEntries(stream)).toEqual(Object.fromEntries(enqueued));
        expect(b.pendingBytes).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('lingers: holds a batch until its oldest sendable event has waited, unless a request is full, and loses or reorders nothing', () => {
    const lingerArb = fc.record({ ms: fc.integer({ min: 1, max: 50 }), events: fc.integer({ min: 1, max: 12 }), bytes: fc.integer({ min: 100, max: 5000 }) });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 120 }), lingerArb, fc.boolean(), (steps, linger, aggregate) => {
        const b = new Batcher<Ev>({ aggregate, compression: 'none', limits, backoff, linger });
        const stream = new Map<string, number[]>();
        const enqueued = new Map<string, number[]>();
        // When each key's queue last became non-empty, and what is queued, as the model sees it.
        const model = new Map<string, { since: number; queued: Ev[]; inFlight: boolean }>();
        const inFlight: Batch<Ev>[] = [];
        let now = 0;
        let seq = 0;
        const queued = () => [...model.values()].flatMap((m) => m.queued);
        const full = () => queued().length >= linger.events || queued().reduce((n, e) => n + e.data.length, 0) >= linger.bytes;
        const send = () => {
          const wasFull = full();
          // the oldest a sendable key's head has waited (backing-off keys wait anyway)
          const due = [...model.values()].some((m) => !m.inFlight && m.queued.length > 0 && m.since + linger.ms <= now);
          const batch = b.next(now);
          if (batch) {
            expect(wasFull || due).toBe(true); // never early
            for (const r of batch.records) {
              const m = model.get(r.partitionKey)!;
              m.queued.splice(0, r.items.length);
              m.inFlight = true;
            }
            inFlight.push(batch);
          }
          return batch;
        };
        const settle = (batch: Batch<Ev>, ok: boolean[]) => {
          batch.records.forEach((r, i) => {
            const m = model.get(r.partitionKey)!;
            m.inFlight = false;
            if (ok[i]) stream.set(r.partitionKey, [...(stream.get(r.partitionKey) ?? []), ...r.items.map((x) => x.seq)]);
            else m.queued.unshift(...r.items);
          });
          b.settle(batch, ok, now, () => 0.5);
        };
        for (const s of steps) {
          if (s.kind === 'enqueue') {
            const key = `ws-${s.key}`;
            const ev = event(key, seq, s.pad);
            expect(b.enqueue(ev, now)).toEqual({ ok: true });
            const m = model.get(key) ?? { since: now, queued: [], inFlight: false };
            if (m.queued.length === 0) m.since = now;
            m.queued.push(ev);
            model.set(key, m);
            enqueued.set(key, [...(enqueued.get(key) ?? []), seq++]);
          } else if (s.kind === 'send') {
            send();
          } else if (s.kind === 'settle') {
            if (inFlight.length === 0) continue;
            const [batch] = inFlight.splice(s.which % inFlight.length, 1);
            settle(batch!, batch!.records.map((_, i) => !(s.fails[i] ?? false)));
          } else {
            now += s.ms;
          }
          for (const [key, seen] of stream) expect(seen).toEqual(enqueued.get(key)!.slice(0, seen.length));
        }
        for (const batch of inFlight.splice(0)) settle(batch, batch.records.map(() => true));
        // Nothing is stranded: nextSendAt names a time at which the rest goes.
        for (let guard = 0; b.pendingEvents > 0; guard++) {
          expect(guard).toBeLessThan(1000);
          const batch = send();
          if (!batch) {
            const at = b.nextSendAt(now);
            expect(at).toBeDefined();
            expect(at!).toBeGreaterThan(now);
            now = at!;
            continue;
          }
          inFlight.splice(inFlight.indexOf(batch), 1);
          settle(batch, batch.records.map(() => true));
        }
        expect(Object.fromEntries(stream)).toEqual(Object.fromEntries(enqueued));
      }),
      { numRuns: 300 },
    );
  });

  it('sends a lone event once it has lingered, and at once when a request is full', () => {
    const b = new Batcher<Ev>({ aggregate: true, compression: 'none', limits: KINESIS_LIMITS, backoff, linger: { ms: 20, events: 3, bytes: 1e6 } });
    b.enqueue(event('a', 1, 0), 100);
    b.enqueue(event('b', 2, 0), 110);
    expect(b.next(119)).toBeUndefined();
    expect(b.nextSendAt(119)).toBe(120);
    const batch = b.next(120)!; // a's linger is over: b goes with it
    expect(batch.records.map((r) => r.partitionKey)).toEqual(['a', 'b']);
    b.settle(batch, [true, true], 125, () => 0);
    for (let i = 0; i < 3; i++) b.enqueue(event('c', 3 + i, 0), 130);
    expect(b.next(130)!.records[0]!.items).toHaveLength(3);
  });

  it('backs a failed key off with full jitter while other keys go on', () => {
    const b = new Batcher<Ev>({ aggregate: false, compression: 'none', limits: KINESIS_LIMITS, backoff: { baseMs: 100, maxMs: 1000 } });
    b.enqueue(event('a', 1, 0));
    b.enqueue(event('a', 2, 0));
    b.enqueue(event('b', 3, 0));
    const first = b.next(0)!;
    expect(first.records.map((r) => r.partitionKey)).toEqual(['a', 'b']);
    expect(b.next(0)).toBeUndefined(); // both keys in flight
    b.settle(first, [false, true], 0, () => 0.99);
    expect(b.next(0)).toBeUndefined(); // a backs off, b is done
    expect(b.nextSendAt(0)).toBe(99);
    const retry = b.next(99)!;
    expect(retry.records[0]!.items.map((i) => i.seq)).toEqual([1]); // the failed event first, again
  });

  it('takes keys round robin when a request cannot hold them all, so none is starved', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 12 }), fc.integer({ min: 1, max: 5 }), fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }), (keys, maxRecords, failures) => {
        const b = new Batcher<Ev>({ aggregate: true, compression: 'none', limits: { ...limits, maxRecords }, backoff: { baseMs: 0, maxMs: 0 } });
        const lastSent = new Map<string, number>();
        let seq = 0;
        for (let round = 0; round < 30; round++) {
          for (let k = 0; k < keys; k++) b.enqueue(event(`ws-${k}`, seq++, 0)); // every key always has work
          const batch = b.next(round)!;
          for (const r of batch.records) lastSent.set(r.partitionKey, round);
          b.settle(batch, batch.records.map(() => !failures[round]), round, () => 0);
          // a key waits at most the rounds it takes the others to have their turn
          const patience = Math.ceil(keys / maxRecords);
          if (round >= patience) for (let k = 0; k < keys; k++) expect(round - (lastSent.get(`ws-${k}`) ?? -1)).toBeLessThanOrEqual(patience);
        }
      }),
    );
  });

  it('aggregates a waiting key into one record and refuses an event larger than a record', () => {
    const b = new Batcher<Ev>({ aggregate: true, compression: 'none', limits: KINESIS_LIMITS, backoff });
    for (let i = 0; i < 300; i++) b.enqueue(event('a', i, 100));
    const batch = b.next(0)!;
    expect(batch.records).toHaveLength(1);
    expect(batch.records[0]!.items).toHaveLength(300);
    expect(b.enqueue(event('a', 999, 1024 * 1024))).toMatchObject({ ok: false, reason: 'RECORD_TOO_LARGE' });
    // compressible and small enough once gzipped: accepted when compression is on
    const gz = new Batcher<Ev>({ aggregate: true, compression: 'gzip', limits: KINESIS_LIMITS, backoff });
    expect(gz.enqueue(event('a', 1, 2 * 1024 * 1024))).toEqual({ ok: true });
    expect(gz.next(0)!.records[0]!.data.length).toBeLessThan(100_000);
    // many compressible events of one key: a record never holds more than aws-kinesis-agg builds (1 MiB)
    const many = new Batcher<Ev>({ aggregate: true, compression: 'gzip', limits: KINESIS_LIMITS, backoff });
    for (let i = 0; i < 3000; i++) many.enqueue(event('a', i, 1000));
    const record = many.next(0)!.records[0]!;
    expect(decodeRecord(record.data)).toHaveLength(record.items.length);
    expect(record.items.length).toBeLessThan(1100);
  });
});
