import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import pino from 'pino';
import { KINESIS_LIMITS } from './batcher.js';
import { KinesisProducer, type ProducerTimers, type PutResult } from './producer.js';

// A simulated event loop for the producer. Two things real Node does are modelled, because a
// change once waited in capture, unsent and with no timer, until the next change came along:
// - the wall clock (Date.now) moves on between any two readings, by `drift`;
// - a timer fires up to `earlyMs` before the wall clock says it is due: Node starts a timer
//   from the loop's cached time, which lags the wall clock while a long tick runs.
class SimulatedLoop implements ProducerTimers {
  wall = 0;
  private reads = 0;
  private nextId = 0;
  private readonly timers = new Map<number, { dueAt: number; fire: () => void }>();
  readonly puts: { records: number; resolve: (r: PutResult[]) => void }[] = [];

  constructor(
    private readonly drift: readonly number[],
    private readonly earlyMs: readonly number[],
  ) {}

  now = (): number => {
    this.wall += this.drift[this.reads++ % this.drift.length]!;
    return this.wall;
  };

  set(fire: () => void, ms: number): number {
    const early = this.earlyMs[this.nextId % this.earlyMs.length]!;
    // early, but never before the loop's time has moved on: a timer of n ms fires in a later tick
    this.timers.set(++this.nextId, { dueAt: this.wall + Math.max(ms - early, Math.min(ms, 1)), fire });
    return this.nextId;
  }

  clear(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  get pendingTimers(): number {
    return this.timers.size;
  }

  /** Moves the wall clock on, firing the timers that come due on the way, in order. */
  async advance(ms: number): Promise<void> {
    const until = this.wall + ms;
    for (let t = this.earliest(); t && t[1].dueAt <= until; t = this.earliest()) await this.fire(t);
    this.wall = Math.max(this.wall, until);
  }

  async fireEarliest(): Promise<void> {
    const t = this.earliest();
    if (t) await this.fire(t);
  }

  async completePut(index: number, ok: (i: number) => boolean): Promise<void> {
    const [put] = this.puts.splice(index % this.puts.length, 1);
    put!.resolve(Array.from({ length: put!.records }, (_, i) => (ok(i) ? { ok: true } : { ok: false, errorCode: 'ProvisionedThroughputExceededException' })));
    await settleMicrotasks();
  }

  private earliest(): [number, { dueAt: number; fire: () => void }] | undefined {
    let best: [number, { dueAt: number; fire: () => void }] | undefined;
    for (const t of this.timers) if (!best || t[1].dueAt < best[1].dueAt) best = t;
    return best;
  }

  private async fire([id, timer]: [number, { dueAt: number; fire: () => void }]): Promise<void> {
    this.timers.delete(id);
    this.wall = Math.max(this.wall, timer.dueAt);
    timer.fire();
    await settleMicrotasks();
  }
}

const settleMicrotasks = () => new Promise<void>((resolve) => setImmediate(resolve));

type Step = { kind: 'send'; key: number } | { kind: 'wait'; ms: number } | { kind: 'complete'; which: number; fails: boolean[] };
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('send' as const), key: fc.integer({ min: 0, max: 3 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 80 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('complete' as const), which: fc.nat(), fails: fc.array(fc.boolean(), { maxLength: 4 }) }) },
);

function producerOn(loop: SimulatedLoop, lingerMs: number, maxInFlightBatches: number, lingerEvents = 500) {
  const put = (records: unknown[]) => new Promise<PutResult[]>((resolve) => loop.puts.push({ records: records.length, resolve }));
  return new KinesisProducer(put, {
    batcher: { aggregate: true, compression: 'none', limits: KINESIS_LIMITS, backoff: { baseMs: 5, maxMs: 40 }, ...(lingerMs > 0 ? { linger: { ms: lingerMs, events: lingerEvents, bytes: 256 * 1024 } } : {}) },
    maxInFlightBatches,
    logger: pino({ level: 'silent' }),
    now: loop.now,
    random: () => 0.5,
    timers: loop,
  });
}

describe('KinesisProducer timing', () => {
  it('sends every queued change without a later one to push it, however the clock moves between readings and timers fire early', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { maxLength: 60 }),
        fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 8 }),
        fc.constantFrom(0, 1, 20, 50),
        fc.integer({ min: 1, max: 4 }),
        fc.constantFrom(2, 500), // a few queued events end the linger, or (as deployed) a request's worth
        async (steps, drift, earlyMs, lingerMs, maxInFlight, lingerEvents) => {
          const loop = new SimulatedLoop(drift, earlyMs);
          const producer = producerOn(loop, lingerMs, maxInFlight, lingerEvents);
          const acked = new Map<string, number[]>();
          const sent = new Map<string, number[]>();
          let seq = 0;
          for (const s of steps) {
            if (s.kind === 'send') {
              const key = `ws-${s.key}`;
              const n = seq++;
              sent.set(key, [...(sent.get(key) ?? []), n]);
              producer.send({ partitionKey: key, data: Buffer.from(JSON.stringify({ n })), onAck: () => acked.set(key, [...(acked.get(key) ?? []), n]) });
            } else if (s.kind === 'wait') await loop.advance(s.ms);
            else if (loop.puts.length > 0) await loop.completePut(s.which, (i) => !s.fails[i]);
          }
          // Nothing is sent from here on: Kinesis answers every request, and time passes.
          for (let i = 0; i < 10_000 && (loop.puts.length > 0 || loop.pendingTimers > 0); i++) {
            if (loop.puts.length > 0) await loop.completePut(0, () => true);
            else await loop.fireEarliest();
          }
          expect(producer.pendingEvents).toBe(0);
          expect(acked).toEqual(sent);
        },
      ),
    );
  });

  it('sends lingering changes when their timer fires a millisecond early and the clock ticks during the pump', async () => {
    // The case the property found: the timer fires 1 ms early, the pump reads the clock before
    // the changes are due and the rescheduling read after, so neither sent them nor timed them.
    const loop = new SimulatedLoop([0, 0, 0, 0, 1], [1, 0]);
    const producer = producerOn(loop, 50, 1);
    let acked = 0;
    for (let i = 0; i < 3; i++) producer.send({ partitionKey: 'ws-0', data: Buffer.from(`{"n":${i}}`), onAck: () => (acked += 1) });
    for (let i = 0; i < 10 && acked < 3; i++) {
      if (loop.puts.length > 0) await loop.completePut(0, () => true);
      else await loop.fireEarliest();
    }
    expect(acked).toBe(3);
    expect(loop.wall).toBeLessThanOrEqual(52);
  });
});
