// Incremental snapshots with watermarks (Netflix DBLog; Debezium incremental snapshots), run by
// the capture service while it streams, without locking tables:
//   1. a LOW watermark (transactional logical message) goes into the WAL,
//   2. a chunk of rows is read by primary key (plain SELECT … WHERE id > last ORDER BY id LIMIT n),
//   3. a HIGH watermark goes into the WAL.
// In the stream, every change to the table between LOW and HIGH removes that key from the chunk
// (the streamed change is at least as new as what the SELECT saw); at HIGH the remaining rows are
// emitted as `r` events positioned right after the HIGH transaction (its commit LSN, index 0…n-1),
// so a reader applying events in order ends with the table's current state.
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
import type { SessionApi, StreamObserver } from './session.js';
import { textParserFor } from './values.js';

export const SIGNAL_PREFIX = 'taskflow.capture.signal';
export const WATERMARK_PREFIX = 'taskflow.capture.watermark';

export interface SnapshotRequest {
  tables: string[];
  workspace?: string;
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
    if (s.action === 'snapshot' && Array.isArray(s.request?.tables) && s.request.tables.every((t) => TABLES.has(t))) return s;
  } catch {
    // not ours
  }
  return undefined;
}

const TABLES = new Map<string, EntityName>((Object.keys(ENTITIES) as EntityName[]).map((e) => [ENTITIES[e].table, e]));

/** Which chunk rows survive the window: those whose key no streamed change touched (pure). */
export function survivingRows(rows: readonly Row[], changedKeys: ReadonlySet<string>): Row[] {
  return rows.filter((r) => !changedKeys.has(String(r.id)));
}

interface OpenChunk {
  name: string;
  table: string;
  rows: Row[] | undefined;
  windowOpen: boolean;
  changed: Set<string>;
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
    private readonly opts: { chunkSize: number; source: string; db: string; logger: Logger; now?: () => Date },
  ) {}

  /** Starts (or resumes) a job; resolves when it is done, stopped or failed. */
  request(req: SnapshotRequest): void {
    void this.store.get().then(async (existing) => {
      const same = existing && existing.status !== 'done' && existing.tables.join(',') === req.tables.join(',') && existing.workspace === req.workspace;
      const now = this.now();
      const job: SnapshotJob = same
        ? { ...existing, status: 'running', updatedAt: now }
        : { id: `${Date.now().toString(36)}`, tables: req.tables, ...(req.workspace ? { workspace: req.workspace } : {}), status: 'running', tableIndex: 0, lastKey: '', rowsDone: 0, rowsEstimated: await this.estimate(req), startedAt: now, updatedAt: now };
      await this.store.put(job);
      this.opts.logger.info({ job: job.id, tables: job.tables, workspace: job.workspace, resumedFrom: same ? job.lastKey || '(start)' : undefined }, same ? 'resuming snapshot' : 'starting snapshot');
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
        total += estimate;
        continue;
      }
      const c = await this.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}${req.workspace ? ' WHERE workspace_id = $1' : ''}`, req.workspace ? [req.workspace] : []);
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
    const name = `${job.id}:${++this.chunkSeq}`;
    const done = new Promise<number>((resolve, reject) => {
      this.chunk = { name, table, rows: undefined, windowOpen: false, changed: new Set(), resolve, reject };
    });
    try {
      await this.watermark(name, 'low');
      const params: unknown[] = [job.lastKey === '' ? '00000000-0000-0000-0000-000000000000' : job.lastKey, this.opts.chunkSize];
      const where = job.workspace ? 'AND workspace_id = $3' : '';
      if (job.workspace) params.push(job.workspace);
      const rows = await this.pool.query<Row>({
        text: `SELECT * FROM ${table} WHERE id > $1 ${where} ORDER BY id LIMIT $2`,
        values: params,
        // the same text-to-JSON conversion as streamed rows (capture/values.ts)
        types: { getTypeParser: (oid: number) => textParserFor(oid) } as pg.CustomTypesConfig,
      });
      if (rows.rows.length === 0) {
        this.chunk = undefined;
        return { emitted: 0, lastKey: undefined };
      }
      this.chunk!.rows = rows.rows;
      await this.watermark(name, 'high');
      const emitted = await withTimeout(done, 120_000);
      return { emitted, lastKey: String(rows.rows[rows.rows.length - 1]!.id) };
    } finally {
      this.chunk = undefined;
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
    if (chunk.windowOpen) {
      for (const e of tx.events) if (e.table === chunk.table || e.op === 't') chunk.changed.add(String(isEntityChange(e.envelope) ? e.envelope.data.key.id : undefined));
    }
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
    const rows = survivingRows(chunk.rows!, chunk.changed);
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
      const built = buildEntityEnvelope({ source: this.opts.source, db: this.opts.db }, entity, chunk.table, 'r', { before: null, after: row }, schemaVersion, { commitLsn: tx.commitLsn, txIndex, txSize: rows.length, xid: tx.xid, time: tx.commitTime, snapshot: true });
      const onDone = () => {
        session.ack.delivered(handle);
        if (--pending === 0) chunk.resolve(rows.length);
      };
      if ('missing' in built) session.deadLetter('MISSING_WORKSPACE_ID', `snapshot row of ${chunk.table} has no workspace_id`, row, chunk.table, onDone);
      else session.sendEvent(built.partitionKey, built.envelope, handle, { table: chunk.table, op: 'r' }, onDone);
    });
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`no high watermark within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}
