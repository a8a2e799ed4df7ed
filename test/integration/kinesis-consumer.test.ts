// The reusable Kinesis consumer against the local stack's kinesalite and dynalite: sharing a
// stream between workers, crash takeover, restart from checkpoints, resharding, record forms.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeStreamSummaryCommand, type KinesisClient, MergeShardsCommand, PutRecordsCommand, SplitShardCommand } from '@aws-sdk/client-kinesis';
import { Registry } from 'prom-client';
import { type Consumer, type ConsumerOptions, type Position, type ShardInit, type ShardProcessor, type UserRecord, createConsumer, listShards } from '@taskflow/stream';
import { encodeAggregated, encodePlain } from '@taskflow/stream/codec';
import { createTestStream, createTestTables, dynamoClient, kinesisClient } from '../support/stack.js';
import { sleep, waitFor } from '../support/wait.js';

// Long enough that a renewal survives a busy shared machine (dynalite calls took ~1 s under load).
const FAILOVER_MS = 3000;

let kinesis: KinesisClient;
let dynamo: DynamoDBClient;
let leaseTable: string;

beforeAll(async () => {
  kinesis = kinesisClient();
  dynamo = dynamoClient();
  ({ leases: leaseTable } = (await createTestTables('kc', ['leases'])) as { leases: string });
});

// Consumers still running when a test ends (a failed assertion) are stopped, or jest never exits.
const liveConsumers: Consumer[] = [];
afterEach(async () => {
  await Promise.all(liveConsumers.splice(0).map((c) => c.stop('abandon')));
});

afterAll(() => {
  kinesis.destroy();
  dynamo.destroy();
});

interface Delivery {
  worker: string;
  shardId: string;
  sequenceNumber: string;
  subSequenceNumber: number;
  partitionKey: string;
  body: string;
  decodeError?: string;
}

/** Everything the processors of one test saw, in the order they saw it. */
class Journal {
  readonly deliveries: Delivery[] = [];
  readonly inits: { worker: string; init: ShardInit }[] = [];
  readonly shutdowns: { worker: string; shardId: string; reason: string }[] = [];
  /** Last successful checkpoint per worker and shard. */
  readonly checkpoints = new Map<string, Position & { state?: string }>();

  /** A processor that checkpoints after each batch with state = records seen on this shard's lineage. */
  processor(worker: string, opts: { checkpointAt?: (records: UserRecord[]) => Position | 'skip' } = {}) {
    return (shardId: string): ShardProcessor => {
      let count = 0;
      return {
        initialize: async (init) => {
          this.inits.push({ worker, init });
          const state = init.checkpoint?.state ?? init.parentStates.find((p) => p.state)?.state;
          count = state ? (JSON.parse(state) as { count: number }).count : 0;
        },
        processRecords: async (batch, checkpointer) => {
          for (const r of batch.records) {
            this.deliveries.push({
              worker,
              shardId,
              sequenceNumber: r.sequenceNumber,
              subSequenceNumber: r.subSequenceNumber,
              partitionKey: r.partitionKey,
              body: Buffer.from(r.data).toString(),
              ...(r.decodeError ? { decodeError: r.decodeError.code } : {}),
            });
          }
          count += batch.records.length;
          const at = opts.checkpointAt?.(batch.records);
          if (at === 'skip') return;
          const last = batch.records.at(-1)!;
          const position = at ?? { sequenceNumber: last.sequenceNumber, subSequenceNumber: last.subSequenceNumber };
          const state = JSON.stringify({ count });
          await checkpointer.checkpoint(position, state);
          this.checkpoints.set(`${worker}|${shardId}`, { ...position, state });
        },
        shutdown: async (reason, checkpointer) => {
          this.shutdowns.push({ worker, shardId, reason });
          if (reason === 'shutdown' && checkpointer) await checkpointer.checkpoint(undefined, JSON.stringify({ count }));
        },
      };
    };
  }

  bodies(worker?: string): string[] {
    return this.deliveries.filter((d) => !worker || d.worker === worker).map((d) => d.body);
  }
}

function consumer(name: string, streamName: string, workerId: string, processor: ConsumerOptions['processor'], extra: Partial<ConsumerOptions> = {}): Consumer {
  const c = createConsumer({
    name,
    streamName,
    kinesis,
    dynamo,
    leaseTable,
    workerId,
    processor,
    failoverTimeMs: FAILOVER_MS,
    pollIntervalMs: 25,
    minCallSpacingMs: 10,
    shardSyncIntervalMs: 1000,
    ...extra,
  });
  liveConsumers.push(c);
  return c;
}

/** Puts plain records `{pk, n}` for n in [from, to) on each partition key; returns their bodies. */
async function putPlain(streamName: string, keys: string[], from: number, to: number): Promise<string[]> {
  const bodies: string[] = [];
  const entries = [];
  for (let n = from; n < to; n += 1) {
    for (const pk of keys) {
      const body = JSON.stringify({ pk, n });
      bodies.push(body);
      entries.push({ PartitionKey: pk, Data: encodePlain(Buffer.from(body)) });
    }
  }
  for (let i = 0; i < entries.length; i += 500) {
    const out = await kinesis.send(new PutRecordsCommand({ StreamName: streamName, Records: entries.slice(i, i + 500) }));
    expect(out.FailedRecordCount ?? 0).toBe(0);
  }
  return bodies;
}

async function waitActive(streamName: string): Promise<void> {
  await waitFor(async () => {
    const { StreamDescriptionSummary: s } = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: streamName }));
    return s?.StreamStatus === 'ACTIVE';
  }, 'stream ACTIVE');
}

const keys = (n: number, prefix = 'ws') => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const missing = (expected: string[], got: string[]) => {
  const seen = new Set(got);
  return expected.filter((b) => !seen.has(b));
};

/** Per partition key, the n values in delivery order (duplicates removed, first seen kept). */
function orderByKey(deliveries: Delivery[]): Map<string, number[]> {
  const seen = new Set<string>();
  const out = new Map<string, number[]>();
  for (const d of deliveries) {
    if (seen.has(d.body)) continue;
    seen.add(d.body);
    const { n } = JSON.parse(d.body) as { n: number };
    out.set(d.partitionKey, [...(out.get(d.partitionKey) ?? []), n]);
  }
  return out;
}

describe('kinesis consumer on kinesalite + dynalite', () => {
  it('splits a 4-shard stream between two workers, and takes over from one that crashes without loss', async () => {
    const stream = await createTestStream('kc-share', 4);
    const journal = new Journal();
    const registry = new Registry();
    const a = consumer('share', stream, 'worker-a', journal.processor('a'), { metrics: registry });
    const b = consumer('share', stream, 'worker-b', journal.processor('b'), { metrics: registry });
    await a.start();
    expect(a.heldShards()).toHaveLength(4);
    await b.start();
    const balanceStarted = Date.now();
    await waitFor(() => a.heldShards().length === 2 && b.heldShards().length === 2, 'a 2/2 split', 15_000, 25);
    const balanceMs = Date.now() - balanceStarted;

    const before = await putPlain(stream, keys(40), 0, 10);
    await waitFor(() => missing(before, journal.bodies()).length === 0, 'all records before the crash');
    // Each shard went to exactly one worker while both lived.
    const shardOwners = new Map<string, Set<string>>();
    for (const d of journal.deliveries) shardOwners.set(d.shardId, (shardOwners.get(d.shardId) ?? new Set()).add(d.worker));
    expect([...shardOwners.values()].every((owners) => owners.size === 1)).toBe(true);
    expect(new Set([...shardOwners.values()].flatMap((o) => [...o]))).toEqual(new Set(['a', 'b']));

    // Crash: a stops reading and renewing, writes nothing.
    const aShards = a.heldShards();
    const aShutdownsBefore = journal.shutdowns.filter((s) => s.worker === 'a').length; // leases b stole while balancing
    await a.stop('abandon');
    const crashedAt = Date.now();
    const after = await putPlain(stream, keys(40), 10, 20);
    await waitFor(() => b.heldShards().length === 4, 'b to hold every shard', 20_000);
    const takeoverMs = Date.now() - crashedAt;
    await waitFor(() => missing([...before, ...after], journal.bodies()).length === 0, 'all records after the crash');

    // At least once, restarting right after a's last checkpoint: b re-delivers nothing a had checkpointed.
    for (const shardId of aShards) {
      const cp = journal.checkpoints.get(`a|${shardId}`);
      const redelivered = journal.deliveries.filter((d) => d.worker === 'b' && d.shardId === shardId && journal.bodies('a').includes(d.body));
      for (const d of redelivered) expect(cp === undefined || BigInt(d.sequenceNumber) > BigInt(cp.sequenceNumber)).toBe(true);
    }
    // a may have crashed up to failover/3 after its last renewal, which b saw: b waits failover from then.
    expect(takeoverMs).toBeGreaterThanOrEqual((FAILOVER_MS * 2) / 3 - 50);
    expect(journal.shutdowns.filter((s) => s.worker === 'a')).toHaveLength(aShutdownsBefore); // a crashed: no shutdown calls
    for (const order of orderByKey(journal.deliveries).values()) expect(order).toEqual([...Array(20).keys()]);

    const metric = async (name: string) => (await registry.getMetricsAsJSON()).find((m) => m.name === name)?.values ?? [];
    const total = async (name: string) => (await metric(name)).reduce((s, v) => s + v.value, 0);
    // Counted once processRecords returns, a moment after the journal saw the records.
    await waitFor(async () => (await total('kinesis_consumer_records_processed_total')) >= 800, 'records counted', 2000);
    expect(await total('kinesis_consumer_lease_takeovers_total')).toBeGreaterThanOrEqual(4); // 2 steals + 2 after the crash
    expect(await total('kinesis_consumer_checkpoints_total')).toBeGreaterThan(0);
    expect((await metric('kinesis_consumer_leases_held')).find((v) => v.labels.worker === 'worker-b')?.value).toBe(4);
    expect((await metric('kinesis_consumer_millis_behind_latest')).length).toBe(4);
    console.log(`kinesis-consumer: balanced 4 shards over 2 workers in ${balanceMs} ms; takeover after crash in ${takeoverMs} ms (failover ${FAILOVER_MS} ms)`);
    await b.stop();
  }, 40_000);

  it('restarts from its checkpoint, handing back the stored state, and keeps consumers apart by name', async () => {
    const stream = await createTestStream('kc-restart', 2);
    const journal = new Journal();
    const first = await putPlain(stream, keys(10), 0, 5);
    const c1 = consumer('restart', stream, 'w1', journal.processor('first'));
    await c1.start();
    await waitFor(() => missing(first, journal.bodies()).length === 0, 'first records');
    await c1.stop(); // graceful: checkpoints and releases
    expect(journal.shutdowns.map((s) => s.reason)).toEqual(['shutdown', 'shutdown']);

    const second = await putPlain(stream, keys(10), 5, 8);
    const c2 = consumer('restart', stream, 'w2', journal.processor('second'));
    await c2.start(); // released leases are taken at once, no failover wait
    expect(c2.heldShards()).toHaveLength(2);
    await waitFor(() => missing(second, journal.bodies('second')).length === 0, 'second records');
    expect(journal.bodies('second').sort()).toEqual(second.sort()); // nothing before the checkpoint again

    const inits = journal.inits.filter((i) => i.worker === 'second');
    const counts = inits.map((i) => (JSON.parse(i.init.checkpoint!.state!) as { count: number }).count);
    expect(counts.reduce((s, c) => s + c, 0)).toBe(first.length);
    await c2.stop();

    // Another consumer name on the same stream and table has its own leases: it reads everything.
    const other = consumer('restart-other', stream, 'w3', journal.processor('other'));
    await other.start();
    await waitFor(() => missing([...first, ...second], journal.bodies('other')).length === 0, 'other consumer reads from the start');
    await other.stop();
  }, 30_000);

  it('creates its lease table when asked, and refuses to start on a stream that does not exist', async () => {
    const stream = await createTestStream('kc-table', 1);
    const journal = new Journal();
    const bodies = await putPlain(stream, keys(3), 0, 2);
    const ownTable = `kc-own-leases-${Date.now()}`;
    const c = consumer('own-table', stream, 'w', journal.processor('w'), { leaseTable: ownTable, createLeaseTable: true });
    await c.start();
    await waitFor(() => missing(bodies, journal.bodies()).length === 0, 'records through a fresh lease table');
    await c.stop();
    await expect(consumer('nowhere', `${stream}-missing`, 'w', journal.processor('x')).start()).rejects.toThrow(/not found|does not exist/i);
  }, 20_000);

  it('reads a parent shard to its end before its children, through a split and a merge', async () => {
    const stream = await createTestStream('kc-reshard', 1);
    const journal = new Journal();
    const c = consumer('reshard', stream, 'w', journal.processor('w'));
    await c.start();
    const phase1 = await putPlain(stream, keys(8), 0, 5);
    await waitFor(() => missing(phase1, journal.bodies()).length === 0, 'phase 1');

    const [root] = await listShards(kinesis, stream);
    await kinesis.send(new SplitShardCommand({ StreamName: stream, ShardToSplit: root!.shardId, NewStartingHashKey: (2n ** 127n).toString() }));
    await waitActive(stream);
    const phase2 = await putPlain(stream, keys(8), 5, 10);
    const children = (await listShards(kinesis, stream)).filter((s) => s.parentShardIds.includes(root!.shardId));
    expect(children).toHaveLength(2);
    await kinesis.send(
      new MergeShardsCommand({ StreamName: stream, ShardToMerge: children[0]!.shardId, AdjacentShardToMerge: children[1]!.shardId }),
    );
    await waitActive(stream);
    const phase3 = await putPlain(stream, keys(8), 10, 15);
    const all = [...phase1, ...phase2, ...phase3];
    await waitFor(() => missing(all, journal.bodies()).length === 0, 'every phase', 20_000);

    // Per key, delivery order is put order across the parent, the children and the merged shard.
    for (const order of orderByKey(journal.deliveries).values()) expect(order).toEqual([...Array(15).keys()]);
    // Each shard's records all came before any record of its children.
    const shards = await listShards(kinesis, stream);
    expect(shards).toHaveLength(4);
    const lastIndex = (id: string) => journal.deliveries.map((d) => d.shardId).lastIndexOf(id);
    const firstIndex = (id: string) => journal.deliveries.findIndex((d) => d.shardId === id);
    for (const s of shards) for (const p of s.parentShardIds) if (firstIndex(s.shardId) >= 0) expect(lastIndex(p)).toBeLessThan(firstIndex(s.shardId));
    // Children start with their parents' final states; finished parents ended with 'shard_end'.
    const merged = shards.find((s) => s.parentShardIds.length === 2)!;
    expect(journal.inits.find((i) => i.init.shardId === merged.shardId)?.init.parentStates.map((p) => p.shardId).sort()).toEqual(
      [...merged.parentShardIds].sort(),
    );
    expect(journal.shutdowns.filter((s) => s.reason === 'shard_end').map((s) => s.shardId).sort()).toEqual(
      [root!.shardId, ...children.map((ch) => ch.shardId)].sort(),
    );
    await c.stop();
  }, 40_000);

  it('delivers aggregated, gzip and zstd records as user records, and resumes inside an aggregate', async () => {
    const stream = await createTestStream('kc-forms', 1);
    const journal = new Journal();
    const body = (n: number) => JSON.stringify({ pk: 'ws-agg', n });
    const put = (data: Uint8Array) => ({ PartitionKey: 'ws-agg', Data: data });
    await kinesis.send(
      new PutRecordsCommand({
        StreamName: stream,
        Records: [
          put(encodePlain(Buffer.from(body(0)), 'gzip')),
          put(encodeAggregated('ws-agg', [1, 2, 3].map((n) => Buffer.from(body(n))))),
          put(encodeAggregated('ws-agg', [4, 5, 6, 7].map((n) => Buffer.from(body(n))), 'gzip')),
          put(encodePlain(Buffer.from(body(8)), 'zstd')),
          put(encodeAggregated('ws-agg', [9, 10].map((n) => Buffer.from(body(n))), 'zstd')),
          put(Buffer.from('garbage')),
        ],
      }),
    );
    // The first worker checkpoints in the middle of the gzip'd aggregate, then stops without
    // another checkpoint (graceful stop of a processor that chooses not to checkpoint).
    const c1 = consumer('forms', stream, 'w1', (shardId) => {
      const inner = journal.processor('first', {
        checkpointAt: (records) => {
          const fifth = records.find((r) => Buffer.from(r.data).toString() === body(5));
          return fifth ? { sequenceNumber: fifth.sequenceNumber, subSequenceNumber: fifth.subSequenceNumber } : 'skip';
        },
      })(shardId);
      return { ...inner, shutdown: async (reason) => void journal.shutdowns.push({ worker: 'first', shardId, reason }) };
    });
    await c1.start();
    await waitFor(() => journal.deliveries.length >= 12, 'first pass');
    await c1.stop();
    const first = journal.deliveries.filter((d) => d.worker === 'first');
    expect(first.map((d) => [d.body, d.subSequenceNumber])).toEqual([
      [body(0), 0],
      [body(1), 0],
      [body(2), 1],
      [body(3), 2],
      [body(4), 0],
      [body(5), 1],
      [body(6), 2],
      [body(7), 3],
      [body(8), 0],
      [body(9), 0],
      [body(10), 1],
      ['garbage', 0],
    ]);
    expect(first.at(-1)?.decodeError).toBe('RECORD_CORRUPT');

    const c2 = consumer('forms', stream, 'w2', journal.processor('second'));
    await c2.start();
    await waitFor(() => journal.bodies('second').length >= 6, 'second pass');
    // Asserting that nothing happens: nothing more may come within this time.
    await sleep(200);
    expect(journal.bodies('second')).toEqual([body(6), body(7), body(8), body(9), body(10), 'garbage']);
    await c2.stop();
  }, 30_000);
});
