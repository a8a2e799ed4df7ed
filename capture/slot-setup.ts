// The slot and its publication, before any session: create what is missing, refuse a slot that
// lost events (slot-guard.ts decides, this adapter asks the server), and find out who reads the
// slot now, so a session starts only once it is free.
import pg from 'pg';
import { sleep } from '../lib/backoff.js';
import { TaskflowError } from '../lib/errors.js';
import { formatLsn, parseLsn } from '../lib/event-id.js';
import type { Logger } from '../lib/logger.js';
import { ENTITIES, type EntityName } from '../schemas/kinds.js';
import { changedColumnsTables } from './changed-columns.js';
import type { CaptureConfig } from './config.js';
import { checkCaptureRole, currentRole } from './db-role.js';
import { partitionTables } from './partitions.js';
import { type SlotHolder, type SlotRecord, type SlotRecordStore, decideSlot, slotHolderAction } from './slot-guard.js';

/** Parents before children, so an initial snapshot delivers a project before its tasks. */
const SNAPSHOT_ORDER = ['project', 'membership', 'task', 'comment'] as const satisfies readonly EntityName[];
export const CAPTURED_TABLES = SNAPSHOT_ORDER.map((e) => ENTITIES[e].table);

const INSUFFICIENT_PRIVILEGE = '42501';
/** How often a standby looks whether the slot is free: a takeover waits at most this long. */
const SLOT_POLL_MS = 200;
/** Reads of slot and record at start when a peer creates the slot meanwhile (it happens once). */
const SLOT_READ_ATTEMPTS = 3;
/** How long pg_terminate_backend waits for a stale walsender to exit. */
const TERMINATE_WAIT_MS = 2000;

export interface PreparedSlot {
  /** The slot was created now: nothing was ever captured from this database. */
  firstStart: boolean;
  /** What this capture recorded of the slot, never behind the slot itself. */
  record: SlotRecord;
}

type SlotSettings = Pick<CaptureConfig, 'dbName' | 'slot' | 'publication' | 'partition' | 'allowSuperuser' | 'acceptSlotGap'>;

/** CREATE PUBLICATION for the tables of `config`'s partition, each with its row filter (capture/partitions.ts). */
export function publicationSql(config: Pick<CaptureConfig, 'publication' | 'partition'>): string {
  const tables = partitionTables(config.partition, CAPTURED_TABLES).map((t) => `${pg.escapeIdentifier(t.table)}${t.filter ? ` WHERE (${t.filter})` : ''}`);
  return `CREATE PUBLICATION ${pg.escapeIdentifier(config.publication)} FOR TABLE ${tables.join(', ')}`;
}

export class SlotSetup {
  constructor(
    private readonly admin: pg.Pool,
    private readonly config: SlotSettings,
    private readonly slotRecords: SlotRecordStore,
    private readonly logger: Logger,
  ) {}

  /** Checks the role, creates the publication and slot if missing, and reconciles the slot record. */
  async prepare(): Promise<PreparedSlot> {
    const { config, logger, admin } = this;
    const role = await currentRole(admin);
    checkCaptureRole(role, config.allowSuperuser);
    await this.ensurePublication(role.name);
    logger.info({ tables: await changedColumnsTables(admin, CAPTURED_TABLES) }, "tables opted in to changed-column capture (the others' updates list every column)");
    const sys = await admin.query<{ system_identifier: string }>('SELECT system_identifier::text FROM pg_control_system()');
    const key = `${sys.rows[0]!.system_identifier}/${config.dbName}/${config.slot}`;
    const { slot, record } = await this.slotAndRecord(key);
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
      const lsn = await this.createSlot();
      const created = { key, confirmedLsn: lsn, createdLsn: lsn, updatedAt: now };
      await this.slotRecords.put(created);
      logger.info({ slot: config.slot, lsn: formatLsn(lsn) }, `created replication slot (${decision.message})`);
      return { firstStart: decision.firstStart, record: created };
    }
    const confirmed = parseLsn(slot!.confirmed_flush_lsn ?? '0/0');
    const current = record && record.confirmedLsn >= confirmed ? record : { key, confirmedLsn: confirmed, createdLsn: record?.createdLsn ?? confirmed, updatedAt: now };
    if (current !== record) await this.slotRecords.put(current);
    logger.info({ slot: config.slot, confirmed: formatLsn(confirmed) }, decision.message);
    return { firstStart: false, record: current };
  }

  /**
   * The slot first, then its record: a running capture records a position before the server hears
   * it, so a record read after the slot is never behind the slot read before it (read the other
   * way round, an active peer confirming in between looks like a gap: SLOT_GAP). A slot missing
   * at the first read but there right after was just created by a peer starting at the same time,
   * its record possibly read already: both are read again, rather than taken for a dropped slot.
   */
  private async slotAndRecord(key: string): Promise<{ slot: Awaited<ReturnType<SlotSetup['slotRow']>>; record: SlotRecord | undefined }> {
    for (let attempt = 1; ; attempt += 1) {
      const slot = await this.slotRow();
      const record = await this.slotRecords.get(key);
      if (slot || attempt === SLOT_READ_ATTEMPTS || !(await this.slotRow())) return { slot, record };
    }
  }

  /** The slot's confirmed position now (a session streams from there). */
  async confirmedLsn(): Promise<bigint> {
    const slot = await this.slotRow();
    if (!slot) throw new TaskflowError('SLOT_MISSING', `replication slot ${this.config.slot} disappeared`);
    return parseLsn(slot.confirmed_flush_lsn ?? '0/0');
  }

  /**
   * Returns once the slot has no reader (slot-guard.ts slotHolderAction): a walsender left by
   * this instance's previous process is terminated at once; another instance's (the active one
   * of an active/standby pair) is waited for, looking every SLOT_POLL_MS, so a standby takes over
   * within that of the active one letting go rather than after a growing backoff. `onStandby`
   * is told each time it finds another instance reading.
   */
  async waitUntilFree(applicationName: string, signal: AbortSignal, onStandby: () => void = () => undefined): Promise<void> {
    let waitingFor: string | undefined;
    while (!signal.aborted) {
      const action = slotHolderAction(await this.slotHolder(), applicationName);
      if (action.action === 'start') return;
      if (action.action === 'terminate') {
        this.logger.warn({ pid: action.pid, applicationName }, "terminating the walsender of this instance's previous process, which still holds the slot");
        await this.admin.query('SELECT pg_terminate_backend($1, $2)', [action.pid, TERMINATE_WAIT_MS]);
        continue;
      }
      onStandby();
      if (waitingFor !== action.holder) this.logger.info({ holder: action.holder, slot: this.config.slot }, 'standby: the slot is read by another instance; waiting for it');
      waitingFor = action.holder;
      await sleep(SLOT_POLL_MS, signal);
    }
  }

  /** WAL the slot keeps on the server, or undefined if the slot is gone. */
  async retainedWalBytes(): Promise<number | undefined> {
    const r = await this.admin.query<{ retained: string | null }>(
      'SELECT (pg_current_wal_lsn() - restart_lsn)::text AS retained FROM pg_replication_slots WHERE slot_name = $1',
      [this.config.slot],
    );
    const retained = r.rows[0]?.retained;
    return retained == null ? undefined : Number(retained);
  }

  private async ensurePublication(roleName: string): Promise<void> {
    const { config, logger, admin } = this;
    const pub = await admin.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [config.publication]);
    if (pub.rowCount !== 0) {
      const tables = await admin.query<{ tablename: string; rowfilter: string | null }>('SELECT tablename, rowfilter FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1', [config.publication]);
      if (config.partition.count > 1) this.checkPartitionFilters(tables.rows);
      logger.info({ publication: config.publication, tables: tables.rows.map((r) => r.tablename) }, 'using existing publication');
      return;
    }
    const sql = publicationSql(config);
    await admin.query(sql).catch((err: unknown) => {
      if ((err as { code?: string }).code !== INSUFFICIENT_PRIVILEGE) throw err;
      const how = config.partition.count > 1 ? `create it as the tables' owner: ${sql}` : "apply the migrations (0003 creates taskflow_capture) or create it as the tables' owner";
      throw new TaskflowError('CAPTURE_PUBLICATION_MISSING', `publication ${config.publication} does not exist and role "${roleName}" may not create it (it owns no table): ${how}`, { cause: err });
    });
    logger.info({ publication: config.publication, tables: CAPTURED_TABLES, partition: config.partition }, 'created publication');
  }

  /** A partition's publication must filter exactly as its name says, or workspaces would be read twice or never. */
  private checkPartitionFilters(rows: readonly { tablename: string; rowfilter: string | null }[]): void {
    const want = partitionTables(this.config.partition, CAPTURED_TABLES).map((t) => `${t.table}:${t.filter ? `(${t.filter})` : ''}`);
    const have = rows.map((r) => `${r.tablename}:${r.rowfilter ?? ''}`);
    if ([...want].sort().join('\n') !== [...have].sort().join('\n')) {
      throw new TaskflowError('CAPTURE_PUBLICATION_MISMATCH', `publication ${this.config.publication} does not select partition ${this.config.partition.index} of ${this.config.partition.count}: it has ${have.join(', ')}; expected ${want.join(', ')} (${publicationSql(this.config)})`);
    }
  }

  private async createSlot(): Promise<bigint> {
    // PostgreSQL 17+: a failover slot, which the standby synchronizes (sync_replication_slots),
    // so capture resumes on a promoted replica without a gap; older servers have no such flag.
    const version = await this.admin.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
    const failover = Number(version.rows[0]!.v) >= 170000;
    const created = await this.admin.query<{ lsn: string }>(
      failover ? "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput', false, false, true)" : "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')",
      [this.config.slot],
    );
    return parseLsn(created.rows[0]!.lsn);
  }

  private async slotRow(): Promise<{ confirmed_flush_lsn: string | null; plugin: string; database: string } | undefined> {
    const r = await this.admin.query<{ confirmed_flush_lsn: string | null; plugin: string; database: string }>(
      'SELECT confirmed_flush_lsn::text, plugin, database FROM pg_replication_slots WHERE slot_name = $1',
      [this.config.slot],
    );
    return r.rows[0];
  }

  /** The backend reading the slot now, with its application_name. */
  private async slotHolder(): Promise<SlotHolder | undefined> {
    const r = await this.admin.query<{ pid: number; application_name: string | null }>(
      'SELECT s.active_pid AS pid, a.application_name FROM pg_replication_slots s LEFT JOIN pg_stat_activity a ON a.pid = s.active_pid WHERE s.slot_name = $1 AND s.active_pid IS NOT NULL',
      [this.config.slot],
    );
    const row = r.rows[0];
    return row ? { pid: row.pid, applicationName: row.application_name ?? '' } : undefined;
  }
}
