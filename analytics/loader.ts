// The loader: picks up each object the archive receives, as Snowpipe auto-ingest would, and
// loads it into the warehouse — each object exactly once (the warehouse's load log, written in
// the same transaction as the objects' rows), in key order (Firehose keys sort by the time of
// their oldest record). A crash before the commit leaves nothing behind; the restarted loader
// loads the object again.
import type { Logger } from '../lib/logger.js';
import type { ObjectStore } from '../lib/object-store.js';
import type { Warehouse } from './warehouse/duckdb.js';

export interface LoaderMetrics {
  loaded(objects: number, events: number, newEvents: number, seconds: number): void;
  failed(): void;
}

/** What a pass has loaded so far (objects, the events they held, their bytes). */
export interface LoadProgress {
  objects: number;
  events: number;
  bytes: number;
}

export const noopLoaderMetrics: LoaderMetrics = { loaded() {}, failed() {} };

export class Loader {
  private loaded: Set<string> | undefined;

  constructor(
    private readonly store: ObjectStore,
    private readonly prefix: string,
    private readonly warehouse: Warehouse,
    private readonly logger: Logger,
    private readonly metrics: LoaderMetrics = noopLoaderMetrics,
  ) {}

  /** Loads every archive object not yet in the load log, in key order, in batches; resolves to how many it loaded. */
  async loadNew(onBatch?: (done: LoadProgress) => void): Promise<number> {
    this.loaded ??= await this.warehouse.loadedKeys();
    const pending = (await this.store.list(this.prefix)).filter((o) => !this.loaded!.has(o.key));
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
      const objects = await Promise.all(batch.map(async (o) => ({ key: o.key, body: await this.store.get(o.key) })));
      const loaded = await this.warehouse.loadObjects(objects);
      for (const o of batch) this.loaded.add(o.key);
      const events = [...loaded.values()].reduce((a, r) => a + r.events, 0);
      const fresh = [...loaded.values()].reduce((a, r) => a + r.newEvents, 0);
      n += loaded.size;
      this.metrics.loaded(loaded.size, events, fresh, (performance.now() - started) / 1000);
      this.logger.debug({ objects: loaded.size, events, newEvents: fresh }, 'objects loaded');
      done.objects += batch.length;
      done.events += events;
      done.bytes += bytes;
      onBatch?.({ ...done });
    }
    return n;
  }
}

/** Bounds of one load transaction: a loader that fell behind catches up in a few big ones. */
const MAX_BATCH_OBJECTS = 64;
const MAX_BATCH_BYTES = 64 * 1024 * 1024;
