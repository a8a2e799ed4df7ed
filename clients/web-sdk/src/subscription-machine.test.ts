import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  defaultSubscriptionConfig,
  initialState,
  nextDeadline,
  transition,
  type SubscriptionConfig,
  type SubscriptionEffect,
  type SubscriptionEvent,
  type SubscriptionState,
} from './subscription-machine.js';
import type { Change, ChangeEvent, FullChange } from './types.js';

const config: SubscriptionConfig = { ...defaultSubscriptionConfig, reorderWindowMs: 100, maxBuffered: 20, replayPageSize: 7 };

function event(seq: number): ChangeEvent {
  return {
    specversion: '1.0',
    id: `ev-${seq}`,
    source: '//taskflow/test',
    subject: `tasks/${seq}`,
    dataschema: 'taskflow://schemas/task/v1',
    type: 'taskflow.task.updated',
    time: '2026-11-26T12:00:00Z',
    workspaceid: 'ws',
    projectid: 'p',
    data: { op: 'u', table: 'tasks', key: { id: String(seq) }, before: null, after: {}, changed: [], source: { db: 'taskflow', lsn: '0/1', xid: 1, txIndex: 0, txSize: 1, snapshot: false } },
  };
}
const full = (seq: number): FullChange => ({ seq, mode: 'full', event: event(seq) });
const thin = (seq: number): Change => ({ seq, mode: 'thin', id: `ev-${seq}`, type: 'taskflow.task.updated', time: 't', key: { id: seq } });
const changeId = (c: Change): string => (c.mode === 'full' ? c.event.id : c.id);

/** Drives the machine like the adapter does and records what the application sees. */
class Harness {
  state: SubscriptionState;
  log: Array<{ kind: 'deliver'; change: Change } | { kind: 'resync'; latestSeq: number; lastDelivered: number }> = [];
  fetch: Extract<SubscriptionEffect, { type: 'fetch' }> | null = null;
  failed = false;
  resubscribes = 0;
  statuses: string[] = [];

  constructor(fromSeq?: number) {
    this.state = initialState(fromSeq);
  }

  send(e: SubscriptionEvent): void {
    const { state, effects } = transition(this.state, e, config);
    this.state = state;
    for (const effect of effects) {
      switch (effect.type) {
        case 'deliver':
          this.log.push({ kind: 'deliver', change: effect.change });
          break;
        case 'resync':
          this.log.push({ kind: 'resync', latestSeq: effect.latestSeq, lastDelivered: effect.lastDelivered });
          break;
        case 'fetch':
          if (this.fetch !== null) throw new Error('two replay requests in flight');
          this.fetch = effect;
          break;
        case 'status':
          this.statuses.push(effect.status);
          break;
        case 'failed':
          this.failed = true;
          break;
        case 'resubscribe':
          this.resubscribes += 1;
          break;
      }
    }
  }

  delivered(): number[] {
    return this.log.flatMap((entry) => (entry.kind === 'deliver' ? [entry.change.seq] : []));
  }
}

describe('subscription machine: examples', () => {
  it('delivers in order through a reorder buffer and drops duplicates', () => {
    const h = new Harness(1);
    h.send({ type: 'subscribed', now: 0 });
    expect(h.fetch).toMatchObject({ after: 0 });
    h.send({ type: 'replayOk', requestId: h.fetch!.requestId, changes: [], latestSeq: 0, now: 1 });
    h.fetch = null;
    expect(h.state.status).toBe('live');
    h.send({ type: 'message', changes: [full(2), full(3)], now: 2 });
    expect(h.delivered()).toEqual([]);
    h.send({ type: 'message', changes: [thin(1)], now: 3 });
    h.send({ type: 'message', changes: [full(2), full(1)], now: 4 });
    expect(h.delivered()).toEqual([1, 2, 3]);
    expect(h.log[0]).toMatchObject({ change: { mode: 'thin' } });
    expect(h.fetch).toBeNull();
  });

  it('fetches a hole that outlives the reorder window, and nothing earlier', () => {
    const h = new Harness(1);
    h.send({ type: 'subscribed', now: 0 });
    h.send({ type: 'replayOk', requestId: h.fetch!.requestId, changes: [], latestSeq: 0, now: 1 });
    h.fetch = null;
    h.send({ type: 'message', changes: [full(3)], now: 10 });
    expect(nextDeadline(h.state, config)).toBe(110);
    h.send({ type: 'tick', now: 109 });
    expect(h.fetch).toBeNull();
    h.send({ type: 'tick', now: 110 });
    expect(h.fetch).toMatchObject({ after: 0 });
    expect(h.state.status).toBe('recovering');
    h.send({ type: 'replayOk', requestId: h.fetch!.requestId, changes: [full(1), full(2), full(3)], latestSeq: 3, now: 120 });
    expect(h.delivered()).toEqual([1, 2, 3]);
    expect(h.state.status).toBe('live');
  });

  it('resyncs when the replay API no longer reaches back, then continues after latestSeq', () => {
    const h = new Harness(5);
    h.send({ type: 'subscribed', now: 0 });
    h.send({ type: 'replayTooOld', requestId: h.fetch!.requestId, oldestSeq: 50, latestSeq: 80, now: 1 });
    expect(h.log).toEqual([{ kind: 'resync', lastDelivered: 4, latestSeq: 80 }]);
    h.send({ type: 'message', changes: [full(80), full(81)], now: 2 });
    expect(h.delivered()).toEqual([81]);
  });

  it('on a 410 with a stale latestSeq, continues after what the trim proves and what was delivered', () => {
    // found by the model test: the request went out before seq 1 and 2 were committed, seq 1
    // arrived live, then both were trimmed; the answer's latestSeq (0) predates all of it
    const h = new Harness(1);
    h.send({ type: 'subscribed', now: 0 });
    const request = h.fetch!;
    h.send({ type: 'message', changes: [full(1)], now: 1 });
    h.send({ type: 'replayTooOld', requestId: request.requestId, oldestSeq: 3, latestSeq: 0, now: 2 });
    expect(h.log).toEqual([
      { kind: 'deliver', change: full(1) },
      { kind: 'resync', lastDelivered: 1, latestSeq: 2 },
    ]);
  });

  it('resyncs on a 410 even when its oldestSeq is below the position (a hole in the changelog)', () => {
    const h = new Harness(6);
    h.send({ type: 'subscribed', now: 0 });
    h.send({ type: 'replayTooOld', requestId: h.fetch!.requestId, oldestSeq: 1, latestSeq: 10, now: 1 });
    expect(h.log).toEqual([{ kind: 'resync', lastDelivered: 5, latestSeq: 10 }]);
    expect(h.state.status).toBe('live');
  });

  it('skips the resync when live messages carried the position into the changelog meanwhile', () => {
    const h = new Harness(3);
    h.send({ type: 'subscribed', now: 0 });
    const request = h.fetch!;
    h.fetch = null;
    h.send({ type: 'message', changes: [full(3), full(4)], now: 1 });
    h.send({ type: 'replayTooOld', requestId: request.requestId, oldestSeq: 4, latestSeq: 9, now: 2 });
    expect(h.log.filter((e) => e.kind === 'resync')).toEqual([]);
    expect(h.fetch).toMatchObject({ after: 4 });
  });

  it('stops on 403 and retries with a refreshed token after 401', () => {
    const h = new Harness(1);
    h.send({ type: 'subscribed', now: 0 });
    h.send({ type: 'replayFailed', requestId: h.fetch!.requestId, reason: 'unauthorized', random: 0.5, now: 1 });
    h.fetch = null;
    expect(h.state.status).toBe('recovering');
    h.send({ type: 'tick', now: 1 + nextDeadline(h.state, config)! - 1 });
    expect(h.fetch).toMatchObject({ refreshToken: true });
    h.send({ type: 'replayFailed', requestId: h.fetch!.requestId, reason: 'forbidden', random: 0, now: 2 });
    expect(h.failed).toBe(true);
    expect(h.state.status).toBe('offline');
    h.send({ type: 'subscribed', now: 3 });
    expect(h.state.status).toBe('offline');
  });

  it('asks the replay API when the broker refuses the topic: a 403 ends the subscription', () => {
    const h = new Harness(1);
    h.send({ type: 'rejected', now: 0, random: 0.5 });
    expect(h.failed).toBe(false);
    expect(h.fetch).toMatchObject({ after: 0, limit: 1 });
    h.send({ type: 'replayFailed', requestId: h.fetch!.requestId, reason: 'forbidden', now: 5, random: 0 });
    expect(h.failed).toBe(true);
    expect(h.statuses).toEqual(['offline']);
  });

  it('subscribes again, with a growing backoff, when the replay API still grants access', () => {
    const h = new Harness(1);
    const retry = config.retry;
    let now = 0;
    for (let refusal = 0; refusal < 3; refusal += 1) {
      h.send({ type: 'rejected', now, random: 0.999 });
      const probe = h.fetch!;
      h.fetch = null;
      h.send({ type: 'replayOk', requestId: probe.requestId, changes: [full(1)], latestSeq: 1, now: (now += 10) });
      expect(h.delivered()).toEqual([]); // a probe only answers "may I?"
      const due = nextDeadline(h.state, config)!;
      expect(due - now).toBe(Math.floor(Math.min(retry.maxMs, retry.baseMs * 2 ** refusal) * 0.999));
      h.send({ type: 'tick', now: due - 1 });
      expect(h.resubscribes).toBe(refusal);
      h.send({ type: 'tick', now: (now = due) });
      expect(h.resubscribes).toBe(refusal + 1);
    }
    h.send({ type: 'subscribed', now });
    expect(h.state.rejections).toBe(0);
    expect(h.fetch).toMatchObject({ after: 0, limit: config.replayPageSize }); // the catch-up
  });

  it('asks the replay API once more a while after each SUBACK, staying live meanwhile', () => {
    const h = new Harness(1);
    h.send({ type: 'subscribed', now: 0 });
    h.send({ type: 'replayOk', requestId: h.fetch!.requestId, changes: [], latestSeq: 0, now: 5 });
    h.fetch = null;
    expect(h.state.status).toBe('live');
    expect(nextDeadline(h.state, config)).toBe(config.confirmAfterSubscribeMs);
    h.send({ type: 'tick', now: config.confirmAfterSubscribeMs });
    expect(h.fetch).toMatchObject({ after: 0 });
    h.send({ type: 'replayOk', requestId: h.fetch!.requestId, changes: [full(1)], latestSeq: 1, now: config.confirmAfterSubscribeMs + 5 });
    expect(h.delivered()).toEqual([1]);
    expect(nextDeadline(h.state, config)).toBeNull();
  });

  it('catches up after every resubscription, even with a request from before the cut in flight', () => {
    const h = new Harness(1);
    h.send({ type: 'subscribed', now: 0 });
    const first = h.fetch!;
    h.fetch = null;
    h.send({ type: 'connection', status: 'offline', now: 1 });
    expect(h.state.status).toBe('offline');
    h.send({ type: 'subscribed', now: 2 });
    expect(h.fetch).toBeNull(); // one request at a time
    h.send({ type: 'replayOk', requestId: first.requestId, changes: [full(1)], latestSeq: 1, now: 3 });
    expect(h.fetch).toMatchObject({ after: 1 }); // the old answer does not cover the new subscription
  });
});

// ---- model-based property test -------------------------------------------------------------

type Op =
  | { op: 'commit'; n: number; split: boolean; thin: boolean }
  | { op: 'deliver'; pick: number; keep: boolean }
  | { op: 'resend'; pick: number }
  | { op: 'drop'; pick: number }
  | { op: 'disconnect'; status: 'connecting' | 'offline' }
  | { op: 'subscribe' }
  | { op: 'reject'; random: number }
  | { op: 'answer'; kind: 'ok' | 'short' | 'fail' | 'unauthorized'; random: number }
  | { op: 'trim'; n: number }
  | { op: 'tick'; dt: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('commit' as const), n: fc.integer({ min: 1, max: 4 }), split: fc.boolean(), thin: fc.boolean() }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('deliver' as const), pick: fc.nat(), keep: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('resend' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('drop' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('disconnect' as const), status: fc.constantFrom('connecting' as const, 'offline' as const) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('subscribe' as const) }) },
  // The broker refuses the topic for a reason other than access (the model never revokes it).
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reject' as const), random: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('answer' as const),
      kind: fc.constantFrom('ok' as const, 'short' as const, 'fail' as const, 'unauthorized' as const),
      random: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('trim' as const), n: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('tick' as const), dt: fc.integer({ min: 1, max: 400 }) }) },
);

/** The server side: a committed history (seq 1..committed), a changelog that may be trimmed, a broker. */
class World {
  now = 0;
  oldest = 1;
  connected = false;
  inflight: Change[][] = [];
  published: Change[][] = [];
  constructor(public committed: number, public h: Harness) {}

  /** `committed` when the outstanding request was issued: the server reads somewhere between then and its answer. */
  committedAtRequest = 0;

  send(e: SubscriptionEvent): void {
    const before = this.h.fetch;
    this.h.send(e);
    if (before === null && this.h.fetch !== null) this.committedAtRequest = this.committed;
  }

  answer(kind: 'ok' | 'short' | 'fail' | 'unauthorized', random: number): void {
    const request = this.h.fetch;
    if (request === null) return;
    this.h.fetch = null;
    // the history as the server saw it when it read the changelog
    const seen = this.committedAtRequest + Math.floor(random * (this.committed - this.committedAtRequest));
    const { requestId, after } = request;
    if (kind === 'fail' || kind === 'unauthorized') {
      this.send({ type: 'replayFailed', requestId, reason: kind === 'fail' ? 'transient' : 'unauthorized', random, now: this.now });
    } else if (after + 1 < this.oldest) {
      this.send({ type: 'replayTooOld', requestId, oldestSeq: this.oldest, latestSeq: seen, now: this.now });
    } else {
      const limit = kind === 'short' ? Math.min(2, request.limit) : request.limit;
      const changes: FullChange[] = [];
      for (let seq = after + 1; seq <= Math.min(seen, after + limit); seq += 1) changes.push(full(seq));
      this.send({ type: 'replayOk', requestId, changes, latestSeq: seen, now: this.now });
    }
  }

  apply(op: Op): void {
    const pick = <T>(list: T[], i: number): number => (list.length === 0 ? -1 : i % list.length);
    switch (op.op) {
      case 'commit': {
        const seqs = Array.from({ length: op.n }, (_, i) => this.committed + 1 + i);
        this.committed += op.n;
        const make = (seq: number): Change => (op.thin ? thin(seq) : full(seq));
        const batches = op.split && seqs.length > 1 ? [seqs.slice(0, 1), seqs.slice(1)] : [seqs];
        for (const batch of batches) {
          const message = batch.map(make);
          this.published.push(message);
          if (this.connected) this.inflight.push(message); // published while cut off: never delivered
        }
        break;
      }
      case 'deliver': {
        const i = pick(this.inflight, op.pick);
        if (i < 0 || !this.connected) break;
        const message = this.inflight[i]!;
        if (!op.keep) this.inflight.splice(i, 1); // keep: QoS 1 will deliver it again
        this.send({ type: 'message', changes: message, now: this.now });
        break;
      }
      case 'resend': {
        const i = pick(this.published, op.pick);
        if (i >= 0 && this.connected) this.inflight.push(this.published[i]!);
        break;
      }
      case 'drop': {
        const i = pick(this.inflight, op.pick);
        if (i >= 0) this.inflight.splice(i, 1);
        break;
      }
      case 'disconnect':
        this.connected = false;
        this.inflight = [];
        this.send({ type: 'connection', status: op.status, now: this.now });
        break;
      case 'subscribe':
        if (this.connected) break;
        this.connected = true;
        this.send({ type: 'subscribed', now: this.now });
        break;
      case 'reject':
        if (this.connected) break;
        this.send({ type: 'rejected', now: this.now, random: op.random });
        break;
      case 'answer':
        this.answer(op.kind, op.random);
        break;
      case 'trim':
        this.oldest = Math.min(this.committed + 1, this.oldest + op.n);
        break;
      case 'tick':
        this.now += op.dt;
        this.send({ type: 'tick', now: this.now });
        break;
    }
  }

  /** Heal everything: a reconnect, reliable delivery and replay, timers run out. */
  quiesce(): void {
    this.apply({ op: 'disconnect', status: 'connecting' });
    this.apply({ op: 'subscribe' });
    if (this.h.state.position === null) {
      this.apply({ op: 'commit', n: 1, split: false, thin: false });
    }
    for (let round = 0; round < 1000; round += 1) {
      if (this.h.fetch !== null) {
        this.answer('ok', 0); // the stalest view a server could give
        continue;
      }
      if (this.inflight.length > 0) {
        this.apply({ op: 'deliver', pick: 0, keep: false });
        continue;
      }
      const deadline = nextDeadline(this.h.state, config);
      if (deadline === null) return;
      this.now = Math.max(this.now, deadline);
      this.send({ type: 'tick', now: this.now });
    }
    throw new Error('did not settle');
  }
}

/** The application's view: runs of consecutive seqs, each started by the subscription or a resync. */
function checkHistory(h: Harness, fromSeq: number | undefined): number {
  let expected: number | undefined = fromSeq;
  for (const entry of h.log) {
    if (entry.kind === 'resync') {
      expect(expected === undefined || entry.latestSeq >= expected - 1).toBe(true);
      expected = entry.latestSeq + 1;
      continue;
    }
    expected ??= entry.change.seq;
    expect(entry.change.seq).toBe(expected);
    expect(changeId(entry.change)).toBe(`ev-${expected}`);
    expected += 1;
  }
  return (expected ?? 1) - 1;
}

describe('subscription machine: model-based', () => {
  it('for any schedule, the application sees the committed history once, in order, or a resync', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 6 }),
        fc.option(fc.integer({ min: 1, max: 7 }), { nil: undefined }),
        fc.array(opArb, { maxLength: 120 }),
        (initiallyCommitted, fromSeqRaw, ops) => {
          const fromSeq = fromSeqRaw === undefined ? undefined : Math.min(fromSeqRaw, initiallyCommitted + 1);
          const h = new Harness(fromSeq);
          const world = new World(initiallyCommitted, h);
          for (const op of ops) {
            world.apply(op);
            checkHistory(h, fromSeq);
            if (world.connected && h.state.position !== null && h.state.status === 'live') {
              // live means: nothing known to be missing and no request outstanding
              expect(h.fetch).toBeNull();
            }
          }
          world.quiesce();
          const last = checkHistory(h, fromSeq);
          expect(last).toBe(world.committed);
          expect(h.state.status).toBe('live');
          expect(h.state.buffer.size).toBe(0);
          // a resync only ever happens because the changelog was trimmed
          if (world.oldest === 1) expect(h.log.some((e) => e.kind === 'resync')).toBe(false);
        },
      ),
      { numRuns: 400 },
    );
  });
});
