// The loader: picks up each object the archive receives, as Snowpipe auto-ingest would, and
// loads it into the warehouse — each object exactly once (the warehouse's load log, written in
// the same transaction as the object's rows), in key order (Firehose keys sort by the time of
// their oldest record). A crash before the commit leaves nothing behind; the restarted loader
// loads the object again.
import type { Logger } from '../lib/logger.js';
import type { ObjectStore } from '../lib/object-store.js';
import type { Warehouse } from './warehouse/duckdb.js';

export interface LoaderMetrics {
  loaded(events: number, newEvents: number, seconds: number): void;
  failed(): void;
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

  /** Loads every archive object not yet in the load log; resolves to how many it loaded. */
  async loadNew(): Promise<number> {
    this.loaded ??= await this.warehouse.loadedKeys();
    let n = 0;
    for (const object of await this.store.list(this.prefix)) {
      if (this.loaded.has(object.key)) continue;
      const started = performance.now();
      const result = await this.warehouse.loadObject(object.key, await this.store.get(object.key));
      this.loaded.add(object.key);
      if (result === 'already-loaded') continue;
      n++;
      this.metrics.loaded(result.events, result.newEvents, (performance.now() - started) / 1000);
      this.logger.debug({ key: object.key, ...result }, 'object loaded');
    }
    return n;
  }
}
