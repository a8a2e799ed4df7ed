// The capture service: one logical replication session at a time (pgoutput through
// capture/replication-stream.ts). SlotSetup prepares publication and slot, a CaptureSession holds each
// session's logic (decoding, sending, confirming), the KinesisProducer puts events on the stream,
// a ReplicationStream reads the slot.
// Any failure ends the session; the next one starts, after a full-jitter backoff, from the slot's
// confirmed position — so events after the last acknowledged one are sent again, with the same ids.
import pg from 'pg';
import { sleep } from '../lib/backoff.js';
import type { DeadLetterStore } from '../lib/dlq.js';
import { TaskflowError } from '../lib/errors.js';
import { formatLsn } from '../lib/event-id.js';
import type { Logger } from '../lib/logger.js';
import type { ProbeResult } from '../lib/metrics.js';
import { retry } from '../lib/retry.js';
import { KINESIS_LIMITS, LINGER_FULL } from './batcher.js';
import type { CaptureConfig } from './config.js';
import { HotWorkspaceTracker } from './hot-workspaces.js';
import { type CaptureMetrics, noopCaptureMetrics } from './metrics.js';
import { KinesisProducer, type PutRecordsFn, reportHotWorkspaces } from './producer.js';
import { ReplicationStream } from './replication-stream.js';
import type { SubjectKeyCache } from './personal-fields.js';
import { CaptureSession, type StreamObserver, describe } from './session.js';
import { type SlotRecord, type SlotRecordStore, replicationApplicationName } from './slot-guard.js';
import { SlotSetup } from './slot-setup.js';

export const HEARTBEAT_PREFIX = 'taskflow.capture.heartbeat';
/** No message (data or keepalive) from the server for this long ends the session. */
const SERVER_SILENCE_MS = 30_000;
const SESSION_BACKOFF = { baseMs: 200, maxMs: 10_000 };
/** A session that streamed this long was healthy: the next one starts the backoff afresh. */
const HEALTHY_SESSION_MS = 30_000;
/** How often hot workspaces are evaluated and reported (the window itself is configured). */
const HOT_WORKSPACE_REPORT_MS = 1000;
const SLOT_STATS_MS = 5000;
/** On stop, how long what was read may take to reach Kinesis before the last confirmation. */
const STOP_DRAIN_MS = 5000;

export interface CaptureDeps {
  config: CaptureConfig;
  logger: Logger;
  metrics?: CaptureMetrics;
  dlq: DeadLetterStore;
  slotRecords: SlotRecordStore;
  put: PutRecordsFn;
  random?: () => number;
  /** Subject keys when personal fields are encrypted before Kinesis; shared by every session. */
  personalFields?: SubjectKeyCache;
}

interface Running {
  session: CaptureSession;
  producer: KinesisProducer;
  repl: ReplicationStream;
  timers: NodeJS.Timeout[];
}

/** A session ended while it was young: the next one waits out a backoff first. */
class SessionEnded extends Error {}

/** Where the service is: reading the slot, waiting for another instance to let go of it, ... */
export type CapturePhase = 'preparing' | 'standby' | 'streaming' | 'reconnecting' | 'stopping';

export class CaptureService {
  private readonly admin: pg.Pool;
  private readonly slots: SlotSetup;
  private readonly metrics: CaptureMetrics;
  private readonly random: () => number;
  /** Outlives sessions: a workspace hot before a reconnect is still reported cooled after it. */
  private readonly hotWorkspaces: HotWorkspaceTracker;
  private readonly stopping = new AbortController();
  private current: Running | undefined;
  private record: SlotRecord | undefined;
  private observer: StreamObserver = {};
  private running: Promise<void> | undefined;
  private phase: CapturePhase = 'preparing';
  /** Set once the slot exists and the first session is streaming. */
  readonly ready: Promise<{ firstStart: boolean }>;
  private resolveReady!: (v: { firstStart: boolean }) => void;

  constructor(private readonly deps: CaptureDeps) {
    this.admin = new pg.Pool({ connectionString: deps.config.databaseUrl, max: 2, application_name: 'taskflow-capture-admin' });
    this.admin.on('error', (err) => deps.logger.warn({ err }, 'admin connection error'));
    this.slots = new SlotSetup(this.admin, deps.config, deps.slotRecords, deps.logger);
    this.metrics = deps.metrics ?? noopCaptureMetrics;
    this.random = deps.random ?? Math.random;
    this.hotWorkspaces = new HotWorkspaceTracker(deps.config.hotWorkspaces);
    this.ready = new Promise((resolve) => (this.resolveReady = resolve));
  }

  setObserver(observer: StreamObserver): void {
    this.observer = observer;
  }

  /** Prepares publication and slot (refusing a slot that lost events), then streams until stop(). */
  start(): Promise<void> {
    this.running ??= this.run();
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    this.phase = 'stopping';
    const r = this.current;
    if (r) {
      // Let what was read reach Kinesis and confirm it, so a restart resends little.
      const timeout = new AbortController();
      await Promise.race([r.session.encryptionIdle().then(() => r.producer.drained()), sleep(STOP_DRAIN_MS, timeout.signal)]);
      timeout.abort();
      await r.session.tick();
      await this.endSession(r);
    }
    await this.running?.catch(() => undefined);
    await this.admin.end();
  }

  /**
   * /readyz (lib/metrics.ts): ready while streaming from the slot, and also while standing by
   * for it with the database answering: a standby that never became ready would hold every
   * rolling update and, under the PodDisruptionBudget, every node drain of the active pod.
   */
  health(): ProbeResult {
    return { ok: this.phase === 'streaming' || this.phase === 'standby', phase: this.phase, slot: this.deps.config.slot };
  }

  /** The pool capture uses for its own queries (heartbeats, slot statistics, snapshots). */
  get pool(): pg.Pool {
    return this.admin;
  }

  private get stopped(): boolean {
    return this.stopping.signal.aborted;
  }

  private async run(): Promise<void> {
    const { logger, config } = this.deps;
    const signal = this.stopping.signal;
    const prepared = await retry(() => this.slots.prepare(), {
      policy: SESSION_BACKOFF,
      signal,
      random: this.random,
      // A database not up yet is worth waiting for; a refused slot or role is not.
      shouldRetry: (err) => !(err instanceof TaskflowError && !err.retriable),
      onRetry: (err, _attempt, delayMs) => logger.warn({ err: describe(err), delayMs, db: config.dbName }, 'cannot prepare the slot yet; retrying'),
    });
    this.record = prepared.record;
    let announced = false;
    const onStreaming = () => {
      if (announced) return;
      announced = true;
      this.resolveReady({ firstStart: prepared.firstStart });
    };
    while (!this.stopped) {
      await retry(
        async () => {
          const startedAt = Date.now();
          await this.runSession(onStreaming).catch((err: unknown) => {
            if (!this.stopped) logger.warn({ err: describe(err) }, 'replication session ended with an error');
          });
          if (this.stopped) return;
          this.phase = 'reconnecting';
          this.metrics.sessionRestarted();
          if (Date.now() - startedAt < HEALTHY_SESSION_MS) throw new SessionEnded();
        },
        {
          policy: SESSION_BACKOFF,
          signal,
          random: this.random,
          shouldRetry: () => !this.stopped,
          onRetry: (_err, attempt, delayMs) => logger.info({ delayMs, attempt }, 'reconnecting to the slot'),
        },
      ).catch((err: unknown) => {
        if (!(err instanceof SessionEnded)) throw err;
      });
    }
  }

  private async runSession(onStreaming: () => void): Promise<void> {
    const { config, logger } = this.deps;
    const applicationName = replicationApplicationName(config.instanceId);
    await this.slots.waitUntilFree(applicationName, this.stopping.signal, () => (this.phase = 'standby'));
    if (this.stopped) return;
    const start = await this.slots.confirmedLsn();
    // Start-up phases after a crash (bench:recovery): the session's first change read, first records on the stream.
    let putOnce = false;
    const put: PutRecordsFn = async (records) => {
      const out = await this.deps.put(records);
      if (!putOnce) {
        putOnce = true;
        logger.info({ records: records.length }, 'first records put');
      }
      return out;
    };
    const producer = new KinesisProducer(put, {
      batcher: { aggregate: config.aggregate, compression: config.compression, limits: KINESIS_LIMITS, backoff: { baseMs: 50, maxMs: 5000 }, linger: { ms: config.lingerMs, ...LINGER_FULL } },
      maxInFlightBatches: config.maxInFlightBatches,
      logger,
      random: this.random,
      hotWorkspaces: this.hotWorkspaces,
      metrics: this.metrics,
    });
    const session = new CaptureSession(
      { start, source: config.source, db: config.dbName, partition: config.partition, maxBufferedEvents: config.maxBufferedEvents, serverSilenceMs: SERVER_SILENCE_MS, dlqBackoff: SESSION_BACKOFF },
      {
        producer,
        acknowledge: (lsn, ping) => repl.acknowledge(lsn, ping),
        backpressure: { pause: () => repl.pause(), resume: () => repl.resume() },
        dlq: this.deps.dlq,
        recordConfirmed: (lsn, now) => this.recordConfirmed(lsn, now),
        observer: this.observer,
        logger,
        metrics: this.metrics,
        now: Date.now,
        random: this.random,
        ...(this.deps.personalFields ? { personalFields: this.deps.personalFields } : {}),
      },
    );
    let failure: unknown;
    let readOnce = false;
    const repl = new ReplicationStream(
      // Text output of timestamps in UTC ISO form, whatever the server's defaults (capture/values.ts).
      { connectionString: config.databaseUrl, options: '-c TimeZone=UTC -c DateStyle=ISO', application_name: applicationName },
      { slot: config.slot, publication: config.publication },
      {
        started: () => {
          this.phase = 'streaming';
          logger.info({ slot: config.slot, from: formatLsn(start) }, 'streaming from the slot');
          onStreaming();
          this.observer.onStreaming?.();
        },
        keepalive: (walEnd) => session.keepalive(walEnd),
        data: (msg) => {
          if (!readOnce) {
            readOnce = true;
            logger.info('first change read');
          }
          session.data(msg);
        },
        error: (err) => {
          failure ??= err;
          void this.endSession(r);
        },
      },
    );
    const r: Running = { session, producer, repl, timers: [] };
    this.current = r;

    r.timers.push(
      setInterval(() => {
        void session.tick().then((state) => {
          if (state === 'silent') void this.endSession(r);
        });
      }, config.ackIntervalMs),
    );
    if (config.heartbeatIntervalMs > 0) r.timers.push(setInterval(() => void this.heartbeat(session), config.heartbeatIntervalMs));
    r.timers.push(setInterval(() => void this.slotStats(session), SLOT_STATS_MS));
    r.timers.push(setInterval(() => reportHotWorkspaces(this.hotWorkspaces, Date.now(), logger, this.metrics), HOT_WORKSPACE_REPORT_MS));

    try {
      // Resolves or rejects when the replication stream ends.
      await repl.run();
    } catch (err) {
      failure ??= err;
    } finally {
      await this.endSession(r);
    }
    if (failure && !this.stopped) throw failure;
  }

  /** Recorded before the server hears it: the slot is never ahead of the record (slot-guard.ts). */
  private async recordConfirmed(lsn: bigint, now: number): Promise<void> {
    if (!this.record || lsn <= this.record.confirmedLsn) return;
    this.record = { ...this.record, confirmedLsn: lsn, updatedAt: new Date(now).toISOString() };
    await this.deps.slotRecords.put(this.record);
  }

  /** On an idle database, a logical message moves the slot (and lets WAL be recycled). */
  private async heartbeat(session: CaptureSession): Promise<void> {
    if (session.ended || session.idleMs() < this.deps.config.heartbeatIntervalMs) return;
    try {
      await this.admin.query('SELECT pg_logical_emit_message(false, $1, $2)', [HEARTBEAT_PREFIX, '']);
    } catch (err) {
      this.deps.logger.warn({ err: describe(err) }, 'heartbeat failed');
    }
  }

  private async slotStats(session: CaptureSession): Promise<void> {
    if (session.ended) return;
    try {
      const retained = await this.slots.retainedWalBytes();
      if (retained !== undefined) this.metrics.retainedWal(retained);
    } catch (err) {
      this.deps.logger.debug({ err: describe(err) }, 'slot statistics query failed');
    }
  }

  private async endSession(r: Running): Promise<void> {
    if (r.session.ended) return;
    r.session.end();
    this.observer.onSessionEnd?.();
    for (const t of r.timers) clearInterval(t);
    r.producer.close();
    await r.repl.destroy().catch(() => undefined);
    if (this.current === r) this.current = undefined;
  }
}
