// The loader: picks up each object the archive receives, as Snowpipe auto-ingest would, and
// loads it into the warehouse — each object exactly once (the warehouse's load log, written in
// the same transaction as the objects' rows), in key order (Firehose keys sort by the time of
// their oldest record). A crash before the commit leaves nothing behind; the restarted loader
// loads the object again.
//
// Listing: a full LIST of the archive costs one request per 1,000 keys (30 days at one object a
// second: 2,600 requests), so between full listings — at start and every `fullListEveryMs` — the
// loader lists only the keys after the newest loaded key's time minus `lookbackMs`. Firehose
// delivers an object at most its buffer interval (≤ 900 s) after its key's time, so the lookback
// covers objects delivered out of key order; the full listing catches anything later still.
import type { ErasedSubjects } from '@taskflow/stream';
import type { Logger } from '../lib/logger.js';
import { scrubArchiveObject } from './erased-subjects.js';
import type { ObjectStore } from '../lib/object-store.js';
import type { Quarantined, ScreenedObject } from './quarantine.js';
import { firehoseKeyTime } from './retention.js';
import type { ArchiveObject, Warehouse } from './warehouse/duckdb.js';

export interface LoaderMetrics {
  /** A batch loaded: its objects, their events, the new ones (the rest were duplicates dropped), its time, its newest commit time (ms). */
  loaded(objects: number, events: number, newEvents: number, seconds: number, newestEventMs: number | undefined): void;
  failed(): void;
  /**
   * One listing of the archive: full or from the lookback; the keys it returned, the objects not
   * loaded yet and when the oldest of them was delivered (ms; undefined when none).
   */
  listed(kind: 'full' | 'incremental', keys: number, pending: number, oldestPendingDeliveredMs: number | undefined): void;
  /** A part of an object (a line, or the whole object) quarantined instead of loaded. */
  quarantined(reason: Quarantined['reason']): void;
}

/** What a pass has loaded so far (objects, the events they held, their bytes). */
export interface LoadProgress {
  objects: number;
  events: number;
  bytes: number;
}

export const noopLoaderMetrics: LoaderMetrics = { loaded() {}, failed() {}, listed() {}, quarantined() {} };

export interface LoaderOptions {
  metrics?: LoaderMetrics;
  /** A full listing at the first pass and then at least this often; 0: every pass. */
  fullListEveryMs?: number;
  /** Incremental listings start this long before the newest loaded key's time. */
  lookbackMs?: number;
  now?: () => number;
  /**
   * Each object screened before it is loaded (quarantine.ts): its bad parts stored (`put`, before
   * the load commits: a crash in between stores them again, once) and the rest loaded.
   * Absent: objects are loaded as they are.
   */
  quarantine?: { screen(key: string, body: Uint8Array): ScreenedObject; put(parts: readonly Quarantined[]): Promise<void> };
  /** The erased-subjects list: their data blanked in each object before it is loaded (erased-subjects.ts). Absent: not checked. */
  erased?: Pick<ErasedSubjects, 'isErased'>;
}

export const LISTING_DEFAULTS = { fullListEveryMs: 600_000, lookbackMs: 900_000 } as const;

export class Loader {
  private loaded: Set<string> | undefined;
  /** The newest loaded Firehose key (by its time; only loaded ones, so a failed pass's objects stay in range). */
  private newest: { key: string; time: number } | undefined;
  private lastFullList = -Infinity;
  private readonly metrics: LoaderMetrics;
  private readonly fullListEveryMs: number;
  private readonly lookbackMs: number;
  private readonly now: () => number;
  private readonly quarantine: LoaderOptions['quarantine'];
  private readonly erased: LoaderOptions['erased'];

  constructor(
    private readonly store: ObjectStore,
    private readonly prefix: string,
    private readonly warehouse: Warehouse,
    private readonly logger: Logger,
    options: LoaderOptions = {},
  ) {
    this.metrics = options.metrics ?? noopLoaderMetrics;
    this.fullListEveryMs = options.fullListEveryMs ?? LISTING_DEFAULTS.fullListEveryMs;
    this.lookbackMs = options.lookbackMs ?? LISTING_DEFAULTS.lookbackMs;
    this.now = options.now ?? Date.now;
    this.quarantine = options.quarantine;
    this.erased = options.erased;
  }

  /** Loads every archive object not yet in the load log, in key order, in batches; resolves to how many it loaded. */
  async loadNew(onBatch?: (done: LoadProgress) => void): Promise<number> {
    if (!this.loaded) {
      this.loaded = await this.warehouse.loadedKeys();
      for (const key of this.loaded) this.advance(key);
    }
    const pending = await this.listPending();
    let n = 0;
    const done: LoadProgress = { objects: 0, events: 0, bytes: 0 };
    for (let i = 0; i < pending.length; ) {
      // A batch: up to MAX_BATCH_OBJECTS objects and MAX_BATCH_BYTES (at least one).
      let end = i;
      let bytes = 0;
      while (end < pending.length && end - i < MAX_BATCH_OBJECTS && (end === i || bytes + pending[end]!.size <= MAX_BATCH_BYTES)) bytes += pending[end++]!.size;
      const batch = pending.slice(i, end);
      i = end;
      const started = performance.now();
      const fetched = await Promise.all(batch.map(async (o) => ({ key: o.key, body: await this.store.get(o.key) })));
      const screened = this.quarantine ? await this.screen(fetched, this.quarantine) : fetched;
      const erased = this.erased;
      const objects = erased ? await Promise.all(screened.map((o) => scrubArchiveObject(o, erased))) : screened;
      const loaded = await this.warehouse.loadObjects(objects);
      for (const o of batch) this.remember(o.key);
      const events = [...loaded.values()].reduce((a, r) => a + r.events, 0);
      const fresh = [...loaded.values()].reduce((a, r) => a + r.newEvents, 0);
      const newest = [...loaded.values()].reduce<number | undefined>((a, r) => (r.newestEventMs !== null && (a === undefined || r.newestEventMs > a) ? r.newestEventMs : a), undefined);
      n += loaded.size;
      this.metrics.loaded(loaded.size, events, fresh, (performance.now() - started) / 1000, newest);
      this.logger.debug({ objects: loaded.size, events, newEvents: fresh }, 'objects loaded');
      done.objects += batch.length;
      done.events += events;
      done.bytes += bytes;
      onBatch?.({ ...done });
    }
    return n;
  }

  /** The objects' loadable parts, their bad parts stored first. */
  private async screen(objects: readonly ArchiveObject[], quarantine: NonNullable<LoaderOptions['quarantine']>): Promise<ArchiveObject[]> {
    const screened = objects.map((o) => quarantine.screen(o.key, o.body));
    const bad = screened.flatMap((o) => o.quarantined);
    if (bad.length > 0) {
      await quarantine.put(bad);
      for (const q of bad) this.metrics.quarantined(q.reason);
      this.logger.warn({ parts: bad.map((q) => ({ objectKey: q.objectKey, line: q.line, reason: q.reason, message: q.message })) }, 'archive object parts quarantined');
    }
    return screened.map((o) => ({ key: o.key, body: o.body }));
  }

  private async listPending() {
    const loaded = this.loaded!;
    const full = this.newest === undefined || this.now() - this.lastFullList >= this.fullListEveryMs;
    const startAfter = full ? undefined : listingStart(this.newest!.key, this.newest!.time - this.lookbackMs);
    if (startAfter === undefined) this.lastFullList = this.now();
    const listed = await this.store.list(this.prefix, startAfter);
    const pending = listed.filter((o) => !loaded.has(o.key));
    const oldest = pending.reduce<number | undefined>((a, o) => (a === undefined || o.lastModified.getTime() < a ? o.lastModified.getTime() : a), undefined);
    this.metrics.listed(startAfter === undefined ? 'full' : 'incremental', listed.length, pending.length, oldest);
    return pending;
  }

  private remember(key: string): void {
    this.loaded!.add(key);
    this.advance(key);
  }

  private advance(key: string): void {
    const time = firehoseKeyTime(key)?.getTime();
    if (time !== undefined && (this.newest === undefined || time > this.newest.time)) this.newest = { key, time };
  }
}

/**
 * The StartAfter of a listing of every key of `newestKey`'s delivery stream whose time is `from`
 * or later: its key with the hour folder and stamp of `from` and no uuid (a key of that time
 * sorts after it, the stamp being fixed-width). Undefined when the key is not Firehose's.
 */
export function listingStart(newestKey: string, from: number): string | undefined {
  const m = /^(.*)\d{4}\/\d{2}\/\d{2}\/\d{2}\/([^/]*-)\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f-]+(\.gz)?$/i.exec(newestKey);
  if (!m) return undefined;
  const d = new Date(from);
  const p = (n: number) => String(n).padStart(2, '0');
  const [y, mo, day, h, mi, s] = [d.getUTCFullYear(), p(d.getUTCMonth() + 1), p(d.getUTCDate()), p(d.getUTCHours()), p(d.getUTCMinutes()), p(d.getUTCSeconds())];
  return `${m[1]}${y}/${mo}/${day}/${h}/${m[2]}${y}-${mo}-${day}-${h}-${mi}-${s}`;
}

/** Bounds of one load transaction: a loader that fell behind catches up in a few big ones. */
const MAX_BATCH_OBJECTS = 64;
const MAX_BATCH_BYTES = 64 * 1024 * 1024;
