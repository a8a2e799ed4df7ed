// The capture service: one logical replication session at a time (pgoutput through
// pg-logical-replication), decoded by the pure ChangeDecoder, put on Kinesis by the producer,
// the slot acknowledged on a timer from the AckTracker. Any failure ends the session; the next
// one starts, after a full-jitter backoff, from the slot's confirmed position — so events after
// the last acknowledged one are sent again, with the same ids.
import { createHash } from 'node:crypto';
import pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { backoffDelay, sleep } from '../lib/backoff.js';
import type { DeadLetterStore } from '../lib/dlq.js';
import { TaskflowError } from '../lib/errors.js';
import { formatLsn, parseLsn } from '../lib/event-id.js';
import type { Logger } from '../lib/logger.js';
import { AckTracker, type InFlightTransaction } from './ack.js';
import { KINESIS_LIMITS } from './batcher.js';
import { checkChangedColumnsTriggers } from './changed-columns.js';
import type { CaptureConfig } from './config.js';
import { ChangeDecoder, type CommittedTransaction } from './decoder.js';
import { HotWorkspaceTracker } from './hot-workspaces.js';
import type { CaptureMetrics } from './metrics.js';
import { KinesisProducer, type PutRecordsFn, reportHotWorkspaces } from './producer.js';
import { checkCaptureRole, currentRole } from './db-role.js';
import { type SlotHolder, type SlotRecord, type SlotRecordStore, decideSlot, replicationApplicationName, slotHolderAction } from './slot-guard.js';
import { useCaptureColumnParsers } from './values.js';


export const CAPTURED_TABLES = ['projects', 'memberships', 'tasks', 'comments'] as const;
export const HEARTBEAT_PREFIX = 'taskflow.capture.heartbeat';
const INSUFFICIENT_PRIVILEGE = '42501';
/** No message (data or keepalive) from the server for this long ends the session. */
const SERVER_SILENCE_MS = 30_000;
const SESSION_BACKOFF = { baseMs: 200, maxMs: 10_000 };
/** How often a standby looks whether the slot is free: a takeover waits at most this long. */
const SLOT_POLL_MS = 200;
/** How long pg_terminate_backend waits for a stale walsender to exit. */
const TERMINATE_WAIT_MS = 2000;
/** How often hot workspaces are evaluated and reported (the window itself is configured). */
const HOT_WORKSPACE_REPORT_MS = 1000;

export interface CaptureDeps {
  config: CaptureConfig;
  logger: Logger;
  metrics?: CaptureMetrics;
  dlq: DeadLetterStore;
  slotRecords: SlotRecordStore;
  put: PutRecordsFn;
  random?: () => number;
}

/** Hook for snapshot watermarks: sees every transaction and logical message in stream order. */
export interface StreamObserver {
  onTransaction?(tx: CommittedTransaction, handle: InFlightTransaction, session: SessionApi): void;
  onMessage?(prefix: string, content: Uint8Array, session: SessionApi): void;
  /** A session started streaming. */
  onStreaming?(): void;
  /** A session ended: whatever waits for its stream will not get it. */
  onSessionEnd?(): void;
}

export interface SessionApi {
  /** Sends an event outside a WAL change (a snapshot row); `onDone` once Kinesis (or the DLQ) has it. */
  sendEvent(partitionKey: string, envelope: Record<string, unknown>, handle: InFlightTransaction, meta: { table: string; op: string }, onDone: () => void): void;
  deadLetter(reason: string, message: string, payload: Record<string, unknown>, table: string, onDone: () => void): void;
  ack: AckTracker;
}

interface Session {
  repl: LogicalReplicationService;
  producer: KinesisProducer;
  ack: AckTracker;
  timers: NodeJS.Timeout[];
  paused: boolean;
  lastServerMessageAt: number;
  lastDataAt: number;
  serverWalEnd: bigint;
  ended: boolean;
}

interface SlotRow {
  confirmed_flush_lsn: string | null;
  restart_lsn: string | null;
  plugin: string;
  database: string;
}

export class CaptureService {
  private readonly admin: pg.Pool;
  private readonly random: () => number;
  /** Outlives sessions: a workspace hot before a reconnect is still reported cooled after it. */
  private readonly hotWorkspaces: HotWorkspaceTracker;
  private stopped = false;
  private session: Session | undefined;
  private record: SlotRecord | undefined;
  private recordKey = '';
  private observer: StreamObserver = {};
  private running: Promise<void> | undefined;
  /** Set once the slot exists and the first session is streaming. */
  readonly ready: Promise<{ firstStart: boolean }>;
  private resolveReady!: (v: { firstStart: boolean }) => void;

  constructor(private readonly deps: CaptureDeps) {
    this.admin = new pg.Pool({ connectionString: deps.config.databaseUrl, max: 2, application_name: 'taskflow-capture-admin' });
    this.admin.on('error', (err) => deps.logger.warn({ err }, 'admin connection error'));
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
    this.stopped = true;
    const s = this.session;
    if (s) {
      // Let what was read reach Kinesis and confirm it, so a restart resends little.
      const timeout = new AbortController();
      await Promise.race([s.producer.drained(), sleep(5000, timeout.signal)]);
      timeout.abort();
      await this.acknowledge(s, Date.now());
      await this.endSession(s);
    }
    await this.running?.catch(() => undefined);
    await this.admin.end();
  }

  /** The pool capture uses for its own queries (heartbeats, slot statistics, snapshots). */
  get pool(): pg.Pool {
    return this.admin;
  }

  private async run(): Promise<void> {
    const firstStart = await this.prepare();
    let attempt = 0;
    let announced = false;
    while (!this.stopped) {
      const startedAt = Date.now();
      try {
        await this.runSession(() => {
          if (!announced) {
            announced = true;
            this.resolveReady({ firstStart });
          }
        });
      } catch (err) {
        if (this.stopped) break;
        this.deps.logger.warn({ err: describe(err) }, 'replication session ended with an error');
      }
      if (this.stopped) break;
      this.deps.metrics?.reconnects.inc();
      if (Date.now() - startedAt > 30_000) attempt = 0;
      const delay = backoffDelay(attempt++, this.random(), SESSION_BACKOFF);
      this.deps.logger.info({ delayMs: delay, attempt }, 'reconnecting to the slot');
      await sleep(delay);
    }
  }

  private async prepare(): Promise<boolean> {
    const { config, logger } = this.deps;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.prepareOnce();
      } catch (err) {
        if (err instanceof TaskflowError && !err.retriable) throw err;
        if (this.stopped) throw err;
        const delay = backoffDelay(attempt, this.random(), SESSION_BACKOFF);
        logger.warn({ err: describe(err), delayMs: delay, db: config.dbName }, 'cannot prepare the slot yet; retrying');
        await sleep(delay);
      }
    }
  }

  private async prepareOnce(): Promise<boolean> {
    const { config, logger } = this.deps;
    const role = await currentRole(this.admin);
    checkCaptureRole(role, config.allowSuperuser);
    const pub = await this.admin.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [config.publication]);
    if (pub.rowCount === 0) {
      await this.admin.query(`CREATE PUBLICATION ${pg.escapeIdentifier(config.publication)} FOR TABLE ${CAPTURED_TABLES.map((t) => pg.escapeIdentifier(t)).join(', ')}`).catch((err: unknown) => {
        if ((err as { code?: string }).code !== INSUFFICIENT_PRIVILEGE) throw err;
        throw new TaskflowError('CAPTURE_PUBLICATION_MISSING', `publication ${config.publication} does not exist and role "${role.name}" may not create it (it owns no table): apply the migrations (0003 creates taskflow_capture) or create it as the tables' owner`, { cause: err });
      });
      logger.info({ publication: config.publication, tables: CAPTURED_TABLES }, 'created publication');
    } else {
      const tables = await this.admin.query<{ tablename: string }>('SELECT tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1', [config.publication]);
      logger.info({ publication: config.publication, tables: tables.rows.map((r) => r.tablename) }, 'using existing publication');
    }
    if (config.requireChangedColumns) await checkChangedColumnsTriggers(this.admin, CAPTURED_TABLES);
    const sys = await this.admin.query<{ system_identifier: string }>('SELECT system_identifier::text FROM pg_control_system()');
    this.recordKey = `${sys.rows[0]!.system_identifier}/${config.dbName}/${config.slot}`;
    const record = await this.deps.slotRecords.get(this.recordKey);
    const slot = await this.slotRow();
    if (slot && (slot.plugin !== 'pgoutput' || slot.database !== config.dbName)) {
      throw new TaskflowError('SLOT_MISMATCH', `slot ${config.slot} exists for plugin ${slot.plugin} on database ${slot.database}, not pgoutput on ${config.dbName}`);
    }
    const decision = decideSlot(slot ? { exists: true, confirmedLsn: parseLsn(slot.confirmed_flush_lsn ?? '0/0') } : { exists: false }, record, config.acceptSlotGap);
    if (decision.action === 'refuse') {
      logger.error({ slot: config.slot, record: record && formatLsn(record.confirmedLsn) }, decision.message);
      throw new TaskflowError('SLOT_GAP', decision.message);
    }
    const now = new Date().toISOString();
    if (decision.action === 'create') {
      // PostgreSQL 17+: a failover slot, which the standby synchronizes (sync_replication_slots),
      // so capture resumes on a promoted replica without a gap; older servers have no such flag.
      const version = await this.admin.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
      const failover = Number(version.rows[0]!.v) >= 170000;
      const created = await this.admin.query<{ lsn: string }>(
        failover ? "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput', false, false, true)" : "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')",
        [config.slot],
      );
      const lsn = parseLsn(created.rows[0]!.lsn);
      this.record = { key: this.recordKey, confirmedLsn: lsn, createdLsn: lsn, updatedAt: now };
      await this.deps.slotRecords.put(this.record);
      logger.info({ slot: config.slot, lsn: formatLsn(lsn) }, `created replication slot (${decision.message})`);
      return decision.firstStart;
    }
    const confirmed = parseLsn(slot!.confirmed_flush_lsn ?? '0/0');
    this.record = record && record.confirmedLsn >= confirmed ? record : { key: this.recordKey, confirmedLsn: confirmed, createdLsn: record?.createdLsn ?? confirmed, updatedAt: now };
    if (this.record !== record) await this.deps.slotRecords.put(this.record);
    logger.info({ slot: config.slot, confirmed: formatLsn(confirmed) }, decision.message);
    return false;
  }

  private async slotRow(): Promise<SlotRow | undefined> {
    const r = await this.admin.query<SlotRow>(
      'SELECT confirmed_flush_lsn::text, restart_lsn::text, plugin, database FROM pg_replication_slots WHERE slot_name = $1',
      [this.deps.config.slot],
    );
    return r.rows[0];
  }

  /** The backend reading the slot now, with its application_name. */
  private async slotHolder(): Promise<SlotHolder | undefined> {
    const r = await this.admin.query<{ pid: number; application_name: string | null }>(
      'SELECT s.active_pid AS pid, a.application_name FROM pg_replication_slots s LEFT JOIN pg_stat_activity a ON a.pid = s.active_pid WHERE s.slot_name = $1 AND s.active_pid IS NOT NULL',
      [this.deps.config.slot],
    );
    const row = r.rows[0];
    return row ? { pid: row.pid, applicationName: row.application_name ?? '' } : undefined;
  }

  /**
   * Returns once the slot has no reader (slot-guard.ts slotHolderAction): a walsender left by
   * this instance's previous process is terminated at once; another instance's (the active one
   * of an active/standby pair) is waited for, looking every SLOT_POLL_MS, so a standby takes over
   * within that of the active one letting go rather than after a growing backoff.
   */
  private async waitForSlot(applicationName: string): Promise<void> {
    const { logger } = this.deps;
    let waitingFor: string | undefined;
    while (!this.stopped) {
      const action = slotHolderAction(await this.slotHolder(), applicationName);
      if (action.action === 'start') return;
      if (action.action === 'terminate') {
        logger.warn({ pid: action.pid, applicationName }, "terminating the walsender of this instance's previous process, which still holds the slot");
        await this.admin.query('SELECT pg_terminate_backend($1, $2)', [action.pid, TERMINATE_WAIT_MS]);
        continue;
      }
      if (waitingFor !== action.holder) logger.info({ holder: action.holder, slot: this.deps.config.slot }, 'standby: the slot is read by another instance; waiting for it');
      waitingFor = action.holder;
      await sleep(SLOT_POLL_MS);
    }
  }

  private async runSession(onStreaming: () => void): Promise<void> {
    const { config, logger, metrics } = this.deps;
    const applicationName = replicationApplicationName(config.instanceId);
    await this.waitForSlot(applicationName);
    if (this.stopped) return;
    const slot = await this.slotRow();
    if (!slot) throw new TaskflowError('SLOT_MISSING', `replication slot ${config.slot} disappeared`);
    const start = parseLsn(slot.confirmed_flush_lsn ?? '0/0');
    const repl = new LogicalReplicationService(
      // Text output of timestamps in UTC ISO form, whatever the server's defaults (capture/values.ts).
      { connectionString: config.databaseUrl, options: '-c TimeZone=UTC -c DateStyle=ISO', application_name: applicationName },
      { acknowledge: { auto: false, timeoutSeconds: 0 } },
    );
    const producer = new KinesisProducer(this.deps.put, {
      batcher: { aggregate: config.aggregate, compression: config.compression, limits: KINESIS_LIMITS, backoff: { baseMs: 50, maxMs: 5000 } },
      maxInFlightBatches: config.maxInFlightBatches,
      logger,
      random: this.random,
      hotWorkspaces: this.hotWorkspaces,
      ...(metrics ? { metrics } : {}),
    });
    const ack = new AckTracker(start, { keepaliveMs: 10_000 });
    const decoder = new ChangeDecoder({ source: config.source, db: config.dbName });
    const s: Session = { repl, producer, ack, timers: [], paused: false, lastServerMessageAt: Date.now(), lastDataAt: Date.now(), serverWalEnd: start, ended: false };
    this.session = s;
    const api: SessionApi = {
      ack,
      sendEvent: (pk, env, handle, meta, onDone) => {
        this.deps.metrics?.events.inc({ table: meta.table, op: meta.op });
        this.sendEvent(s, pk, env, handle, meta, onDone);
      },
      deadLetter: (reason, message, payload, table, onDone) => this.deadLetter(s, reason, message, Buffer.from(JSON.stringify(payload)), { table }, onDone),
    };

    let failure: unknown;
    repl.on('error', (err: Error) => {
      failure ??= err;
      void this.endSession(s);
    });
    repl.on('start', () => {
      logger.info({ slot: config.slot, from: formatLsn(start) }, 'streaming from the slot');
      onStreaming();
      this.observer.onStreaming?.();
    });
    repl.on('heartbeat', (lsn: string) => {
      s.lastServerMessageAt = Date.now();
      const walEnd = parseLsn(lsn);
      if (walEnd > s.serverWalEnd) s.serverWalEnd = walEnd;
      // A keepalive between transactions: everything before it has reached us.
      if (!decoder.inTransaction) ack.position(walEnd);
    });
    repl.on('data', (_lsn: string, msg: Pgoutput.Message) => {
      s.lastServerMessageAt = Date.now();
      s.lastDataAt = s.lastServerMessageAt;
      useCaptureColumnParsers(msg);
      const out = decoder.handle(msg);
      if (!out) return;
      if (out.kind === 'message') {
        ack.position(out.lsn);
        this.observer.onMessage?.(out.prefix, out.content, api);
        return;
      }
      this.onTransaction(s, out.tx, api);
    });

    s.timers.push(setInterval(() => void this.acknowledge(s, Date.now()), config.ackIntervalMs));
    if (config.heartbeatIntervalMs > 0) s.timers.push(setInterval(() => void this.heartbeat(s), config.heartbeatIntervalMs));
    s.timers.push(setInterval(() => void this.slotStats(s), 5000));
    s.timers.push(setInterval(() => reportHotWorkspaces(this.hotWorkspaces, Date.now(), logger, metrics), HOT_WORKSPACE_REPORT_MS));

    const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [config.publication], messages: true });
    try {
      // Resolves or rejects when the replication stream ends. '0/0': the slot's confirmed position.
      await repl.subscribe(plugin, config.slot, '0/00000000');
    } catch (err) {
      failure ??= err;
    } finally {
      await this.endSession(s);
    }
    if (failure && !this.stopped) throw failure;
  }

  private onTransaction(s: Session, tx: CommittedTransaction, api: SessionApi): void {
    const { metrics } = this.deps;
    const handle = s.ack.transaction(tx.commitEndLsn, tx.events.length + tx.deadRows.length);
    const commitMs = Date.parse(tx.commitTime);
    // The changes still travel, without an actor: a bad actor message is the application's bug, not a reason to stop the stream.
    if (tx.actorProblem) this.deps.logger.warn({ xid: tx.xid, lsn: formatLsn(tx.commitLsn), problem: tx.actorProblem }, 'actor message not attached');
    const delivered = () => {
      s.ack.delivered(handle);
      if (handle.pending === 0) {
        const lag = Math.max(0, Date.now() - commitMs) / 1000;
        metrics?.commitToAck.observe(lag);
        metrics?.lagSeconds.set(lag);
      }
    };
    if (tx.changedUnknown > 0) {
      metrics?.changedUnknown.inc(tx.changedUnknown);
      this.deps.logger.warn({ xid: tx.xid, lsn: formatLsn(tx.commitLsn), updates: tx.changedUnknown }, 'updates without a changed-columns message: their `changed` lists every column (is the taskflow_changed_columns trigger disabled?)');
    }
    for (const ev of tx.events) {
      metrics?.events.inc({ table: ev.table, op: ev.op });
      this.sendEvent(s, ev.partitionKey, ev.envelope, handle, { table: ev.table, op: ev.op }, delivered);
    }
    for (const dead of tx.deadRows) {
      this.deadLetter(s, dead.reason, dead.message, Buffer.from(JSON.stringify(dead.payload)), { eventId: dead.id, table: dead.table, lsn: formatLsn(tx.commitLsn) }, delivered);
    }
    this.observer.onTransaction?.(tx, handle, api);
  }

  private sendEvent(s: Session, partitionKey: string, envelope: Record<string, unknown>, handle: InFlightTransaction, meta: { table: string; op: string }, onDone?: () => void): void {
    const done = onDone ?? (() => s.ack.delivered(handle));
    const data = Buffer.from(JSON.stringify(envelope));
    const r = s.producer.send({ partitionKey, data, onAck: done });
    if (!r.ok) {
      this.deadLetter(s, r.reason, r.message, data, { eventId: String(envelope.id), table: meta.table, op: meta.op }, done);
      return;
    }
    if (!s.paused && s.producer.pendingEvents > this.deps.config.maxBufferedEvents) {
      s.paused = true;
      socketOf(s.repl)?.pause();
    }
  }

  /** Dead letters count as delivered once stored; storing is retried until the session ends. */
  private deadLetter(s: Session, reason: string, message: string, payload: Uint8Array, origin: Record<string, string>, done: () => void): void {
    this.deps.metrics?.deadLetters.inc({ reason });
    this.deps.logger.warn({ reason, origin }, `dead letter: ${message}`);
    // Resent after a restart, an event keeps its id (a snapshot row: its content), so its dead
    // letter is stored once.
    const dedupeKey = origin.eventId ?? `${origin.table ?? ''}:${createHash('sha256').update(payload).digest('hex')}`;
    void (async () => {
      for (let attempt = 0; !s.ended; attempt++) {
        try {
          await this.deps.dlq.put({ source: 'capture', reason, message, payload, origin, dedupeKey });
          done();
          return;
        } catch (err) {
          this.deps.logger.warn({ err: describe(err) }, 'dead-letter store failed; retrying');
          await sleep(backoffDelay(attempt, this.random(), SESSION_BACKOFF));
        }
      }
    })();
  }

  private acking = false;
  private async acknowledge(s: Session, now: number): Promise<void> {
    if (s.ended || this.acking) return;
    this.acking = true;
    try {
      if (s.paused && s.producer.pendingEvents < this.deps.config.maxBufferedEvents / 2) {
        s.paused = false;
        s.lastServerMessageAt = now; // we were not reading: the silence was ours
        socketOf(s.repl)?.resume();
      }
      if (!s.paused && now - s.lastServerMessageAt > SERVER_SILENCE_MS) {
        this.deps.logger.warn({ silentMs: now - s.lastServerMessageAt }, 'no message from the server; reconnecting');
        await this.endSession(s);
        return;
      }
      const update = s.ack.tick(now);
      if (!update) return;
      if (this.record && update.lsn > this.record.confirmedLsn) {
        // Recorded before the server hears it: the slot is never ahead of the record (slot-guard.ts).
        this.record = { ...this.record, confirmedLsn: update.lsn, updatedAt: new Date(now).toISOString() };
        await this.deps.slotRecords.put(this.record);
      }
      if (s.ended) return;
      // pg-logical-replication reports lsn + 1 as flushed; confirming one past the commit end
      // could skip a transaction whose commit record starts exactly there.
      await s.repl.acknowledge(formatLsn(update.lsn - 1n), update.ping);
      this.deps.metrics?.acknowledgedLsn.set(Number(update.lsn));
      this.deps.metrics?.lagBytes.set(Number(s.serverWalEnd > update.lsn ? s.serverWalEnd - update.lsn : 0n));
      if (s.ack.inFlight === 0) this.deps.metrics?.lagSeconds.set(0);
    } catch (err) {
      this.deps.logger.warn({ err: describe(err) }, 'acknowledging the slot failed');
    } finally {
      this.acking = false;
    }
  }

  /** On an idle database, a logical message moves the slot (and lets WAL be recycled). */
  private async heartbeat(s: Session): Promise<void> {
    if (s.ended || Date.now() - s.lastDataAt < this.deps.config.heartbeatIntervalMs) return;
    try {
      await this.admin.query('SELECT pg_logical_emit_message(false, $1, $2)', [HEARTBEAT_PREFIX, '']);
    } catch (err) {
      this.deps.logger.warn({ err: describe(err) }, 'heartbeat failed');
    }
  }

  private async slotStats(s: Session): Promise<void> {
    if (s.ended || !this.deps.metrics) return;
    try {
      const r = await this.admin.query<{ retained: string | null }>(
        'SELECT (pg_current_wal_lsn() - restart_lsn)::text AS retained FROM pg_replication_slots WHERE slot_name = $1',
        [this.deps.config.slot],
      );
      const retained = r.rows[0]?.retained;
      if (retained != null) this.deps.metrics.retainedWal.set(Number(retained));
    } catch (err) {
      this.deps.logger.debug({ err: describe(err) }, 'slot statistics query failed');
    }
  }

  private async endSession(s: Session): Promise<void> {
    if (s.ended) return;
    s.ended = true;
    this.observer.onSessionEnd?.();
    for (const t of s.timers) clearInterval(t);
    s.producer.close();
    await s.repl.destroy().catch(() => undefined);
    if (this.session === s) this.session = undefined;
  }
}

/** The replication connection's socket, for backpressure (pg's Connection keeps it as `stream`). */
function socketOf(repl: LogicalReplicationService): { pause(): void; resume(): void } | undefined {
  const connection = (repl as unknown as { _connection?: { stream?: { pause(): void; resume(): void } } })._connection;
  return connection?.stream;
}

function describe(err: unknown): { message: string; code?: string } {
  if (err instanceof Error) return { message: err.message, ...((err as { code?: string }).code ? { code: (err as { code?: string }).code } : {}) };
  return { message: String(err) };
}
