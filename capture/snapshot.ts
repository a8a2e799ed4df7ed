// Incremental snapshots with watermarks (Netflix DBLog; Debezium incremental snapshots), run by
// the capture service while it streams, without locking tables:
//   1. a LOW watermark (transactional logical message) goes into the WAL,
//   2. a chunk of rows is read by primary key (plain SELECT … WHERE id > last ORDER BY id LIMIT n),
//   3. a HIGH watermark goes into the WAL.
// In the stream, every change to the table between LOW and HIGH removes that key from the chunk
// (the streamed change is at least as new as what the SELECT saw); at HIGH the remaining rows are
// emitted as `r` events positioned right after the HIGH transaction (its commit LSN, index 0…n-1),
// so a reader applying events in order ends with the table's current state.
// WAL order is not visibility order: a transaction's commit record can precede LOW while the
// transaction becomes visible only after the chunk's snapshot was taken (its backend had not yet
// left the proc array), so that change would precede LOW and the chunk would overwrite it with the
// older row. The chunk is therefore read in a REPEATABLE READ transaction that also returns its
// snapshot, and a change streamed shortly before LOW (since the chunk began) by a transaction that
// snapshot did not see removes its key too.
// A removed row is safe to leave to the stream when the stream carries the whole row. An update
// that left an unchanged TOASTed column out (`omitted`) does not: a reader that never had the row
// would keep it without that column. A row only such updates touched is therefore emitted with
// their values laid over it in stream order — every column then holds its value as of HIGH.
//
// Requests arrive in the stream too: `taskflow capture snapshot` emits a non-transactional
// logical message (prefix taskflow.capture.signal), so the CLI needs nothing but the database.
// Progress (the last key done, rows done/estimated) is kept in DynamoDB after each chunk is
// acknowledged by Kinesis: a stopped or interrupted snapshot resumes from there.
// One snapshot job runs at a time; a new request replaces an unfinished different one.
import { type DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type pg from 'pg';
import type { Logger } from '../lib/logger.js';
import { ENTITIES, type EntityName } from '../schemas/kinds.js';
import { isEntityChange } from '../schemas/types.js';
import type { InFlightTransaction } from './ack.js';
import { type CommittedTransaction, type Row, buildEntityEnvelope } from './decoder.js';
import { versionForColumns } from '../schemas/versions.js';
import { type Partition, partitionRowFilter } from './partitions.js';
import type { SessionApi, StreamObserver } from './session.js';
import { textParserFor } from './values.js';

export const SIGNAL_PREFIX = 'taskflow.capture.signal';
export const WATERMARK_PREFIX = 'taskflow.capture.watermark';

export interface SnapshotRequest {
  tables: string[];
  workspace?: string;
  /** The one consumer (by name) the snapshot is for (`--for`): its events carry `target`, every other consumer skips them. */
  target?: string;
}

export interface SnapshotJob extends SnapshotRequest {
  id: string;
  status: 'running' | 'stopped' | 'done';
  /** Index in `tables` of the table in progress. */
  tableIndex: number;
  /** Last primary key done in that table ('' = from the start). */
  lastKey: string;
  rowsDone: number;
  rowsEstimated: number;
  startedAt: string;
  updatedAt: string;
}

export interface SnapshotJobStore {
  get(): Promise<SnapshotJob | undefined>;
  put(job: SnapshotJob): Promise<void>;
}

export type Signal = { action: 'snapshot'; request: SnapshotRequest } | { action: 'stop-snapshot' };

export function parseSignal(content: Uint8Array): Signal | undefined {
  try {
    const s = JSON.parse(Buffer.from(content).toString('utf8')) as Signal;
    if (s.action === 'stop-snapshot') return s;
    if (s.action === 'snapshot' && Array.isArray(s.request?.tables) && s.request.tables.every((t) => TABLES.has(t)) && (s.request.target === undefined || isConsumerName(s.request.target))) return s;
  } catch {
    // not ours
  }
  return undefined;
}

/** A consumer's (lease) name, as the envelope's `target` may hold it (schemas/validate.ts). */
export function isConsumerName(name: unknown): name is string {
  return typeof name === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name);
}

const TABLES = new Map<string, EntityName>((Object.keys(ENTITIES) as EntityName[]).map((e) => [ENTITIES[e].table, e]));

/** A snapshot's visibility, as pg_current_snapshot() gives it, in 32-bit xids (those pgoutput's BEGIN carries). */
export interface XidSnapshot {
  xmin: number;
  xmax: number;
  xip: ReadonlySet<number>;
}

/** 'xmin:xmax:xip,…' of pg_current_snapshot()::text; its 64-bit xids reduced to their 32-bit xid. */
export function parseSnapshot(text: string): XidSnapshot {
  const [xmin, xmax, xip] = text.split(':');
  const xid32 = (x: string) => Number(BigInt(x) & 0xffffffffn);
  if (xmin === undefined || xmax === undefined || xip === undefined) throw new Error(`not a pg_snapshot: ${text}`);
  return { xmin: xid32(xmin), xmax: xid32(xmax), xip: new Set(xip === '' ? [] : xip.split(',').map(xid32)) };
}

/** Postgres' TransactionIdPrecedes: xids compare modulo 2^32. */
function precedes(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/** Whether the committed transaction `xid` is visible in `snapshot` (as XidInMVCCSnapshot decides). */
export function visibleIn(snapshot: XidSnapshot, xid: number): boolean {
  if (precedes(xid, snapshot.xmin)) return true;
  if (!precedes(xid, snapshot.xmax)) return false;
  return !snapshot.xip.has(xid);
}

/**
 * What one streamed transaction did to the chunk's table: the keys it wrote whole rows of (insert,
 * update, delete; 'all' when it truncated the table), and the row images of its updates that left
 * columns out (a copy: the stream's own may be encrypted in place).
 */
export interface TableTouch {
  xid: number;
  whole: readonly string[] | 'all';
  partial: readonly Row[];
}

/**
 * The chunk's rows to emit at HIGH (pure). A change is newer than the chunk's read when it is
 * between LOW and HIGH, or before LOW by a transaction the read's snapshot did not see. A row a
 * newer change wrote whole is left to the stream; a row only newer partial updates touched gets
 * their values laid over it in stream order; the others go as read.
 */
export function settleChunk(rows: readonly Row[], window: { inside: readonly TableTouch[]; before: readonly TableTouch[] }, snapshot: XidSnapshot): Row[] {
  const newer = [...window.before.filter((t) => !visibleIn(snapshot, t.xid)), ...window.inside];
  if (newer.some((t) => t.whole === 'all')) return [];
  const whole = new Set(newer.flatMap((t) => t.whole as readonly string[]));
  // per key, its partial images laid over one another in stream order
  const overlays = new Map<string, Row>();
  for (const image of newer.flatMap((t) => t.partial)) overlays.set(String(image.id), { ...overlays.get(String(image.id)), ...image });
  return rows.filter((row) => !whole.has(String(row.id))).map((row) => ({ ...row, ...overlays.get(String(row.id)) }));
}

interface OpenChunk {
  name: string;
  table: string;
  /** The job's `target` (the one consumer its events are for), if any. */
  target: string | undefined;
  rows: Row[] | undefined;
  /** The chunk's read's snapshot, set with `rows`. */
  snapshot: XidSnapshot | undefined;
  windowOpen: boolean;
  /** Touches streamed from the chunk's start up to LOW, and between LOW and HIGH. */
  before: TableTouch[];
  inside: TableTouch[];
  resolve: (emitted: number) => void;
  reject: (err: Error) => void;
}

export class DynamoSnapshotJobStore implements SnapshotJobStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly table: string,
    private readonly key: string,
  ) {}
  async get(): Promise<SnapshotJob | undefined> {
    const out = await this.client.send(new GetItemCommand({ TableName: this.table, Key: { id: { S: `capture-snapshot/${this.key}` } }, ConsistentRead: true }));
    return out.Item?.job?.S ? (JSON.parse(out.Item.job.S) as SnapshotJob) : undefined;
  }
  async put(job: SnapshotJob): Promise<void> {
    await this.client.send(new PutItemCommand({ TableName: this.table, Item: { id: { S: `capture-snapshot/${this.key}` }, job: { S: JSON.stringify(job) } } }));
  }
}

export class SnapshotRunner implements StreamObserver {
  private chunk: OpenChunk | undefined;
  private running: Promise<void> | undefined;
  private stopRequested = false;
  private chunkSeq = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly store: SnapshotJobStore,
    private readonly opts: { chunkSize: number; source: string; db: string; logger: Logger; now?: () => Date; partition?: Partition },
  ) {}

  /** `AND <row filter>` reading only this instance's partition (every partition's runner hears a signal and takes its share). */
  private get partitionWhere(): string {
    const filter = this.opts.partition && partitionRowFilter(this.opts.partition);
    return filter ? ` AND ${filter}` : '';
  }

  /** Starts (or resumes) a job; resolves when it is done, stopped or failed. */
  request(req: SnapshotRequest): void {
    void this.store.get().then(async (existing) => {
      const same = existing && existing.status !== 'done' && existing.tables.join(',') === req.tables.join(',') && existing.workspace === req.workspace && existing.target === req.target;
      const now = this.now();
      const job: SnapshotJob = same
        ? { ...existing, status: 'running', updatedAt: now }
        : { id: `${Date.now().toString(36)}`, tables: req.tables, ...(req.workspace ? { workspace: req.workspace } : {}), ...(req.target ? { target: req.target } : {}), status: 'running', tableIndex: 0, lastKey: '', rowsDone: 0, rowsEstimated: await this.estimate(req), startedAt: now, updatedAt: now };
      await this.store.put(job);
      this.opts.logger.info({ job: job.id, tables: job.tables, workspace: job.workspace, target: job.target, resumedFrom: same ? job.lastKey || '(start)' : undefined }, same ? 'resuming snapshot' : 'starting snapshot');
      this.resumeIfRunning();
    }).catch((err: unknown) => this.opts.logger.error({ err: (err as Error).message }, 'could not start the snapshot (progress store unavailable?); request it again'));
  }

  /** On (re)start of streaming: continue a job that was running. */
  resumeIfRunning(): void {
    if (this.running) return;
    this.stopRequested = false;
    this.running = this.loop()
      .catch((err: unknown) => this.opts.logger.error({ err: (err as Error).message }, 'snapshot paused: progress store unavailable; it resumes with the next session or request'))
      .finally(() => (this.running = undefined));
  }

  private now(): string {
    return (this.opts.now ?? (() => new Date()))().toISOString();
  }

  private async estimate(req: SnapshotRequest): Promise<number> {
    let total = 0;
    for (const table of req.tables) {
      // the planner's estimate for a whole big table (never analysed: -1); an exact count otherwise
      const r = await this.pool.query<{ n: string }>('SELECT reltuples::bigint::text AS n FROM pg_class WHERE oid = $1::regclass', [table]);
      const estimate = Number(r.rows[0]?.n ?? -1);
      if (!req.workspace && estimate >= 100_000) {
        total += Math.round(estimate / (this.opts.partition?.count ?? 1));
        continue;
      }
      const c = await this.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table} WHERE ${req.workspace ? 'workspace_id = $1' : 'true'}${this.partitionWhere}`, req.workspace ? [req.workspace] : []);
      total += Number(c.rows[0]?.n ?? 0);
    }
    return total;
  }

  private async loop(): Promise<void> {
    for (;;) {
      const job = await this.store.get();
      if (!job || job.status !== 'running') return;
      if (this.stopRequested) {
        await this.store.put({ ...job, status: 'stopped', updatedAt: this.now() });
        this.opts.logger.info({ job: job.id, rowsDone: job.rowsDone }, 'snapshot stopped; run the same command again to resume');
        return;
      }
      const table = job.tables[job.tableIndex];
      if (table === undefined) {
        await this.store.put({ ...job, status: 'done', updatedAt: this.now() });
        this.opts.logger.info({ job: job.id, rows: job.rowsDone }, 'snapshot done');
        return;
      }
      let result: { emitted: number; lastKey: string | undefined };
      try {
        result = await this.runChunk(table, job);
      } catch (err) {
        // the session ended (or the database is away): retry this chunk later
        this.opts.logger.warn({ err: (err as Error).message, job: job.id }, 'snapshot chunk failed; will retry');
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      const next: SnapshotJob =
        result.lastKey === undefined
          ? { ...job, tableIndex: job.tableIndex + 1, lastKey: '', updatedAt: this.now() }
          : { ...job, lastKey: result.lastKey, rowsDone: job.rowsDone + result.emitted, updatedAt: this.now() };
      await this.store.put(next);
    }
  }

  private async runChunk(table: string, job: SnapshotJob): Promise<{ emitted: number; lastKey: string | undefined }> {
    // Another partition's runner writes watermarks into the same WAL: the partition keeps the names apart.
    const p = this.opts.partition;
    const name = `${job.id}:${p && p.count > 1 ? `p${p.index}:` : ''}${++this.chunkSeq}`;
    const done = new Promise<number>((resolve, reject) => {
      this.chunk = { name, table, target: job.target, rows: undefined, snapshot: undefined, windowOpen: false, before: [], inside: [], resolve, reject };
    });
    try {
      await this.watermark(name, 'low');
      const params: unknown[] = [job.lastKey === '' ? '00000000-0000-0000-0000-000000000000' : job.lastKey, this.opts.chunkSize];
      const where = `${job.workspace ? 'AND workspace_id = $3' : ''}${this.partitionWhere}`;
      if (job.workspace) params.push(job.workspace);
      const { rows, snapshot } = await this.readChunk(`SELECT * FROM ${table} WHERE id > $1 ${where} ORDER BY id LIMIT $2`, params);
      if (rows.length === 0) return { emitted: 0, lastKey: undefined };
      this.chunk!.snapshot = snapshot;
      this.chunk!.rows = rows;
      await this.watermark(name, 'high');
      const emitted = await withTimeout(done, 120_000);
      return { emitted, lastKey: String(rows[rows.length - 1]!.id) };
    } finally {
      this.chunk = undefined;
    }
  }

  /** One chunk and the snapshot it was read in (REPEATABLE READ: the first statement takes the snapshot both use). */
  private async readChunk(text: string, values: unknown[]): Promise<{ rows: Row[]; snapshot: XidSnapshot }> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const snap = await client.query<{ s: string }>('SELECT pg_current_snapshot()::text AS s');
      // the same text-to-JSON conversion as streamed rows (capture/values.ts)
      const rows = await client.query<Row>({ text, values, types: { getTypeParser: (oid: number) => textParserFor(oid) } as pg.CustomTypesConfig });
      await client.query('COMMIT');
      return { rows: rows.rows, snapshot: parseSnapshot(snap.rows[0]!.s) };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  private async watermark(chunk: string, mark: 'low' | 'high'): Promise<void> {
    await this.pool.query('SELECT pg_logical_emit_message(true, $1, $2)', [WATERMARK_PREFIX, JSON.stringify({ chunk, mark })]);
  }

  // ---- stream side (called synchronously, in stream order, by the service) -------------------

  onMessage(prefix: string, content: Uint8Array): void {
    if (prefix !== SIGNAL_PREFIX) return;
    const signal = parseSignal(content);
    if (!signal) {
      this.opts.logger.warn({ content: Buffer.from(content).toString('utf8').slice(0, 200) }, 'ignoring unknown capture signal');
      return;
    }
    if (signal.action === 'stop-snapshot') this.stopRequested = true;
    else this.request(signal.request);
  }

  onTransaction(tx: CommittedTransaction, handle: InFlightTransaction, session: SessionApi): void {
    const chunk = this.chunk;
    if (!chunk) return;
    const touch = touchOf(tx, chunk.table);
    if (touch) (chunk.windowOpen ? chunk.inside : chunk.before).push(touch);
    for (const m of tx.messages) {
      if (m.prefix !== WATERMARK_PREFIX) continue;
      const mark = JSON.parse(Buffer.from(m.content).toString('utf8')) as { chunk: string; mark: 'low' | 'high' };
      if (mark.chunk !== chunk.name) continue;
      if (mark.mark === 'low') chunk.windowOpen = true;
      else if (chunk.windowOpen && chunk.rows) this.emitChunk(chunk, tx, handle, session);
    }
  }

  onSessionEnd(): void {
    this.chunk?.reject(new Error('replication session ended during the chunk'));
  }

  onStreaming(): void {
    this.resumeIfRunning();
  }

  private emitChunk(chunk: OpenChunk, tx: CommittedTransaction, handle: InFlightTransaction, session: SessionApi): void {
    const rows = settleChunk(chunk.rows!, chunk, chunk.snapshot!);
    const entity = TABLES.get(chunk.table)!;
    let pending = rows.length;
    if (pending === 0) {
      chunk.resolve(0);
      return;
    }
    session.ack.expect(handle, rows.length);
    // A chunk is one SELECT: its rows have the table's columns as of the chunk's read.
    const schemaVersion = versionForColumns(ENTITIES[entity].schema, Object.keys(rows[0]!));
    rows.forEach((row, txIndex) => {
      const built = buildEntityEnvelope({ source: this.opts.source, db: this.opts.db }, entity, chunk.table, 'r', { before: null, after: row }, schemaVersion, { commitLsn: tx.commitLsn, txIndex, txSize: rows.length, xid: tx.xid, time: tx.commitTime, snapshot: true, ...(chunk.target ? { target: chunk.target } : {}) });
      const onDone = () => {
        session.ack.delivered(handle);
        if (--pending === 0) chunk.resolve(rows.length);
      };
      if ('missing' in built) session.deadLetter('MISSING_WORKSPACE_ID', `snapshot row of ${chunk.table} has no workspace_id`, row, chunk.table, onDone);
      else session.sendEvent(built.partitionKey, built.envelope, handle, { table: chunk.table, op: 'r' }, onDone);
    });
  }
}

/** What `tx` did to `table`, or nothing when it did not touch it. */
function touchOf(tx: CommittedTransaction, table: string): TableTouch | undefined {
  const whole: string[] = [];
  const partial: Row[] = [];
  for (const e of tx.events) {
    if (isEntityChange(e.envelope)) {
      if (e.table !== table) continue;
      const { data } = e.envelope;
      if (data.op === 'u' && data.omitted?.length && data.after) partial.push({ ...data.after });
      else whole.push(String(data.key.id));
    } else if (e.op === 't' && 'tables' in e.envelope.data && e.envelope.data.tables.includes(table)) {
      return { xid: tx.xid, whole: 'all', partial: [] };
    }
  }
  return whole.length || partial.length ? { xid: tx.xid, whole, partial } : undefined;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`no high watermark within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}
