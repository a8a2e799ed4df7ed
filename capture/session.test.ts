import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { Pgoutput } from 'pg-logical-replication';
import pino from 'pino';
import type { DeadLetterInput, DeadLetterStore } from '../lib/dlq.js';
import { formatLsn } from '../lib/event-id.js';
import type { EnqueueResult } from './batcher.js';
import { noopCaptureMetrics } from './metrics.js';
import type { ProducerItem } from './producer.js';
import { CaptureSession, type SessionOptions } from './session.js';
import { sleep, waitFor } from '../test/support/wait.js';

const WS = '7f1c2a4e-0000-4000-8000-000000000001';
const P = '7f1c2a4e-0000-4000-8000-0000000000aa';
const uuid = (n: number) => `7f1c2a4e-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const column = (name: string, key = false) => ({ name, flags: key ? 1 : 0, typeOid: 25, typeMod: -1, typeSchema: null, typeName: null, parser: (v: unknown) => v });
const tasks: Pgoutput.MessageRelation = {
  tag: 'relation',
  relationOid: 1,
  schema: 'public',
  name: 'tasks',
  replicaIdentity: 'index',
  columns: ['id', 'workspace_id', 'project_id', 'title', 'status'].map((c) => column(c, ['id', 'workspace_id', 'project_id'].includes(c))),
  keyColumns: ['id', 'workspace_id', 'project_id'],
};
/** Titles longer than this are "too large for a Kinesis record" in these tests. */
const MAX_DATA = 2000;

/** Transaction n: `rows` inserts, committed at LSN 0x1000 * (n + 1). */
function transaction(n: number, rows: readonly { big: boolean }[]): Pgoutput.Message[] {
  const lsn = formatLsn(BigInt(0x1000 * (n + 1)));
  const end = formatLsn(BigInt(0x1000 * (n + 1) + 0x10));
  return [
    { tag: 'begin', commitLsn: lsn, commitTime: 1_795_000_000_000_000n, xid: 700 + n },
    tasks,
    ...rows.map((r, i): Pgoutput.Message => ({ tag: 'insert', relation: tasks, new: { id: uuid(n * 100 + i + 1), workspace_id: WS, project_id: P, title: r.big ? 'x'.repeat(MAX_DATA) : `t${n}.${i}`, status: 'todo' } })),
    { tag: 'commit', flags: 0, commitLsn: lsn, commitEndLsn: end, commitTime: 1_795_000_000_000_000n },
  ];
}
const commitEnd = (n: number) => BigInt(0x1000 * (n + 1) + 0x10);

/** A producer that holds what it is sent until the test acknowledges it, refusing oversized data. */
class HeldProducer {
  readonly held: ProducerItem[] = [];
  sent = 0;
  get pendingEvents(): number {
    return this.held.length;
  }
  send(item: ProducerItem): EnqueueResult {
    if (item.data.length > MAX_DATA) return { ok: false, reason: 'RECORD_TOO_LARGE', message: 'too large' };
    this.sent += 1;
    this.held.push(item);
    return { ok: true };
  }
  ackAt(i: number): void {
    this.held.splice(i % this.held.length, 1)[0]!.onAck();
  }
}

/** A DLQ whose first `failures` puts fail. */
class FlakyDlq implements DeadLetterStore {
  readonly stored: DeadLetterInput[] = [];
  constructor(private failures: number) {}
  async put(entry: DeadLetterInput): Promise<string> {
    if (this.failures-- > 0) throw new Error('dynamodb unavailable');
    this.stored.push(entry);
    return String(this.stored.length);
  }
  list = async () => [];
  get = async () => undefined;
  markRedriven = async () => undefined;
}

function harness(opts: Partial<SessionOptions> = {}, dlqFailures = 0) {
  let clock = 1_000_000;
  const producer = new HeldProducer();
  const dlq = new FlakyDlq(dlqFailures);
  const log: string[] = [];
  const acknowledged: bigint[] = [];
  const recorded: bigint[] = [];
  const session = new CaptureSession(
    { start: 0x100n, source: '//taskflow/capture/taskflow', db: 'taskflow', maxBufferedEvents: 8, serverSilenceMs: 30_000, dlqBackoff: { baseMs: 0, maxMs: 0 }, ...opts },
    {
      producer,
      acknowledge: (lsn) => {
        // The server hears a position only after the record holds it.
        expect(recorded.at(-1) ?? 0x100n).toBeGreaterThanOrEqual(lsn);
        acknowledged.push(lsn);
      },
      backpressure: { pause: () => log.push('pause'), resume: () => log.push('resume') },
      dlq,
      recordConfirmed: async (lsn) => void recorded.push(lsn),
      observer: {},
      logger: pino({ level: 'silent' }),
      metrics: noopCaptureMetrics,
      now: () => clock,
      random: () => 0.5,
    },
  );
  return { session, producer, dlq, log, acknowledged, advance: (ms: number) => (clock += ms) };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));
/** The task id an item (or dead letter) carries. */
const keyIdOf = (x: { data?: Uint8Array; payload?: Uint8Array }) => (JSON.parse(Buffer.from((x.data ?? x.payload)!).toString()) as { data: { key: { id: string } } }).data.key.id;

describe('CaptureSession', () => {
  it('confirms the slot only past transactions whose every event Kinesis or the DLQ holds, whatever the order of acknowledgements', async () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant('tx' as const), rows: fc.array(fc.record({ big: fc.boolean() }), { minLength: 0, maxLength: 4 }) }),
      fc.record({ kind: fc.constant('ack' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 20_000 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 40 }), fc.nat({ max: 3 }), async (steps, dlqFailures) => {
        const h = harness({}, dlqFailures);
        const txRows: { big: boolean }[][] = [];
        const delivered = new Set<number>();
        let n = 0;
        for (const s of steps) {
          if (s.kind === 'tx') {
            const id = n++;
            for (const m of transaction(id, s.rows)) h.session.data(m);
            txRows.push(s.rows);
          } else if (s.kind === 'ack' && h.producer.held.length > 0) {
            h.producer.ackAt(s.at);
          } else if (s.kind === 'tick') {
            h.advance(s.ms);
            h.session.keepalive(0n); // the server is alive; it reports nothing new
            await h.session.tick();
          }
          await settle();
          // Which transactions are entirely delivered now: none of its events still held, its dead letters stored.
          const heldIds = new Set(h.producer.held.map(keyIdOf));
          const storedIds = new Set(h.dlq.stored.map(keyIdOf));
          txRows.forEach((rows, t) => {
            const ids = rows.map((r, i) => ({ id: uuid(t * 100 + i + 1), big: r.big }));
            if (ids.every(({ id, big }) => (big ? storedIds.has(id) : !heldIds.has(id)))) delivered.add(t);
          });
          // No confirmed position passes a transaction that is not delivered.
          for (const lsn of h.acknowledged) {
            for (let t = 0; t < n; t++) if (commitEnd(t) <= lsn) expect(delivered.has(t)).toBe(true);
          }
        }
        // Once everything is acknowledged and the DLQ has recovered, the slot reaches the last commit.
        while (h.producer.held.length > 0) h.producer.ackAt(0);
        const bigs = txRows.flat().filter((r) => r.big).length;
        await waitFor(() => h.dlq.stored.length >= bigs, 'every big row in the DLQ', 5_000, 1);
        h.advance(20_000);
        h.session.keepalive(0n);
        await h.session.tick();
        if (n > 0) expect(h.acknowledged.at(-1)).toBe(commitEnd(n - 1));
        // Acknowledged positions only move forward.
        expect([...h.acknowledged].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))).toEqual(h.acknowledged);
      }),
    );
  });

  it('pauses reading above the buffer limit, resumes only below half of it, and never pauses twice', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(fc.integer({ min: 1, max: 5 }).map((rows) => ({ rows })), fc.integer({ min: 1, max: 6 }).map((acks) => ({ acks }))), { maxLength: 30 }), async (steps) => {
        const h = harness({ maxBufferedEvents: 8 });
        let n = 0;
        for (const s of steps) {
          if ('rows' in s) {
            for (const m of transaction(n++, Array.from({ length: s.rows }, () => ({ big: false })))) h.session.data(m);
            if (h.producer.pendingEvents > 8) expect(h.session.isPaused).toBe(true);
          } else {
            for (let i = 0; i < s.acks && h.producer.held.length > 0; i++) h.producer.ackAt(0);
            const wasPaused = h.session.isPaused;
            h.advance(100);
            await h.session.tick();
            if (wasPaused) expect(h.session.isPaused).toBe(h.producer.pendingEvents >= 4);
          }
          // pause and resume alternate, starting with a pause
          h.log.forEach((e, i) => expect(e).toBe(i % 2 === 0 ? 'pause' : 'resume'));
        }
      }),
    );
  });

  it('ends a session whose server fell silent while it was reading, not while it had paused reading itself', async () => {
    const h = harness({ serverSilenceMs: 30_000, maxBufferedEvents: 2 });
    h.advance(29_000);
    expect(await h.session.tick()).toBe('ok');
    h.advance(2_000);
    expect(await h.session.tick()).toBe('silent');

    const paused = harness({ serverSilenceMs: 30_000, maxBufferedEvents: 2 });
    for (const m of transaction(0, [{ big: false }, { big: false }, { big: false }])) paused.session.data(m);
    expect(paused.session.isPaused).toBe(true);
    paused.advance(60_000);
    expect(await paused.session.tick()).toBe('ok'); // still paused: the silence is ours
    while (paused.producer.held.length > 0) paused.producer.ackAt(0);
    expect(await paused.session.tick()).toBe('ok'); // resumes, and the silence clock starts again
    expect(paused.session.isPaused).toBe(false);
    paused.advance(31_000);
    expect(await paused.session.tick()).toBe('silent');
  });

  it('keeps storing a dead letter until the store takes it, and gives up only when the session ends', async () => {
    const h = harness({ dlqBackoff: { baseMs: 1, maxMs: 1 } }, 3);
    for (const m of transaction(0, [{ big: true }])) h.session.data(m);
    await waitFor(() => h.dlq.stored.length > 0, 'the dead letter stored after the failures', 5_000, 1);
    expect(h.dlq.stored).toHaveLength(1);
    expect(h.dlq.stored[0]).toMatchObject({ source: 'capture', reason: 'RECORD_TOO_LARGE' });
    h.advance(20_000);
    await h.session.tick();
    expect(h.acknowledged.at(-1)).toBe(commitEnd(0));

    const ended = harness({ dlqBackoff: { baseMs: 1, maxMs: 1 } }, Infinity);
    for (const m of transaction(0, [{ big: true }])) ended.session.data(m);
    ended.session.end();
    // Asserting that nothing happens: with 1 ms backoffs, 20 ms would see many more attempts.
    await sleep(20);
    expect(ended.dlq.stored).toHaveLength(0);
    ended.advance(20_000);
    await ended.session.tick();
    expect(ended.acknowledged).toEqual([]); // never confirmed past the change it could not store
  });
});
