// createConsumer: the KCL-like consumer put together. One lease loop per worker (renew every
// failoverTime/3, look for leases to take every failoverTime/6), one shard-sync loop (ListShards → leases), one ShardWorker per
// held lease. See README.md beside this file.
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KinesisClient, ListShardsCommand, type Shard } from '@aws-sdk/client-kinesis';
import { NodeHttp2Handler } from '@smithy/node-http-handler';
import type { Registry } from 'prom-client';
import type { BackoffPolicy } from '../../../../lib/backoff.js';
import { type Logger, silentLogger } from '../../../../lib/logger.js';
import { LeaseCoordinator } from './coordinator.js';
import { DynamoLeaseStore, ensureLeaseTable } from './dynamo-lease-store.js';
import type { LeaseStore } from './lease-store.js';
import { type InitialPosition, type ShardInfo, TRIM_HORIZON } from './leases.js';
import { type ConsumerMetrics, noopConsumerMetrics, prometheusConsumerMetrics } from './metrics.js';
import type { ShardProcessor } from './processor.js';
import { FanOutShardReader } from './fanout-reader.js';
import { PollingShardReader, type ReadBudget, type ShardReader } from './shard-reader.js';
import { ShardWorker, type StopMode } from './shard-worker.js';

export interface ConsumerOptions {
  /** The consumer's name: its leases and checkpoints are its own (e.g. 'router', 'search'). */
  name: string;
  streamName: string;
  kinesis: KinesisClient;
  dynamo: DynamoDBClient;
  /** DynamoDB table of leases, shared by all consumers (key: consumerName, leaseKey). */
  leaseTable: string;
  /** Create the lease table if missing (local stacks and tests). Default false. */
  createLeaseTable?: boolean;
  /** Unique per process, e.g. `${hostname}-${pid}`. */
  workerId: string;
  processor: (shardId: string) => ShardProcessor;
  /** A lease not renewed for this long is taken over. KCL's default: 10 s. */
  failoverTimeMs?: number;
  /** Wait after an empty read before polling again. Default 200 ms. */
  pollIntervalMs?: number;
  /** This consumer's share of each shard's GetRecords capacity. Default DEFAULT_READ_BUDGET (0.75 calls/s, 256 KB/s). */
  readBudget?: ReadBudget;
  /** Spacing between GetRecords calls on one shard instead of the budget's (0 for a local Kinesis). */
  minCallSpacingMs?: number | undefined;
  /** GetRecords Limit. Default 1000. */
  maxRecords?: number;
  /** Where a consumer with no leases yet starts. Default TRIM_HORIZON. */
  initialPosition?: InitialPosition;
  /** How often to list shards (new shards after a reshard). Default 60 s. */
  shardSyncIntervalMs?: number;
  /**
   * Least time between two checkpoint writes of a shard; one asked for sooner is written when the
   * interval has passed (or before the lease is released). A crash re-reads at most this much
   * more. Default 0: every checkpoint written when asked.
   */
  checkpointIntervalMs?: number;
  /** Upper bound on leases taken per cycle, to spread a cold start. Default unbounded. */
  maxLeasesToTakePerCycle?: number;
  /** How shards are read; default polling GetRecords (or fan-out with `fanOut`). */
  reader?: ShardReader;
  /**
   * Read by enhanced fan-out as this registered stream consumer: SubscribeToShard through an
   * HTTP/2 client made with `kinesis`'s region and credentials (at `endpoint` if given).
   */
  fanOut?: { consumerArn: string; endpoint?: string } | undefined;
  /** Leases port; default DynamoDB (`dynamo` + `leaseTable`). */
  leaseStore?: LeaseStore;
  /** Prometheus registry to record metrics on (names in metrics.ts). */
  metrics?: Registry;
  logger?: Logger;
  backoff?: BackoffPolicy;
}

export interface Consumer {
  start(): Promise<void>;
  /**
   * 'graceful' (default): each processor gets shutdown('shutdown') with a checkpointer, then the
   * lease is released so another worker takes it at once. 'abandon': stop reading and renewing
   * without any write, as a crash would (others take over after the failover time).
   */
  stop(mode?: StopMode): Promise<void>;
  /** Shard ids whose leases this worker holds now. */
  heldShards(): string[];
  /** What /healthz and /readyz report (lib/metrics.ts); `now` for tests. */
  health(now?: number): ConsumerHealth;
}

export interface ConsumerHealth {
  /** Started, and the lease table answered within the failover time: this worker can hold leases. */
  ready: boolean;
  /** False when the lease loop has not finished a cycle for far longer than it should (wedged). */
  live: boolean;
  leasesHeld: number;
  /** Milliseconds since the last lease cycle that reached the lease table, if any did. */
  sinceLeaseTableMs: number | undefined;
}

/**
 * Readiness and liveness from the lease loop's clock (pure, so it is tested without timers):
 * a worker is ready while its last good cycle is at most one failover time old (beyond that its
 * own leases are as good as lost); it is wedged when no cycle at all, good or failed, ended for
 * ten failover times or a minute, whichever is longer: DynamoDB being down is no reason to restart.
 */
export function consumerHealth(s: { running: boolean; failoverMs: number; lastGoodCycleAt: number | undefined; lastCycleEndedAt: number | undefined; startedAt: number | undefined; leasesHeld: number }, now: number): ConsumerHealth {
  const sinceGood = s.lastGoodCycleAt === undefined ? undefined : now - s.lastGoodCycleAt;
  const lastActivity = s.lastCycleEndedAt ?? s.startedAt;
  const wedgedAfter = Math.max(60_000, 10 * s.failoverMs);
  return {
    ready: s.running && sinceGood !== undefined && sinceGood <= s.failoverMs,
    live: !s.running || lastActivity === undefined || now - lastActivity <= wedgedAfter,
    leasesHeld: s.leasesHeld,
    sinceLeaseTableMs: sinceGood,
  };
}

export async function listShards(kinesis: KinesisClient, streamName: string): Promise<ShardInfo[]> {
  const shards: Shard[] = [];
  let nextToken: string | undefined;
  do {
    const page = await kinesis.send(new ListShardsCommand(nextToken ? { NextToken: nextToken } : { StreamName: streamName }));
    shards.push(...(page.Shards ?? []));
    nextToken = page.NextToken;
  } while (nextToken);
  return shards.map((s) => ({
    shardId: s.ShardId!,
    parentShardIds: [s.ParentShardId, s.AdjacentParentShardId].filter((p): p is string => !!p),
    closed: !!s.SequenceNumberRange?.EndingSequenceNumber,
  }));
}

export function createConsumer(opts: ConsumerOptions): Consumer {
  const failoverMs = opts.failoverTimeMs ?? 10_000;
  const logger = (opts.logger ?? silentLogger).child({ consumer: opts.name, workerId: opts.workerId });
  const metrics: ConsumerMetrics = opts.metrics ? prometheusConsumerMetrics(opts.metrics, opts.name, opts.workerId) : noopConsumerMetrics;
  const store = opts.leaseStore ?? new DynamoLeaseStore(opts.dynamo, opts.leaseTable, opts.name);
  const coordinator = new LeaseCoordinator({
    workerId: opts.workerId,
    store,
    failoverMs,
    initialPosition: opts.initialPosition ?? TRIM_HORIZON,
    ...(opts.maxLeasesToTakePerCycle === undefined ? {} : { maxTakesPerCycle: opts.maxLeasesToTakePerCycle }),
  });
  // SubscribeToShard needs HTTP/2; the polling calls keep the service's own client.
  const fanOutClient = opts.fanOut
    ? new KinesisClient({ region: opts.kinesis.config.region, credentials: opts.kinesis.config.credentials, ...(opts.fanOut.endpoint ? { endpoint: opts.fanOut.endpoint } : {}), requestHandler: new NodeHttp2Handler() })
    : undefined;
  const reader =
    opts.reader ??
    (fanOutClient && opts.fanOut ? new FanOutShardReader({ kinesis: fanOutClient, consumerArn: opts.fanOut.consumerArn }) : undefined) ??
    new PollingShardReader({
      kinesis: opts.kinesis,
      streamName: opts.streamName,
      ...(opts.maxRecords === undefined ? {} : { maxRecords: opts.maxRecords }),
      ...(opts.pollIntervalMs === undefined ? {} : { idlePollMs: opts.pollIntervalMs }),
      ...(opts.minCallSpacingMs === undefined ? {} : { minCallSpacingMs: opts.minCallSpacingMs }),
      ...(opts.readBudget ? { budget: opts.readBudget } : {}),
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
      onThrottled: (shardId) => metrics.readThrottled(shardId),
      onBudgetWait: (shardId, ms) => metrics.budgetWait(shardId, ms),
    });

  const workers = new Map<string, ShardWorker>();
  let running = false;
  let leaseTimer: NodeJS.Timeout | undefined;
  let syncTimer: NodeJS.Timeout | undefined;
  let leaseTick: Promise<void> = Promise.resolve();
  let syncTick: Promise<void> = Promise.resolve();

  const syncShards = async () => {
    try {
      const { created, deleted } = await coordinator.syncShards(await listShards(opts.kinesis, opts.streamName));
      if (created || deleted) logger.info({ created, deleted }, 'shard leases synced');
    } catch (err) {
      logger.warn({ err }, 'shard sync failed; retrying on the next cycle');
    }
  };

  const startWorker = (shardId: string) => {
    const worker = new ShardWorker({
      shardId,
      coordinator,
      reader,
      processor: opts.processor(shardId),
      metrics,
      logger,
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
      ...(opts.checkpointIntervalMs === undefined ? {} : { checkpointIntervalMs: opts.checkpointIntervalMs }),
      // A finished shard may have children waiting: look for them now, not a minute later.
      onShardEnd: () => {
        if (running) scheduleSync(0);
      },
    });
    workers.set(shardId, worker);
    void worker.done.finally(() => {
      if (workers.get(shardId) === worker) workers.delete(shardId);
      metrics.leasesHeld(coordinator.heldKeys().length);
    });
  };

  // Leases are renewed every failoverMs / 3 (KCL's rule) but the table is read for free and
  // expired leases twice as often: a dead peer's shards are taken within failover + 2 × failoverMs / 6.
  const renewEveryMs = failoverMs / 3;
  const cycleMs = failoverMs / 6;
  let lastRenewalAt = Number.NEGATIVE_INFINITY;
  let startedAt: number | undefined;
  let lastGoodCycleAt: number | undefined;
  let lastCycleEndedAt: number | undefined;
  const leaseCycle = async () => {
    try {
      const now = Date.now();
      if (now - lastRenewalAt >= renewEveryMs - cycleMs / 2) {
        lastRenewalAt = now;
        for (const shardId of await coordinator.renewLeases()) {
          logger.info({ shardId }, 'lease lost');
          workers.get(shardId)?.leaseLost();
        }
      }
      if (!running) return;
      const { acquired, takeovers } = await coordinator.takeLeases();
      if (takeovers) metrics.leaseTakeovers(takeovers);
      for (const lease of acquired) {
        logger.info({ shardId: lease.leaseKey, previousOwnerSwitches: lease.ownerSwitchesSinceCheckpoint }, 'lease taken');
        // A worker for this shard still winding down (lost, then retaken) finishes first; the
        // lease loop does not wait for it, renewals must go on.
        const previous = workers.get(lease.leaseKey);
        void (previous?.done ?? Promise.resolve()).then(() => {
          if (running && coordinator.holds(lease.leaseKey) && !workers.has(lease.leaseKey)) startWorker(lease.leaseKey);
        });
      }
      metrics.leasesHeld(coordinator.heldKeys().length);
      lastGoodCycleAt = Date.now();
    } catch (err) {
      logger.warn({ err }, 'lease cycle failed; retrying on the next cycle');
    } finally {
      lastCycleEndedAt = Date.now();
    }
  };

  const scheduleLease = (delay: number) => {
    leaseTimer = setTimeout(() => {
      leaseTick = leaseCycle().finally(() => {
        if (running) scheduleLease(cycleMs);
      });
    }, delay);
  };

  const scheduleSync = (delay: number) => {
    clearTimeout(syncTimer);
    syncTimer = setTimeout(() => {
      syncTick = syncTick.then(syncShards).finally(() => {
        if (running) scheduleSync(opts.shardSyncIntervalMs ?? 60_000);
      });
    }, delay);
  };

  return {
    async start() {
      if (running) return;
      if (opts.createLeaseTable) await ensureLeaseTable(opts.dynamo, opts.leaseTable);
      // Fail fast on a missing stream or lease table; later cycles log and retry instead.
      await coordinator.syncShards(await listShards(opts.kinesis, opts.streamName));
      running = true;
      startedAt = Date.now();
      await leaseCycle();
      scheduleLease(cycleMs);
      scheduleSync(opts.shardSyncIntervalMs ?? 60_000);
      logger.info({ failoverMs }, 'consumer started');
    },

    async stop(mode: StopMode = 'graceful') {
      if (!running) return;
      running = false;
      clearTimeout(leaseTimer);
      clearTimeout(syncTimer);
      await Promise.allSettled([leaseTick, syncTick]);
      await Promise.all([...workers.values()].map((w) => w.stop(mode)));
      if (mode === 'abandon') coordinator.abandon();
      metrics.leasesHeld(coordinator.heldKeys().length);
      fanOutClient?.destroy(); // its HTTP/2 sessions would keep the process alive
      logger.info({ mode }, 'consumer stopped');
    },

    heldShards() {
      return coordinator.heldKeys();
    },

    health(now = Date.now()) {
      return consumerHealth({ running, failoverMs, lastGoodCycleAt, lastCycleEndedAt, startedAt, leasesHeld: coordinator.heldKeys().length }, now);
    },
  };
}
