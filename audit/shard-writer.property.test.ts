// The writer's recovery rules, under any schedule fast-check finds: a shard's records with
// capture re-sends, workspaces interleaved in any order and malformed records, read in random batches by
// a writer that crashes before or after any segment write or checkpoint, and sometimes races a
// second holder of the lease. Afterwards the trail holds every valid change exactly once, in
// per-workspace order, on one unforked chain that verifies; each bad record has one dead letter.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { compareSequenceNumbers, type Checkpointer, type Position, type UserRecord } from '@taskflow/stream';
import { silentLogger } from '../lib/logger.js';
import { sampleEvent } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import { parseSegmentKey, type Segment, verifyShard } from './chain.js';
import { identityKey } from './identities.js';
import { Pseudonymizer } from './record.js';
import { AUDIT_REDRIVE_PREFIX, type AuditDeadLetter, AuditShardWriter } from './shard-writer.js';
import { MemoryAuditStore } from './store.js';

const SHARD = 'shardId-000000000001';
const WORKSPACES = ['11111111-1111-4111-8111-000000000001', '11111111-1111-4111-8111-000000000002', '11111111-1111-4111-8111-000000000003'];
const USERS = ['44444444-4444-4444-8444-000000000001', '44444444-4444-4444-8444-000000000002'];
const pseudonyms = new Pseudonymizer(Buffer.from('audit-property-test-key-0123456789'));

class Crash extends Error {}

interface Plan {
  /** Per change: its workspace, whether it names an actor, and whether it was written as task v1 (as across a schema change). */
  changes: { ws: number; actor: number | null; v1: boolean }[];
  /** Positions (into the stream so far) after which capture sends the last few changes again. */
  resends: { at: number; count: number }[];
  /** Indexes at which a malformed record is inserted. */
  malformed: number[];
  /** Adjacent swaps within the stream (reorder inside a batch). */
  swaps: number[];
  batchSizes: number[];
  /** Operation numbers (segment creates and checkpoints, counted over the run) to crash at, and whether before or after it. */
  crashes: { op: number; after: boolean }[];
  /** Batches before which a second holder of the lease processes the batch first. */
  races: number[];
  /** The writer's checkpoint interval, in batches (one clock tick each; 0: every batch). */
  checkpointEvery: number;
}

function buildStream(plan: Plan): { records: UserRecord[]; valid: Map<string, string> } {
  const events = plan.changes.map((c, i) => {
    const e = sampleEvent('task.updated', { workspaceId: WORKSPACES[c.ws]!, commitLsn: BigInt(0x10000 + i * 0x100), entityId: `33333333-3333-4333-8333-${String(i).padStart(12, '0')}`, ...(c.v1 ? { schemaVersion: 1 } : {}) });
    if (c.actor !== null) (e.data.source as unknown as Record<string, unknown>).actor = { userId: USERS[c.actor]!, via: 'test' };
    return e;
  });
  const valid = new Map(events.map((e) => [e.id, e.workspaceid]));
  const items: { data: Uint8Array; partitionKey: string }[] = [];
  events.forEach((e, i) => {
    items.push({ data: Buffer.from(JSON.stringify(e)), partitionKey: e.workspaceid });
    for (const r of plan.resends.filter((x) => x.at === i)) {
      for (const again of events.slice(Math.max(0, i + 1 - r.count), i + 1)) items.push({ data: Buffer.from(JSON.stringify(again)), partitionKey: again.workspaceid });
    }
  });
  for (const at of plan.malformed) items.splice(at % (items.length + 1), 0, { data: Buffer.from('{"not": "an event"'), partitionKey: WORKSPACES[0]! });
  // Capture keeps each workspace's records in order on the stream (one in flight per key); the
  // order across workspaces is free.
  for (const at of plan.swaps) {
    const i = at % Math.max(1, items.length - 1);
    if (i + 1 < items.length && items[i]!.partitionKey !== items[i + 1]!.partitionKey) [items[i], items[i + 1]] = [items[i + 1]!, items[i]!];
  }
  const records = items.map((it, i) => ({ shardId: SHARD, sequenceNumber: String(1_000_000 + i * 10), subSequenceNumber: 0, partitionKey: it.partitionKey, data: it.data }));
  return { records, valid };
}

async function run(plan: Plan): Promise<{ store: MemoryAuditStore; dlq: Map<string, AuditDeadLetter>; valid: Map<string, string>; malformed: number }> {
  const { records, valid } = buildStream(plan);
  const store = new MemoryAuditStore();
  const dlq = new Map<string, AuditDeadLetter>();
  let op = 0;
  const crashAt = new Map(plan.crashes.map((c) => [c.op, c.after]));
  const maybeCrash = (after: boolean) => {
    if (crashAt.get(op) === after) {
      crashAt.delete(op);
      throw new Crash(`crash ${after ? 'after' : 'before'} op ${op}`);
    }
  };
  const crashingStore = Object.assign(Object.create(store) as MemoryAuditStore, {
    async create(key: string, body: Uint8Array) {
      if (!key.startsWith('segments/')) return store.create(key, body);
      op += 1;
      maybeCrash(false);
      const created = await store.create(key, body);
      maybeCrash(true);
      return created;
    },
  });
  const known = new Set<string>();
  const deps = () => ({
    consumer: 'audit',
    store: crashingStore,
    deadLetters: { put: (l: AuditDeadLetter) => Promise.resolve(void dlq.set(`${l.origin.sequenceNumber}/${l.origin.subSequenceNumber}`, l)) },
    validate: validateEvent,
    pseudonyms,
    // Each process has its own cache: a crash forgets it.
    knownIdentities: known,
    logger: silentLogger,
    checkpointEveryMs: plan.checkpointEvery,
    now: () => new Date(clock),
  });
  let clock = 0;
  let checkpoint: (Position & { state?: string }) | undefined;
  const checkpointer = (last: UserRecord, crashes: boolean): Checkpointer => ({
    checkpoint(_position?: Position, state?: string) {
      if (crashes) {
        op += 1;
        maybeCrash(false);
      }
      if (!checkpoint || compareSequenceNumbers(last.sequenceNumber, checkpoint.sequenceNumber) >= 0) {
        checkpoint = { sequenceNumber: last.sequenceNumber, subSequenceNumber: last.subSequenceNumber, ...(state === undefined ? {} : { state }) };
      }
      if (crashes) maybeCrash(true);
      return Promise.resolve();
    },
  });
  const start = async () => {
    known.clear();
    const w = new AuditShardWriter(SHARD, deps());
    await w.initialize({ shardId: SHARD, ...(checkpoint ? { checkpoint } : {}), parentStates: [] });
    return w;
  };
  let writer = await start();
  let batchNo = 0;
  // As the shard worker reads: on after the last batch handed over, from the checkpoint after a crash.
  let delivered: { sequenceNumber: string } | undefined = checkpoint;
  for (let guard = 0; guard < 10_000; guard++) {
    const from = delivered ? records.findIndex((r) => compareSequenceNumbers(r.sequenceNumber, delivered!.sequenceNumber) > 0) : 0;
    if (from < 0 || from >= records.length) break;
    const size = plan.batchSizes[batchNo % plan.batchSizes.length]!;
    const batch = records.slice(from, from + size);
    const thisBatch = batchNo++;
    clock += 1;
    try {
      if (plan.races.includes(thisBatch)) await race(batch);
      await writer.processRecords({ records: batch, millisBehindLatest: 0 }, checkpointer(batch.at(-1)!, true));
      delivered = batch.at(-1)!;
    } catch (err) {
      if (!(err instanceof Crash)) throw err;
      writer = await start(); // a new process resumes from the last checkpoint
      delivered = checkpoint;
    }
  }
  return { store, dlq, valid, malformed: plan.malformed.length };

  async function race(batch: UserRecord[]): Promise<void> {
    // The lease was taken while this writer was paused: the new holder does this batch first.
    const other = await start();
    const segments = async () => (await store.list('segments/')).length;
    const before = await segments();
    await other.processRecords({ records: batch, millisBehindLatest: 0 }, checkpointer(batch.at(-1)!, false));
    const zombie = writer.processRecords({ records: batch, millisBehindLatest: 0 }, checkpointer(batch.at(-1)!, false));
    // Where the new holder wrote a segment, the paused one finds its index taken; it never writes a second copy.
    const outcome = await zombie.then(
      () => undefined,
      (err: unknown) => err,
    );
    if (outcome instanceof Crash) throw outcome;
    if ((await segments()) > before) expect(String(outcome)).toMatch(/written by another worker/);
    else expect(outcome).toBeUndefined();
  }
}

async function trail(store: MemoryAuditStore): Promise<Segment[]> {
  const keys = await store.list(`segments/${SHARD}/`);
  return Promise.all(keys.map(async (k) => JSON.parse(Buffer.from((await store.get(k))!).toString()) as Segment));
}

const planArb: fc.Arbitrary<Plan> = fc.record({
  changes: fc.array(fc.record({ ws: fc.integer({ min: 0, max: 2 }), actor: fc.option(fc.integer({ min: 0, max: 1 })), v1: fc.boolean() }), { minLength: 1, maxLength: 40 }),
  resends: fc.array(fc.record({ at: fc.nat({ max: 40 }), count: fc.integer({ min: 1, max: 6 }) }), { maxLength: 3 }),
  malformed: fc.array(fc.nat({ max: 60 }), { maxLength: 3 }),
  swaps: fc.array(fc.nat({ max: 60 }), { maxLength: 4 }),
  batchSizes: fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 5 }),
  crashes: fc.array(fc.record({ op: fc.integer({ min: 1, max: 30 }), after: fc.boolean() }), { maxLength: 5 }),
  races: fc.array(fc.nat({ max: 10 }), { maxLength: 2 }),
  checkpointEvery: fc.integer({ min: 0, max: 4 }),
});

describe('audit shard writer', () => {
  it('records every valid change once, in order, on one verifiable chain, through crashes, redeliveries and a racing holder', async () => {
    await fc.assert(
      fc.asyncProperty(planArb, async (plan) => {
        const { store, dlq, valid, malformed } = await run(plan);
        const segments = await trail(store);
        const stored = await Promise.all((await store.list(`segments/${SHARD}/`)).map(async (k) => ({ index: parseSegmentKey(k)!.index, bytes: (await store.get(k))! })));
        expect(verifyShard(SHARD, stored).finding).toBeUndefined();
        const ids = segments.flatMap((s) => s.records.map((r) => r.eventId));
        // Each valid change exactly once …
        expect([...ids].sort()).toEqual([...valid.keys()].sort());
        // … in event-id order per workspace.
        for (const ws of WORKSPACES) {
          const mine = segments.flatMap((s) => s.records.filter((r) => r.workspaceId === ws).map((r) => r.eventId));
          expect(mine).toEqual([...mine].sort());
        }
        expect(dlq.size).toBe(malformed);
        // Every actor resolves through the identity store; no record holds a user id.
        for (const r of segments.flatMap((s) => s.records)) {
          if (r.actor !== null) expect(await store.get(identityKey(r.actor))).toBeDefined();
          expect(JSON.stringify(r)).not.toContain(USERS[0]);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('takes an event redriven for the audit trail once, however often it is redriven', async () => {
    const store = new MemoryAuditStore();
    const writer = new AuditShardWriter(SHARD, { consumer: 'audit', store, deadLetters: { put: () => Promise.resolve() }, validate: validateEvent, pseudonyms, knownIdentities: new Set(), logger: silentLogger });
    await writer.initialize({ shardId: SHARD, parentStates: [] });
    const late = sampleEvent('task.updated', { workspaceId: WORKSPACES[0]!, commitLsn: 0x100n });
    const current = sampleEvent('task.updated', { workspaceId: WORKSPACES[0]!, commitLsn: 0x900n });
    const rec = (e: object, seq: number, key: string): UserRecord => ({ shardId: SHARD, sequenceNumber: String(seq), subSequenceNumber: 0, partitionKey: key, data: Buffer.from(JSON.stringify(e)) });
    const cp: Checkpointer = { checkpoint: () => Promise.resolve() };
    await writer.processRecords({ records: [rec(current, 10, WORKSPACES[0]!)], millisBehindLatest: 0 }, cp);
    // Below the workspace's mark: as a plain record (another consumer's redrive) it is a duplicate; as the audit trail's redrive it is taken, once.
    await writer.processRecords({ records: [rec(late, 20, `redrive:${WORKSPACES[0]}`), rec(late, 30, `${AUDIT_REDRIVE_PREFIX}${WORKSPACES[0]}`), rec(late, 40, `${AUDIT_REDRIVE_PREFIX}${WORKSPACES[0]}`)], millisBehindLatest: 0 }, cp);
    await writer.processRecords({ records: [rec(late, 50, `${AUDIT_REDRIVE_PREFIX}${WORKSPACES[0]}`)], millisBehindLatest: 0 }, cp);
    const records = (await trail(store)).flatMap((s) => s.records);
    expect(records.map((r) => [r.eventId, r.redriven ?? false])).toEqual([
      [current.id, false],
      [late.id, true],
    ]);
  });
});
