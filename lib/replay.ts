// `taskflow replay`: feeds one consumer's ShardProcessor the change events of a time window again,
// from the stream's retention (GetShardIterator AT_TIMESTAMP) and, for the part older than the
// retention, from the raw archive (the analytics archiver's GZIP NDJSON objects). The consumer's
// own leases and checkpoints are never touched: the live consumer keeps running, and the replay
// is just one more reader. Processors are idempotent (search: order-free by event id;
// notifications: one per (user, event)), so the overlap between archive and stream, and a batch
// re-read after a resume, apply harmlessly.
//
// The window is by the event's `time` (commit time): an event committed at or after `from` arrived
// in the stream at or after `from`, so AT_TIMESTAMP(from) misses none; a shard is read until a
// record arrived ARRIVAL_GRACE_MS after `to` (or the tip, or its end). Progress — per shard the last
// record handed over and checkpointed by the processor, the last archive object done — is saved
// after every checkpoint, so a stopped replay resumes there.
import { renameSync, writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { type Checkpointer, comparePositions, type Position, recordsAfter, type ShardInfo, type ShardProcessor, type ShardSubscription, type StartingPosition, toUserRecords, type UserRecord } from '@taskflow/stream';
import { TaskflowError } from './errors.js';
import type { ObjectStore } from './object-store.js';

/** A record that arrived this long after `to` ends its shard's part (capture's lag allowance). */
export const ARRIVAL_GRACE_MS = 60_000;
/** The archive covers up to this far inside the stream's retention (the trim horizon moves while we read). */
export const ARCHIVE_OVERLAP_MS = 2 * 3600_000;
/** User records per processRecords call, as the consumer hands them (lib/kinesis-consumer MAX_RECORDS_PER_CALL). */
export const REPLAY_BATCH = 500;
/** The shard id archive events are handed over under. */
export const ARCHIVE_SHARD = 'archive';

export interface ReplayWindow {
  from: Date;
  /** Default: when the replay first started (kept in the progress). */
  to: Date;
  /** Only this workspace's events (and those of workspace "*": truncates, erasures). */
  workspace?: string;
}

export interface ReplayProgress {
  consumer: string;
  from: string;
  to: string;
  workspace?: string;
  /** Whether the archive part is needed (the window starts before the stream's retention) and up to when. */
  archiveUntil?: string;
  /** Last archive object fully handed over and checkpointed; done when the archive part is finished. */
  archive: { lastKey?: string; done: boolean };
  shards: Record<string, { position?: Position; done: boolean }>;
  events: number;
  done: boolean;
}

export interface ProgressStore {
  load(): Promise<ReplayProgress | undefined>;
  save(progress: ReplayProgress): Promise<void>;
}

export interface StreamSource {
  listShards(): Promise<ShardInfo[]>;
  open(shardId: string, from: StartingPosition): ShardSubscription;
  /** The stream's retention in hours (DescribeStreamSummary). */
  retentionHours(): Promise<number>;
}

export interface ArchiveSource {
  store: ObjectStore;
  prefix: string;
}

export interface ReplayStatus {
  events: number;
  eventsPerS: number;
  /** Seconds left, from how far the slowest part has come through the window; undefined at first. */
  etaS: number | undefined;
  shardsDone: number;
  shards: number;
  archive: 'none' | 'reading' | 'done';
}

export interface ReplayOptions {
  consumer: string;
  window: ReplayWindow;
  processor: (shardId: string) => ShardProcessor;
  stream: StreamSource;
  archive?: ArchiveSource;
  progress: ProgressStore;
  onStatus?: (s: ReplayStatus) => void;
  signal?: AbortSignal;
  now?: () => number;
}

/** Whether an event is in the window (pure): by its commit time, and its workspace or "*". */
export function inWindow(event: { time?: unknown; workspaceid?: unknown }, window: ReplayWindow): boolean {
  const t = typeof event.time === 'string' ? Date.parse(event.time) : Number.NaN;
  if (Number.isNaN(t) || t < window.from.getTime() || t > window.to.getTime()) return false;
  return window.workspace === undefined || event.workspaceid === window.workspace || event.workspaceid === '*';
}

/**
 * The records of a read to hand over (pure). Undecodable or non-JSON records were dead-lettered
 * by the live consumer already and are not handed over again; the rest by `inWindow`. A record
 * with a workspace filter is first judged by its partition key (the workspace id), before parsing.
 */
export function selectRecords(records: readonly UserRecord[], window: ReplayWindow): UserRecord[] {
  return records.filter((r) => {
    if (r.decodeError) return false;
    if (window.workspace !== undefined && r.partitionKey !== window.workspace && r.partitionKey !== '*') return false;
    try {
      return inWindow(JSON.parse(Buffer.from(r.data).toString('utf8')) as Record<string, unknown>, window);
    } catch {
      return false;
    }
  });
}

/** Whether a shard's part is over after this read (pure). */
export function shardPartOver(batch: { records: readonly { approximateArrivalTimestamp?: Date }[]; millisBehindLatest: number; shardEnd: boolean }, to: Date): boolean {
  if (batch.shardEnd) return true;
  if (batch.records.length === 0 && batch.millisBehindLatest === 0) return true; // the tip
  const last = batch.records.at(-1)?.approximateArrivalTimestamp;
  return last !== undefined && last.getTime() > to.getTime() + ARRIVAL_GRACE_MS;
}

/** Where the archive part ends: undefined when the whole window is inside the stream's retention. */
export function archiveUntil(window: ReplayWindow, now: number, retentionHours: number): Date | undefined {
  const retained = now - retentionHours * 3600_000 + ARCHIVE_OVERLAP_MS;
  if (window.from.getTime() >= retained) return undefined;
  return new Date(Math.min(retained, window.to.getTime()));
}

/** The Firehose key's hour folder of an instant (`YYYY/MM/dd/HH`, UTC). */
function hourFolder(t: number): string {
  const d = new Date(t);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}/${p(d.getUTCMonth() + 1)}/${p(d.getUTCDate())}/${p(d.getUTCHours())}`;
}

/**
 * The archive objects that can hold events of [from, until] (pure, by their Firehose hour folder:
 * an object is delivered after every event in it was committed, within Firehose's buffering, at
 * most 15 minutes; keys without that folder are kept).
 */
export function archiveKeysFor(keys: readonly string[], prefix: string, from: Date, until: Date): string[] {
  const first = hourFolder(from.getTime());
  const last = hourFolder(until.getTime() + 3600_000);
  return keys.filter((k) => {
    const m = /^(\d{4}\/\d{2}\/\d{2}\/\d{2})\//.exec(k.slice(prefix.length));
    return !m || (m[1]! >= first && m[1]! <= last);
  });
}

/** The event lines of one archive object (GZIP NDJSON; plain NDJSON too). */
export function archiveLines(body: Uint8Array): Uint8Array[] {
  const text = body[0] === 0x1f && body[1] === 0x8b ? gunzipSync(body) : Buffer.from(body);
  const lines: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i <= text.length; i++) {
    if (i === text.length || text[i] === 0x0a) {
      if (i > start) lines.push(text.subarray(start, i));
      start = i + 1;
    }
  }
  return lines;
}

export function newProgress(consumer: string, window: ReplayWindow, until: Date | undefined): ReplayProgress {
  return {
    consumer,
    from: window.from.toISOString(),
    to: window.to.toISOString(),
    ...(window.workspace ? { workspace: window.workspace } : {}),
    ...(until ? { archiveUntil: until.toISOString() } : {}),
    archive: { done: until === undefined },
    shards: {},
    events: 0,
    done: false,
  };
}

/** Whether saved progress belongs to this replay (same consumer and window). */
export function sameReplay(p: ReplayProgress, consumer: string, window: { from: Date; to?: Date; workspace?: string }): boolean {
  return p.consumer === consumer && p.from === window.from.toISOString() && (window.to === undefined || p.to === window.to.toISOString()) && p.workspace === window.workspace;
}

export async function replay(opts: ReplayOptions): Promise<ReplayProgress> {
  const now = opts.now ?? Date.now;
  const signal = opts.signal ?? new AbortController().signal;
  const { window } = opts;
  let progress = await opts.progress.load();
  if (!progress) {
    const until = opts.archive ? archiveUntil(window, now(), await opts.stream.retentionHours()) : undefined;
    progress = newProgress(opts.consumer, window, until);
    await opts.progress.save(progress);
  }
  const p = progress;
  const started = now();
  const eventsAtStart = p.events;
  // Saves are chained: each writes the whole progress as it stands.
  let saving = Promise.resolve();
  const save = () => (saving = saving.then(() => opts.progress.save(p)));

  // How far each part has come through the window, for the ETA.
  const reached = new Map<string, number>();
  const span = Math.max(1, window.to.getTime() - window.from.getTime());
  const status = (): void => {
    const elapsed = (now() - started) / 1000;
    const parts = [...reached.values()];
    const fraction = parts.length ? Math.min(...parts.map((t) => Math.max(0, Math.min(1, (t - window.from.getTime()) / span)))) : 0;
    const shardStates = Object.values(p.shards);
    opts.onStatus?.({
      events: p.events,
      eventsPerS: elapsed > 0 ? Math.round((p.events - eventsAtStart) / elapsed) : 0,
      etaS: fraction > 0 && elapsed > 0 ? Math.round((elapsed * (1 - fraction)) / fraction) : undefined,
      shardsDone: shardStates.filter((s) => s.done).length,
      shards: shardStates.length,
      archive: p.archiveUntil === undefined ? 'none' : p.archive.done ? 'done' : 'reading',
    });
  };

  /** Hands a selection to the processor; its checkpoint saves `position` as the shard's progress. */
  const hand = async (processor: ShardProcessor, records: UserRecord[], millisBehindLatest: number, onCheckpoint: () => void): Promise<void> => {
    for (let i = 0; i < records.length; i += REPLAY_BATCH) {
      const slice = records.slice(i, i + REPLAY_BATCH);
      const last = i + REPLAY_BATCH >= records.length;
      const checkpointer: Checkpointer = {
        checkpoint: async () => {
          if (last) onCheckpoint();
          await save();
        },
      };
      await processor.processRecords({ records: slice, millisBehindLatest }, checkpointer);
      p.events += slice.length;
      status();
    }
  };

  // ---- the stream: every shard, parents before children ------------------------------------
  const shards = await opts.stream.listShards();
  for (const s of shards) {
    const state = (p.shards[s.shardId] ??= { done: false });
    reached.set(s.shardId, state.done ? window.to.getTime() : window.from.getTime());
  }
  const finished = new Map<string, Promise<void>>();
  const runShard = async (shard: ShardInfo): Promise<void> => {
    await Promise.all(shard.parentShardIds.flatMap((id) => finished.get(id) ?? []));
    const state = p.shards[shard.shardId]!;
    if (state.done || signal.aborted) return;
    const processor = opts.processor(shard.shardId);
    await processor.initialize({ shardId: shard.shardId, parentStates: [] });
    const from: StartingPosition = state.position ? { type: 'AT_SEQUENCE_NUMBER', sequenceNumber: state.position.sequenceNumber } : { type: 'AT_TIMESTAMP', timestamp: window.from };
    const sub = opts.stream.open(shard.shardId, from);
    let delivered = state.position;
    try {
      while (!signal.aborted) {
        const batch = await sub.next(signal);
        if (signal.aborted) break;
        const records = recordsAfter(toUserRecords(shard.shardId, batch.records), delivered);
        const lastRead = records.at(-1);
        const arrived = lastRead?.approximateArrivalTimestamp?.getTime();
        if (arrived !== undefined) reached.set(shard.shardId, arrived);
        const selected = selectRecords(records, window);
        if (lastRead) {
          const at: Position = { sequenceNumber: lastRead.sequenceNumber, subSequenceNumber: lastRead.subSequenceNumber };
          if (selected.length) await hand(processor, selected, batch.millisBehindLatest, () => (state.position = at));
          else {
            state.position = at;
            await save();
          }
          if (!delivered || comparePositions(at, delivered) > 0) delivered = at;
        }
        if (shardPartOver({ records: batch.records, millisBehindLatest: batch.millisBehindLatest, shardEnd: batch.shardEnd }, window.to)) {
          state.done = true;
          reached.set(shard.shardId, window.to.getTime());
          await save();
          status();
          break;
        }
      }
    } finally {
      sub.close();
      await processor.shutdown(state.done ? 'shard_end' : 'shutdown', { checkpoint: async () => save() });
    }
  };
  for (const s of shards) finished.set(s.shardId, runShard(s));
  await Promise.all(finished.values());

  // ---- the archive, for the part of the window before the stream's retention ----------------
  if (p.archiveUntil !== undefined && !p.archive.done && !signal.aborted) {
    if (!opts.archive) throw new TaskflowError('NO_ARCHIVE', `the window starts before the stream's retention (archive needed up to ${p.archiveUntil}) but no archive is configured`);
    const until = new Date(p.archiveUntil);
    const archiveWindow = { ...window, to: until };
    const listed = await opts.archive.store.list(opts.archive.prefix, p.archive.lastKey);
    const keys = archiveKeysFor(listed.map((o) => o.key), opts.archive.prefix, window.from, until);
    const processor = opts.processor(ARCHIVE_SHARD);
    await processor.initialize({ shardId: ARCHIVE_SHARD, parentStates: [] });
    reached.set(ARCHIVE_SHARD, window.from.getTime());
    try {
      for (const key of keys) {
        if (signal.aborted) break;
        const lines = archiveLines(await opts.archive.store.get(key));
        const records: UserRecord[] = lines.map((data, i) => ({ shardId: ARCHIVE_SHARD, sequenceNumber: '0', subSequenceNumber: i, partitionKey: partitionKeyOf(data), data }));
        const selected = selectRecords(records, archiveWindow);
        // An object is resumed whole: its key is the progress once every line of it is handed over.
        if (selected.length) await hand(processor, selected, 0, () => undefined);
        p.archive.lastKey = key;
        await save();
        const newest = selected.reduce((t, r) => Math.max(t, Date.parse(String((JSON.parse(Buffer.from(r.data).toString('utf8')) as { time?: string }).time))), window.from.getTime());
        reached.set(ARCHIVE_SHARD, newest);
      }
      if (!signal.aborted) {
        p.archive.done = true;
        reached.set(ARCHIVE_SHARD, window.to.getTime());
      }
    } finally {
      await processor.shutdown(p.archive.done ? 'shard_end' : 'shutdown', { checkpoint: async () => save() });
    }
  }

  p.done = !signal.aborted && p.archive.done && Object.values(p.shards).every((s) => s.done);
  await save();
  await saving;
  status();
  return p;
}

/** An archive line's workspace, for the workspace filter's first look ('' when unreadable). */
function partitionKeyOf(line: Uint8Array): string {
  const m = /"workspaceid"\s*:\s*"([^"]*)"/.exec(Buffer.from(line).toString('utf8'));
  return m?.[1] ?? '';
}

/** Progress in a JSON file, replaced atomically (a crash leaves the previous one). */
export class FileProgressStore implements ProgressStore {
  constructor(readonly path: string) {}

  load(): Promise<ReplayProgress | undefined> {
    try {
      return Promise.resolve(JSON.parse(readFileSync(this.path, 'utf8')) as ReplayProgress);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return Promise.resolve(undefined);
      throw new TaskflowError('REPLAY_PROGRESS_UNREADABLE', `replay progress ${this.path} is unreadable: ${(err as Error).message} (delete it to start over)`, { cause: err });
    }
  }

  save(progress: ReplayProgress): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(progress, null, 1));
    renameSync(tmp, this.path);
    return Promise.resolve();
  }
}

export function formatStatus(consumer: string, s: ReplayStatus): string {
  const archive = s.archive === 'none' ? '' : `, archive ${s.archive}`;
  return `replay ${consumer}: ${s.events.toLocaleString('en')} events, ${s.eventsPerS.toLocaleString('en')} events/s, shards ${s.shardsDone}/${s.shards} done${archive}, ETA ${s.etaS === undefined ? '?' : `${s.etaS} s`}`;
}
