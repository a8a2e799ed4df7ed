import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BROKER_SETTINGS } from '../../../broker/config.js';
import { randomUUID } from 'node:crypto';
import { AUDIT_SETTINGS } from '../../../audit/config.js';
import { CONSUMER_SETTINGS, DEFAULT_READ_BUDGET, serializeMarks, stateSlotKey } from '@taskflow/stream';
import { MAX_RECORDS_PER_CALL } from '../../../packages/stream/src/consumer/shard-worker.js';
import { ROUTER_READ_BUDGET, ROUTER_SETTINGS } from '../../../router/config.js';
import { ROUTER_MAX_MARKS } from '../../../router/shard-router.js';
import { loadMeasured, loadPrices, loadScale } from './load.js';
import {
  brokerTier,
  changelogCapacity,
  CHECKPOINT_MARKS,
  compare,
  DEFAULT_LEVERS,
  dynamoWrites,
  egressUsd,
  fanout,
  iotCoreItem,
  kinesisShards,
  LEASE_FAILOVER_MS,
  LEASE_ITEM_BYTES,
  LEASE_ITEM_WRU,
  STATE_ITEM_BYTES,
  checkpointWru,
  stateItemBytes,
  leaseCapacity,
  LEASE_LISTS_PER_S,
  LEASE_SHARD_SYNC_MS,
  LEASE_WORKERS,
  leaseReads,
  leaseWrites,
  MARK_BYTES,
  messagesPerTransaction,
  monthlyBill,
  POLLING_READS_PER_S,
  RECORDS_PER_CALL,
  type Scale,
  SECONDS_PER_MONTH,
  selfHostedItem,
  serviceVcpus,
  streamReaders,
  tiered,
} from './model.js';

const prices = loadPrices();
const seed = loadScale('seed');
const here = dirname(fileURLToPath(import.meta.url));

/** A scale small enough to redo by hand: 10 changes/s, one transaction per change, every project rarely changing. */
function tinyScale(over: Partial<Scale> = {}): Scale {
  return {
    ...seed,
    events: { ...seed.events, peak_per_s: 1000, average_per_s: 10, average_bytes: 1000, kinesis_compression_ratio: 1, shard_headroom: 1.5, events_per_kinesis_record: 1, workspaces: 20 },
    connections: { concurrent: 1000, daily_users: 0, sessions_per_user_per_day: 0, subscribes_per_session: 0 },
    fan_out: { classes: [{ name: 'pair', share: 1, changes_per_s: 1e-10, subscribers: 2 }] },
    services: { ...seed.services, polling_consumers: [] },
    measured: { ...seed.measured, changesPerTransaction: 1, thinBytesPerChange: 200, broker: { connectionsPerNode: 5000, idleRssMib: 100, kibPerConnection: 128, cpuUsPerDelivery: 200 } },
    ...over,
  };
}

/** tinyScale's lease table provisioned (the lease tests): 730 h x (0.9 x the average's 7.106 WRU/s
 *  + 0.1 x the peak's 7.133) / 0.7 at $0.00065 a WCU-hour, and its lists' 4.3167 RRU/s / 0.7 at $0.00013.
 *  The router's checkpoints write its state slot and its lease item, 1 WRU each (2 WRU); the others' the lease item alone. */
const tinyAverageLeaseWru = 2 * ((2 * (1 - Math.exp(-15))) / 3 + 2 * (1 - Math.exp(-5))) + 1.8;
const tinyPeakLeaseWru = 2 * (2 / 3 + 1 + 1) + 1.8;
const leaseUsd = 730 * (((0.9 * tinyAverageLeaseWru + 0.1 * tinyPeakLeaseWru) / 0.7) * 0.00065 + (((3 + 2 + 2) * (0.6 + 1 / 60)) / 0.7) * 0.00013);

describe('cost model arithmetic', () => {
  it('coalesces Poisson transactions into one message per interval that saw any', () => {
    expect(messagesPerTransaction(0, 0.3)).toBe(1);
    expect(messagesPerTransaction(2, 0.5)).toBeCloseTo(1 - Math.exp(-1), 12); // x = 1
    expect(messagesPerTransaction(10, 1)).toBeCloseTo(0.1, 4); // busy project: one message per second
  });

  it('prices tiers cumulatively', () => {
    // 1,500 M IoT messages: 1,000 M at $1.00 + 500 M at $0.80
    expect(tiered(1500, prices.iot_core.message_tiers)).toBeCloseTo(1400, 6);
    expect(tiered(200, prices.iot_core.message_tiers)).toBeCloseTo(200, 6);
    // 20 TB out: 10 TB at $0.09 + 10 TB at $0.085 per GB
    expect(egressUsd(20_000, prices.data_transfer_out.tiers)).toBeCloseTo(900 + 850, 6);
  });

  it('sizes Kinesis by the largest of bytes, records and polling reads', () => {
    // 1,000 events/s x 1,000 B = 1 MB/s, x1.5 headroom = 1.5 MB/s -> 2 shards by bytes;
    // 1,000 records/s x 1.5 / 1,000 -> 2 by records as well
    expect(kinesisShards(tinyScale())).toEqual({ shards: 2, bound: 'bytes' });
    // three polling readers of 1.5 MB/s share 2 MB/s per shard: 4.5 / 2 -> 3 shards
    expect(kinesisShards(tinyScale({ services: { ...seed.services, polling_consumers: ['a', 'b', 'c'] } }))).toEqual({ shards: 3, bound: 'polling reads' });
  });

  it('bills IoT Core for the router publishes and each delivery, per 5 KB unit, plus connection minutes', () => {
    const scale = tinyScale();
    const qos0 = { ...DEFAULT_LEVERS, deliveryQos: 0 as const };
    const f = fanout(scale, qos0);
    expect(f.publishesPerS).toBeCloseTo(10, 9);
    expect(f.deliveriesPerS).toBeCloseTo(20, 9);
    const item = iotCoreItem(scale, qos0, prices, f);
    // 30 messages/s x 2,628,000 s = 78.84 M messages at $1.00; 1,000 x 43,800 min = 43.8 M min at $0.08
    expect(item.usd).toBeCloseTo(78.84 + 3.504, 6);
    // thin 200 B payloads fit one unit; full 6,000 B take two
    const big = tinyScale({ events: { ...scale.events, average_bytes: 6000 } });
    const full = { ...qos0, payload: 'full' as const };
    const bigItem = iotCoreItem(big, full, prices, fanout(big, full));
    expect(bigItem.detail.units_per_message).toBe(2);
    expect(bigItem.usd).toBeCloseTo(2 * 78.84 + 3.504, 6);
  });

  it('with QoS 1 deliveries every delivery also costs the browser PUBACK; the default is QoS 0, as the SDK subscribes', () => {
    const scale = tinyScale();
    expect(DEFAULT_LEVERS.deliveryQos).toBe(0);
    const qos1 = { ...DEFAULT_LEVERS, deliveryQos: 1 as const };
    // publishes 10/s x 1 unit + deliveries 20/s x (1 unit + 1 ack) = 50 messages/s = 131.4 M
    expect(iotCoreItem(scale, qos1, prices, fanout(scale, qos1)).usd).toBeCloseTo(131.4 + 3.504, 6);
  });

  it('without per-subscribe lifecycle events only CONNECT, SUBSCRIBE and the presence events are control messages', () => {
    // 2,400 daily users x 1 session x 730/24 days = 73,000 sessions of 3 subscribes each:
    // CONNECT + 3 SUBSCRIBE = 292,000 messages; lifecycle events 73,000 x (2 + 2 x 3) = 584,000,
    // or 73,000 x 2 = 146,000 presence events when subscriptions come from replay requests.
    const scale = tinyScale({ connections: { concurrent: 1000, daily_users: 2400, sessions_per_user_per_day: 1, subscribes_per_session: 3 } });
    const item = (subscriptionEvents: 'lifecycle' | 'replay-call') => iotCoreItem(scale, { ...DEFAULT_LEVERS, subscriptionEvents }, prices, fanout(scale, DEFAULT_LEVERS));
    expect(item('lifecycle').detail.messages_millions).toBe(Math.round(78.84 + 0.292 + 0.584));
    // 438,000 fewer messages at $1.00 per million and as many fewer rule executions at $0.15 + $0.15
    expect(item('lifecycle').usd - item('replay-call').usd).toBeCloseTo(0.438 + 0.438 * 0.3, 6);
  });

  it('provisions the changelog at the target utilization, following the peak in the peak hours; the lease table provisioned too, the small tables on-demand', () => {
    const scale = tinyScale();
    // 10 one-change transactions/s: 10 batches/s x 1 body WRU for one 200 B thin entry (the default
    // payload), and the head's reservation once per 1,000 seqs: 10 changes/s / 1,000 = 0.01 WRU/s; 10.01 WRU/s
    expect(dynamoWrites(scale).changelog).toBeCloseTo(10.01, 9);
    // Half the projects unwatched, bodies for watched ones only: 5 bodies + 5 x 1 / 1,000 reserved
    // + a head write for each of the 5 unwatched batches = 10.005 WRU/s
    const halfWatched = tinyScale({ fan_out: { classes: [{ name: 'pair', share: 0.5, changes_per_s: 1e-10, subscribers: 2 }, { name: 'nobody', share: 0.5, changes_per_s: 1e-10, subscribers: 0 }] } });
    expect(dynamoWrites(halfWatched, { ...DEFAULT_LEVERS, changelogScope: 'watched' }).changelog).toBeCloseTo(10.005, 9);
    // peak 1,000/s over average 10/s = 100x for 10% of the hours: shape 0.9 + 0.1 x 100 = 10.9
    const changelog = ((10.01 * 10.9 * 730) / 0.7) * 0.00065;
    // the lease table, provisioned too (its arithmetic is the next tests')
    const small = leaseUsd;
    // 24 h (the TTL) of 10 changes/s x 200 B thin entries at $0.25 + $0.20 PITR per GB-month
    const storage = ((10 * 86400 * 200) / 1e9) * 0.45;
    expect(monthlyBill(scale, prices).services.dynamodb!.usd).toBeCloseTo(changelog + small + storage, 1);
    // kept 7 days: seven times the storage, the same writes
    expect(monthlyBill(scale, prices, { ...DEFAULT_LEVERS, changelogTtlHours: 168 }).services.dynamodb!.usd).toBeCloseTo(changelog + small + 7 * storage, 1);
    expect(changelogCapacity(scale, prices)).toEqual({ targetUtilizationPercent: 70, write: { min: Math.ceil(10.01 / 0.7), max: Math.ceil((2 * 10.01 * 100) / 0.7) }, read: { min: 0, max: 0 } });
    expect(changelogCapacity(scale, prices, { ...DEFAULT_LEVERS, dynamoCapacity: 'on-demand' })).toBeNull();
  });

  it('provisions the lease table for its checkpoints as they follow the event rate, its renewals flat, and its lease lists at the pods', () => {
    const scale = tinyScale();
    const w = dynamoWrites(scale);
    // tinyScale at its 10 events/s (the next test): checkpoints 2 shards x (router (1 - e^-15) / 3
    // x 2 WRU (slot + lease item) + notifications and archiver 1 - e^-5, 1 WRU each), renewals
    // 1.8 WRU/s (the lease items alone).
    const average = tinyAverageLeaseWru;
    expect(w.checkpoints + w.leases).toBeCloseTo(average, 9);
    // At the 1,000 events/s peak, 500 records/s a shard: every push brings records, but the pushed
    // readers write 1 checkpoint/s a shard (the library's 1 s interval), the router still 1/3 (its
    // 3 s interval) x 2 WRU: 2 x (2/3 + 1 + 1) = 5.33, the renewals the same 1.8: 7.13 WRU/s — about
    // the average's 7.11, not the events' 100x.
    expect(leaseWrites(scale, DEFAULT_LEVERS, 1000).checkpoints + leaseWrites(scale, DEFAULT_LEVERS, 1000).renewals).toBeCloseTo(tinyPeakLeaseWru, 6);
    // Lists: every worker lists its reader's leases every 10 s / 6 and at each minute's shard sync,
    // 0.6 + 1/60 a second; a list of 2 shards' lease items (2 x 500 B, the router's state slots
    // left out) is one 4 KB read unit. The workloads' pods: router 3 to 24, notifications and the
    // archiver 2 to 8 each.
    expect(LEASE_LISTS_PER_S).toBeCloseTo(0.6 + 1 / 60, 12);
    expect(leaseReads(scale, DEFAULT_LEVERS, 'min')).toBeCloseTo((3 + 2 + 2) * (0.6 + 1 / 60), 9);
    expect(leaseReads(scale, DEFAULT_LEVERS, 'max')).toBeCloseTo((24 + 8 + 8) * (0.6 + 1 / 60), 9);
    // At 70%: the average's writes the floor, twice the peak's the ceiling; the lists at the
    // minimum pods the floor (4.3167 / 0.7 -> 7), at the maximum the ceiling (24.667 / 0.7 -> 36).
    expect(leaseCapacity(scale, prices)).toEqual({ targetUtilizationPercent: 70, write: { min: Math.ceil(average / 0.7), max: Math.ceil((2 * tinyPeakLeaseWru) / 0.7) }, read: { min: 7, max: 36 } });
    expect(leaseCapacity(scale, prices, { ...DEFAULT_LEVERS, dynamoCapacity: 'on-demand' })).toBeNull();
    // Billed: off peak (90% of 730 h) the average's WCU, in the peak hours the peak's, at $0.00065
    // a WCU-hour; the lists' RCU all month at $0.00013.
    expect(monthlyBill(scale, prices).services.dynamodb!.detail).toMatchObject({ lease_wcu_off_peak: Math.ceil(average / 0.7), lease_wcu_peak: Math.ceil(tinyPeakLeaseWru / 0.7), lease_rcu: 7 });
    expect(monthlyBill(scale, prices).services.dynamodb!.detail.lease_usd).toBeCloseTo(leaseUsd, 2);
    // On-demand: every write unit at $0.625 per million, every read unit at $0.125.
    const onDemand = ((average * 0.625 + 7 * (0.6 + 1 / 60) * 0.125) * SECONDS_PER_MONTH) / 1e6;
    expect(monthlyBill(scale, prices, { ...DEFAULT_LEVERS, dynamoCapacity: 'on-demand' }).services.dynamodb!.detail.lease_usd).toBeCloseTo(onDemand, 2);
  });

  it("bills the lease table for each reader's checkpoints (one per read that brought records: its state slot, 1 WRU per KB, and its lease item) and renewals (the lease item)", () => {
    // tinyScale: 2 shards, 10 records/s -> 5 a shard; 20 workspaces -> 10 marks a shard in the
    // router's state slot: 300 + 10 x 38 = 680 B -> 1 WRU, + 1 WRU for its 500 B lease item: 2 WRU a
    // checkpoint; the other readers keep no state: 1 WRU, as every renewal.
    const scale = tinyScale();
    expect(streamReaders(scale)).toEqual(['router', 'notifications', 'archiver']);
    expect(stateItemBytes(scale, 'router', 2)).toBe(680);
    expect([checkpointWru(scale, 'router', 2), checkpointWru(scale, 'notifications', 2), LEASE_ITEM_WRU]).toEqual([2, 1, 1]);
    const w = leaseWrites(scale, DEFAULT_LEVERS, 10);
    // Fan-out pushes every 50 ms; the router checkpoints at most every 3 s (its interval), the
    // others at most every 1 s (the library's). Intervals seeing at least one of 5 records/s:
    // 5 x (1 - e^-x) / x, x = 5 x spacing.
    const router = (1 - Math.exp(-15)) / 3;
    const pushed = 1 - Math.exp(-5);
    expect(w.checkpointsPerShard).toEqual({ router: expect.closeTo(router, 9), notifications: expect.closeTo(pushed, 9), archiver: expect.closeTo(pushed, 9) });
    expect(w.checkpoints).toBeCloseTo(2 * (2 * router + pushed * 2), 9);
    // Every lease renewed every 10 s / 3, whatever the load: 2 shards x 0.3/s x (1 + 1 + 1) WRU.
    expect(w.renewals).toBeCloseTo(1.8, 9);
    // At interval 0 the router checkpoints per 100 ms window that brought records (2,000 records/s
    // a shard: every one, 10/s); at its 3 s interval it stays at 1/3 a second however busy.
    expect(leaseWrites(scale, { ...DEFAULT_LEVERS, routerCheckpointMs: 0 }, 10).checkpointsPerShard.router).toBeCloseTo(10 * (1 - Math.exp(-0.5)), 9);
    expect(leaseWrites(scale, { ...DEFAULT_LEVERS, routerCheckpointMs: 0 }, 4000).checkpointsPerShard.router).toBeCloseTo(10, 9);
    expect(leaseWrites(scale, DEFAULT_LEVERS, 4000).checkpointsPerShard.router).toBeCloseTo(1 / 3, 9);
    // An idle shard writes no checkpoint (shard-worker.test.ts), only its renewals.
    expect(leaseWrites(scale, DEFAULT_LEVERS, 0)).toMatchObject({ checkpoints: 0, renewals: expect.closeTo(1.8, 9) });
    // A polling reader asks once per read (0.75/s), and once per 500 records of a busy one: 5
    // records/s over reads 1.33 s apart -> 0.75 x (1 - e^-6.67); 2,000 records/s a shard -> 4/s
    // asked, 1/s written (the library's interval); 4/s without it. Pushed readers likewise: 20/s without it.
    const polled = tinyScale({ services: { ...seed.services, efo_consumers: [], polling_consumers: ['search'] } });
    expect(leaseWrites(polled, DEFAULT_LEVERS, 10).checkpointsPerShard.search).toBeCloseTo(0.75 * (1 - Math.exp(-5 / 0.75)), 9);
    expect(leaseWrites(polled, DEFAULT_LEVERS, 4000).checkpointsPerShard.search).toBeCloseTo(1, 9);
    expect(leaseWrites(polled, { ...DEFAULT_LEVERS, consumerCheckpointMs: 0 }, 4000).checkpointsPerShard.search).toBeCloseTo(4, 9);
    expect(leaseWrites(scale, { ...DEFAULT_LEVERS, consumerCheckpointMs: 0 }, 10).checkpointsPerShard.notifications).toBeCloseTo(20 * (1 - Math.exp(-0.25)), 9);
    // Audit polls too, but checkpoints at most every 5 s (its interval), however busy: 5 records/s -> 0.2 x (1 - e^-25).
    const audited = tinyScale({ services: { ...seed.services, efo_consumers: [], polling_consumers: ['audit'] } });
    expect(leaseWrites(audited, DEFAULT_LEVERS, 10).checkpointsPerShard.audit).toBeCloseTo(0.2 * (1 - Math.exp(-25)), 9);
    expect(leaseWrites(audited, DEFAULT_LEVERS, 4000).checkpointsPerShard.audit).toBeCloseTo(0.2, 9);
    // Without its own interval audit's writes are still the library's, 1/s; without either, one per call.
    expect(leaseWrites(audited, { ...DEFAULT_LEVERS, auditCheckpointMs: 0 }, 4000).checkpointsPerShard.audit).toBeCloseTo(1, 9);
    expect(leaseWrites(audited, { ...DEFAULT_LEVERS, auditCheckpointMs: 0, consumerCheckpointMs: 0 }, 4000).checkpointsPerShard.audit).toBeCloseTo(4, 9);
    // The marks stop at the reader's bound: 4,000 x 38 B + 300 = 152,300 B -> 149 WRU for the slot
    // + 1 for the lease item = 150 WRU a checkpoint; a renewal is still 1.
    const bounded = tinyScale({ events: { ...scale.events, workspaces: 1e6 } });
    expect(stateItemBytes(bounded, 'router', 2)).toBe(152_300);
    expect(checkpointWru(bounded, 'router', 2)).toBe(150);
    expect(leaseWrites(bounded, DEFAULT_LEVERS, 0).renewals).toBeCloseTo(1.8, 9);
    // At the seed, 150,000 workspaces over 116 shards: 1,294 marks, 49,472 B -> 49 + 1 = 50 WRU a router checkpoint.
    expect(checkpointWru(seed, 'router', 116)).toBe(50);
  });

  it("takes the lease arithmetic's constants from the consumer's code", () => {
    expect(String(LEASE_FAILOVER_MS)).toBe(CONSUMER_SETTINGS.failoverTimeMs.default);
    expect(String(DEFAULT_LEVERS.routerCheckpointMs)).toBe(ROUTER_SETTINGS.checkpointIntervalMs.default);
    expect(String(LEASE_SHARD_SYNC_MS)).toBe(CONSUMER_SETTINGS.shardSyncIntervalMs.default);
    expect(Object.keys(LEASE_WORKERS).sort()).toEqual(streamReaders(seed).sort());
    expect(String(DEFAULT_LEVERS.auditCheckpointMs)).toBe(AUDIT_SETTINGS.checkpointIntervalMs.default);
    expect(String(DEFAULT_LEVERS.consumerCheckpointMs)).toBe(CONSUMER_SETTINGS.checkpointIntervalMs.default);
    expect(POLLING_READS_PER_S).toBe(DEFAULT_READ_BUDGET.callsPerSecond);
    expect(RECORDS_PER_CALL).toBe(MAX_RECORDS_PER_CALL);
    expect(CHECKPOINT_MARKS).toEqual({ router: ROUTER_MAX_MARKS, audit: Number(AUDIT_SETTINGS.maxMarks.default) });
    const marks = new Map(Array.from({ length: 100 }, () => [randomUUID(), { commitLsn: 0x1a2b3c4d5e6fn, txIndex: 12 }] as const));
    expect(Math.ceil((serializeMarks(marks).length - serializeMarks(new Map()).length) / 100)).toBe(MARK_BYTES);
    // A lease item with its state slot's reference, and audit's state slot without marks (its head
    // link the largest extra): DynamoDB counts attribute names and values.
    const item = {
      consumerName: 'notifications',
      leaseKey: 'shardId-000000000115',
      leaseOwner: 'notifications-6f9c7d8b5c-x2k4p-12345',
      leaseCounter: '123456789',
      checkpoint: '49654321098765432109876543210987654321098765432109876543',
      checkpointSubSequence: '19',
      stateSlot: 'a',
      stateWriterCounter: '123456788',
      parentShardIds: 'shardId-000000000057shardId-000000000058',
      ownerSwitchesSinceCheckpoint: '1',
    };
    const bytes = (o: Record<string, string>) => Object.entries(o).reduce((a, [k, v]) => a + k.length + v.length, 0);
    expect(bytes(item)).toBeLessThan(LEASE_ITEM_BYTES);
    const slot = {
      consumerName: 'audit',
      leaseKey: stateSlotKey('shardId-000000000115', 'a'),
      writerCounter: '123456788',
      state: JSON.stringify({ v: 1, head: { shardId: 'shardId-000000000115', index: 123456, hash: 'f'.repeat(64) }, marks: {} }),
    };
    expect(bytes(slot)).toBeLessThan(STATE_ITEM_BYTES);
  });

  it('sizes the changelog bodies by the payload lever: full envelopes gzipped, or the thin entries the router keeps in thin mode', () => {
    // 6,000 B envelopes: full, 6,000 / 4 gzip = 1,500 B a body -> 2 WRU x 10 batches/s + 0.01 reserved = 20.01 WRU/s;
    // thin (and thin-gzip, the same entries), 200 B -> 1 WRU: 10.01 WRU/s
    const big = tinyScale({ events: { ...tinyScale().events, average_bytes: 6000 } });
    const full = { ...DEFAULT_LEVERS, payload: 'full' as const };
    expect(dynamoWrites(big, full).changelog).toBeCloseTo(20.01, 9);
    expect(dynamoWrites(big, DEFAULT_LEVERS).changelog).toBeCloseTo(10.01, 9);
    expect(dynamoWrites(big, { ...DEFAULT_LEVERS, payload: 'thin-gzip' }).changelog).toBeCloseTo(10.01, 9);
    // Storage for 24 h: 10 x 86,400 x 1,500 B = 1.296 GB full, x 200 B = 0.1728 GB thin; the writes 10 WRU/s apart
    // (shape 10.9, 730 h, 70% target, $0.00065 per WCU-hour)
    const storageUsd = (bytes: number) => ((10 * 86400 * bytes) / 1e9) * 0.45;
    const writesUsd = (wru: number) => ((wru * 10.9 * 730) / 0.7) * 0.00065;
    const dynamo = (levers: typeof DEFAULT_LEVERS) => monthlyBill(big, prices, levers).services.dynamodb!;
    expect(dynamo(full).detail.storage_gb).toBe(1);
    expect(dynamo(full).usd - dynamo(DEFAULT_LEVERS).usd).toBeCloseTo(writesUsd(20.01) - writesUsd(10.01) + storageUsd(1500) - storageUsd(200), 1);
  });

  it("bills the changelog's storage for the TTL the router keeps by default", () => {
    expect(String(DEFAULT_LEVERS.changelogTtlHours * 3600)).toBe(ROUTER_SETTINGS.changelogTtlSeconds.default);
  });

  it("coalesces over the read spacing as bench:router measured: its formula is within 10% of the bench's messages per change", () => {
    // The bench: 20 one-change transactions/s per project, window 100 ms; its router polls, so its
    // reads are as far apart as the router's read budget allows (2 GetRecords/s a shard: 500 ms).
    // Production's router reads by fan-out; the model's default spacing (the poll interval) is shorter.
    const benchReadSpacingMs = Math.max(100, DEFAULT_LEVERS.pollIntervalMs, 1000 / ROUTER_READ_BUDGET.callsPerSecond);
    const predicted = messagesPerTransaction(20, benchReadSpacingMs / 1000);
    expect(Math.abs(predicted - seed.measured.benchMessagesPerChange) / seed.measured.benchMessagesPerChange).toBeLessThan(0.1);
  });

  it('publishes nothing to projects without live subscribers when the filter is on', () => {
    const scale = tinyScale({ fan_out: { classes: [{ name: 'pair', share: 0.5, changes_per_s: 1e-10, subscribers: 2 }, { name: 'nobody', share: 0.5, changes_per_s: 1e-10, subscribers: 0 }] } });
    expect(fanout(scale, DEFAULT_LEVERS)).toMatchObject({ publishesPerS: 5, deliveriesPerS: 10 });
    expect(fanout(scale, { ...DEFAULT_LEVERS, liveSubscribersOnly: false })).toMatchObject({ publishesPerS: 10, deliveriesPerS: 10 });
  });

  it('a batching window longer than the read spacing coalesces a busy project into fewer messages', () => {
    // one project at 10 tx/s: max(100 ms window, 200 ms reads) = 0.2 s -> x = 2, (1 - e^-2) / 2 = 0.4323 messages per tx
    const scale = tinyScale({ fan_out: { classes: [{ name: 'busy', share: 1, changes_per_s: 10, subscribers: 1 }] } });
    expect(fanout(scale, DEFAULT_LEVERS).publishesPerS).toBeCloseTo(10 * ((1 - Math.exp(-2)) / 2), 9);
    // window 1,000 ms: x = 10 -> about one message per second
    expect(fanout(scale, { ...DEFAULT_LEVERS, batchWindowMs: 1000 }).publishesPerS).toBeCloseTo(10 * ((1 - Math.exp(-10)) / 10), 9);
  });

  it('sizes the self-hosted broker tier from connections per node, the idle node and each connection\'s memory and the peak deliveries, and prices hosts, egress, cross-zone traffic and the TLS load balancer', () => {
    const scale = tinyScale();
    const thin = { ...DEFAULT_LEVERS, payload: 'thin' as const };
    const tier = brokerTier(scale, prices, thin);
    // 1,000 connections / (5,000 a node x 0.67) -> 1 node, at least 3 (one per zone)
    expect(tier.nodes).toBe(3);
    // memory: 100 MiB idle + 5,000 x 128 KiB (625 MiB) = 725 MiB x 1.5 headroom = 1,087.5 -> 1,088 Mi (64 Mi steps)
    expect(tier.memoryMi).toBe(1088);
    // CPU: 20 deliveries/s x 100 (peak / average) / 3 nodes / 0.67 (a lost zone's clients) = 995/s
    // x 200 us = 199 millicores, plus the re-check's 1,000 connections x 2 reads / 300 s = 6.67
    // reads/s / 3 / 0.67 x 410 us = 1.4 m; at 60% target 334 -> 350 m (50 m steps)
    expect(tier.recheckReadsPerS).toBeCloseTo(2000 / 300, 9);
    expect(tier.cpuMillis).toBe(350);
    // hosts: 3 x 0.35 vCPU over 8 x 0.9, 3 x 1,088 Mi over 32 GiB x 0.9: under one host, + 1 spare, at least 3
    expect(tier.hosts).toBe(3);
    // a 2-subscriber project's message reaches 3 x (1 - (2/3)^2) = 5/3 of the 3 nodes: 10 messages/s -> 16.67 node publishes/s
    expect(tier.nodePublishesPerS).toBeCloseTo(50 / 3, 9);
    const item = selfHostedItem(scale, thin, prices, fanout(scale, thin));
    // egress: 20 deliveries/s x (200 + 60) B x 2,628,000 s = 13.67 GB at $0.09; node publishes 16.67/s x 260 B = 11.39 GB;
    // two thirds of both cross a zone at $0.02/GB; the NLB's TLS NLCU: max(1,000 / 3,000 active, 0 new, 0.0187 GB/h) = 0.333;
    // the re-check's 6.67 reads/s at $0.125 per million read units
    const egressGb = (20 * 260 * SECONDS_PER_MONTH) / 1e9;
    const publishGb = ((50 / 3) * 260 * SECONDS_PER_MONTH) / 1e9;
    const nlcu = 1000 / 3000;
    // eventually consistent re-check reads: half a read unit each
    const recheck = ((2000 / 300) * 0.5 * SECONDS_PER_MONTH * 0.125) / 1e6;
    expect(item.usd).toBeCloseTo(3 * 0.3264 * 730 + egressGb * 0.09 + (egressGb + publishGb) * 0.67 * 0.02 + (0.0225 + nlcu * 0.006) * 730 + recheck, 6);
  });

  it('the seed tier on the measured node (bench:broker): 151 nodes of 3,974 connections, memory-bound on 9 hosts', () => {
    // broker.json: 5,932 connections held (median), 114.7 MiB idle, 138.9 KiB a connection, 217.2 us per delivery at most
    expect(seed.measured.broker).toEqual({ connectionsPerNode: 5932, idleRssMib: 114.7, kibPerConnection: 138.9, cpuUsPerDelivery: 217.2 });
    const tier = brokerTier(seed, prices);
    // 600,000 / (5,932 x 0.67) = 150.96 -> 151 nodes, 600,000 / 151 = 3,973.5 -> 3,974 each;
    // memory (114.7 + 5,932 x 138.9 / 1,024 = 804.6) x 1.5 = 1,379 -> 1,408 Mi;
    // CPU: 10,082 deliveries/s x 4.8 (peak / average) / 151 / 0.67 = 478/s x 217.2 us = 104 m, at 60% 173 -> 200 m
    expect(tier).toMatchObject({ nodes: 151, connectionsPerNode: 3974, memoryMi: 1408, cpuMillis: 200 });
    // 151 x 1,408 Mi = 207.6 GiB over 32 GiB x 0.9 = 7.2 -> 8 hosts (CPU: 151 x 0.2 / 7.2 = 4.2), + 1 spare
    expect(tier.hosts).toBe(9);
  });

  it("counts the nodes' membership re-check at the broker's default interval: 4,000 eventually consistent reads/s at the seed, $657 a month, and their CPU", () => {
    expect(String(DEFAULT_LEVERS.brokerRecheckMs)).toBe(BROKER_SETTINGS.recheckMs.default);
    // 600,000 connections x 2 reads / 300 s
    const tier = brokerTier(seed, prices);
    expect(tier.recheckReadsPerS).toBe(4000);
    const item = selfHostedItem(seed, DEFAULT_LEVERS, prices, fanout(seed, DEFAULT_LEVERS));
    // 4,000/s x 2,628,000 s = 10,512 M reads, half a read unit each, at $0.125 per million units
    expect(item.detail).toMatchObject({ recheck_reads_per_s: 4000, recheck_usd: 657 });
    // At 1 s (the old default) the same reads would be 1.2 M/s: ~$197K a month.
    expect(selfHostedItem(seed, { ...DEFAULT_LEVERS, brokerRecheckMs: 1000 }, prices, fanout(seed, DEFAULT_LEVERS)).detail.recheck_usd).toBe(197_100);
    // Their CPU goes into each node's request: 3,974 / 0.67 connections x 2 / 300 s x 410 us = 16 m.
    const without = brokerTier({ ...seed, self_hosted_mqtt: { ...seed.self_hosted_mqtt, recheck_cpu_us_per_read: 0 } }, prices, { ...DEFAULT_LEVERS, brokerRecheckMs: 60_000 });
    const with60s = brokerTier(seed, prices, { ...DEFAULT_LEVERS, brokerRecheckMs: 60_000 });
    // at 60 s: 81 m more before the 60% target and the 50 m steps: 200 -> 350 m
    expect([without.cpuMillis, with60s.cpuMillis]).toEqual([200, 350]);
  });

  it('writes no subscription items with the self-hosted broker: the router loads them from the nodes', () => {
    // 2,400 daily users x 1 session x 730/24 days = 73,000 sessions x 3 subscribes x (put + delete) over the month
    const scale = tinyScale({ connections: { concurrent: 1000, daily_users: 2400, sessions_per_user_per_day: 1, subscribes_per_session: 3 } });
    expect(dynamoWrites(scale, { ...DEFAULT_LEVERS, broker: 'iot-core' }).subscriptions).toBeCloseTo((73_000 * 3 * 2) / SECONDS_PER_MONTH, 9);
    expect(dynamoWrites(scale, { ...DEFAULT_LEVERS, broker: 'self-hosted' }).subscriptions).toBe(0);
    expect(DEFAULT_LEVERS.broker).toBe('self-hosted');
    expect(monthlyBill(scale, prices).services.dynamodb!.detail.subscription_wru_millions).toBe(0);
  });

  it("sizes Kinesis by the compressed bytes: capture's zstd at the scale's ratio, or none", () => {
    // 1,000 events/s x 1,000 B at 5x = 0.2 MB/s x 1.5 = 0.3 -> 1 shard by bytes; records: 1,000/s x 1.5 / 1,000 -> 2
    const zstd = tinyScale({ events: { ...tinyScale().events, kinesis_compression_ratio: 5 } });
    expect(kinesisShards(zstd, { kinesisCompression: 'zstd' })).toEqual({ shards: 2, bound: 'records' });
    // 10,000 events/s of 1,000 B, 20 a record: uncompressed 10 MB/s x 1.5 = 15 shards; zstd 5x: 2 MB/s x 1.5 = 3 (records: 500/s x 1.5 / 1,000 -> 1)
    const big = tinyScale({ events: { ...zstd.events, peak_per_s: 10_000, events_per_kinesis_record: 20 } });
    expect(kinesisShards(big, { kinesisCompression: 'none' })).toEqual({ shards: 15, bound: 'bytes' });
    expect(kinesisShards(big, { kinesisCompression: 'zstd' })).toEqual({ shards: 3, bound: 'bytes' });
    // the bill: shard-hours, 7-day retention and the EFO readers' shard-hours follow the shards
    const kinesis = (kinesisCompression: 'zstd' | 'none') => monthlyBill(big, prices, { ...DEFAULT_LEVERS, kinesisCompression }).services.kinesis!;
    expect(kinesis('none').detail.shards).toBe(15);
    const perShard = 730 * (0.015 + 0.02 + 3 * 0.015);
    // and the EFO readers' retrieval the bytes: 10 events/s x 1,000 B x 2,628,000 s = 26.28 GB in, or 5.256 GB at 5x
    expect(kinesis('none').usd - kinesis('zstd').usd).toBeCloseTo(12 * perShard + 3 * (26.28 - 5.256) * 0.013, 1);
  });

  it('bills Firehose for the bytes the archiver sends: gzipped records by default (analytics/record-packing.ts), in 5 KB units', () => {
    // 10 changes/s x 1,000 B x 2,628,000 s = 26.28 GB of lines; records of 200 events = 200,000 B.
    const scale = tinyScale({ analytics: { ...seed.analytics, firehose_record_events: 200 }, events: { ...tinyScale().events, archive_gzip_ratio: 4 } });
    const curated = ((10 * 200 * SECONDS_PER_MONTH) / 1e9) * prices.firehose.snowflake_per_gb;
    // Gzipped: 6.57 GB in records of 50,000 B, billed as 10 units of 5,120 B = 51,200 B.
    expect(DEFAULT_LEVERS.archiverGzip).toBe(true);
    expect(monthlyBill(scale, prices).services.firehose!.usd).toBeCloseTo(6.57 * (51_200 / 50_000) * prices.firehose.direct_put_per_gb + curated, 2); // usd rounded to cents
    // Plain lines (Firehose gzips them): 26.28 GB in records of 200,000 B, billed as 40 units = 204,800 B.
    expect(monthlyBill(scale, prices, { ...DEFAULT_LEVERS, archiverGzip: false }).services.firehose!.usd).toBeCloseTo(26.28 * (204_800 / 200_000) * prices.firehose.direct_put_per_gb + curated, 2); // usd rounded to cents
  });

  it('adds the services up and leaves out the Lambda authorizer with a self-hosted broker', () => {
    const bill = monthlyBill(seed, prices);
    const sum = Object.values(bill.services).reduce((a, s) => a + s.usd, 0);
    expect(bill.monthly_usd_total).toBeCloseTo(sum, 6);
    const selfHosted = monthlyBill(seed, prices, { ...DEFAULT_LEVERS, broker: 'self-hosted' });
    expect(Object.keys(selfHosted.services)).toEqual(expect.arrayContaining(['mqtt_self_hosted']));
    expect(selfHosted.services.lambda).toBeUndefined();
    expect(selfHosted.services.iot_core).toBeUndefined();
  });

  it("bills CloudWatch for the deployment's alarms and the custom metrics shipped for them, not an assumed count", () => {
    // 33 alarms in the catalog; 49 custom metrics (24 without dimensions, 5 stream readers' iterator
    // age, 10 + 7 API outcomes, 3 broker authorizer outcomes: metrics-shipping.test.ts); 2 dashboards; 20 GB of logs a day
    expect(seed.observability).toMatchObject({ alarms: 33, custom_metrics: 49 });
    const logs = 20 * (730 / 24) * (0.5 + 0.03);
    expect(monthlyBill(seed, prices).services.cloudwatch!.usd).toBeCloseTo(49 * 0.3 + 33 * 0.1 + 2 * 3 + logs, 2);
  });

  it("shows the assumed warehouse one size either way: an S all day is 2 credits an hour, an XS 1, an M 4, at $3 a credit over 730 h", () => {
    const warehouse = compare(seed, prices).sensitivity.filter((x) => x.name.includes('warehouse'));
    expect(warehouse.map((x) => [x.name.split(' ')[1], x.delta_usd])).toEqual([
      ['XS', -730 * 3],
      ['M', 2 * 730 * 3],
    ]);
  });

  it("shows the services at the CPU per change the pipeline benchmarks measured, each in place of the model's figure", () => {
    const e2e = JSON.parse(readFileSync(join(here, '../../../test/bench/results/e2e.json'), 'utf8')) as { metrics: { cpu_us_per_change_router: number } };
    const measured = loadMeasured().pipelineCpuUsPerChange!;
    expect(measured.router).toBe(e2e.metrics.cpu_us_per_change_router);
    expect(Object.keys(measured).sort()).toEqual(['archiver', 'audit', 'notifications', 'router', 'search']);
    const v = serviceVcpus({ ...seed, services: { ...seed.services, cpu_us_per_event: measured } });
    expect(v.detail).toMatchObject({ ...measured, capture: serviceVcpus(seed).detail.capture, gdpr: seed.services.other_consumer_cpu_us_per_event });
    const line = compare(seed, prices).sensitivity.find((x) => x.name.includes('pipeline benchmarks'))!;
    expect(line.monthly_usd_total).toBe(monthlyBill({ ...seed, services: { ...seed.services, cpu_us_per_event: measured } }, prices).monthly_usd_total);
  });

  it('takes the measured figures from the bench results', () => {
    const router = JSON.parse(readFileSync(join(here, '../../../test/bench/results/router.json'), 'utf8')) as { metrics: { core_events_per_s: number } };
    expect(loadMeasured().routerCoreCpuUsPerEvent).toBeCloseTo(1e6 / router.metrics.core_events_per_s, 9);
  });

  it('refuses a scale whose fan-out shares do not add up to 1', () => {
    expect(() => loadScale(join(here, '../../../package.json'))).toThrow(/shares must add up to 1/);
  });

  it('results/cost.json is the model at the seed scale (rerun npm run bench:cost after a change)', () => {
    const kept = JSON.parse(readFileSync(join(here, '../../../test/bench/results/cost.json'), 'utf8')) as { metrics: { monthly_usd_total: number; iot_core_usd: number; self_hosted_mqtt_usd: number } };
    const c = compare(seed, prices);
    expect(kept.metrics.monthly_usd_total).toBe(c.default.monthly_usd_total);
    expect([kept.metrics.iot_core_usd, kept.metrics.self_hosted_mqtt_usd]).toEqual([c.iot_vs_selfhosted_usd.iot_core, c.iot_vs_selfhosted_usd.self_hosted]);
  });
});
