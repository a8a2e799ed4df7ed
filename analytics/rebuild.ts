// `taskflow analytics rebuild [--from DAY]`: re-creates the curated tables from the raw archive.
// The curated state is cleared and merged again from the raw events the warehouse keeps from
// objects before DAY (all of them without --from: none), then every archive object from DAY on
// is loaded again through the loader's own path — so the result is what the incremental loads
// produced (analytics/rebuild.test.ts compares them row for row). Progress: objects, events,
// rate and ETA after each batch.
import type { Logger } from '../lib/logger.js';
import type { ObjectStore } from '../lib/object-store.js';
import { Loader, type LoadProgress } from './loader.js';
import type { DuckDbWarehouse } from './warehouse/duckdb.js';

export interface RebuildProgress {
  objects: number;
  totalObjects: number;
  events: number;
  eventsPerS: number;
  /** Seconds left at the rate so far (by bytes), undefined before the first batch. */
  etaS: number | undefined;
}

/** The first key of DAY's objects under `prefix` (Firehose: `<prefix>YYYY/MM/dd/HH/…`); '' (every key) without a day. */
export function firstKeyOfDay(prefix: string, day: string | undefined): string {
  if (day === undefined) return '';
  return `${prefix}${day.slice(0, 4)}/${day.slice(5, 7)}/${day.slice(8, 10)}/`;
}

export function progressOf(done: LoadProgress, total: { objects: number; bytes: number }, elapsedS: number): RebuildProgress {
  const rate = elapsedS > 0 ? done.bytes / elapsedS : 0;
  return {
    objects: done.objects,
    totalObjects: total.objects,
    events: done.events,
    eventsPerS: elapsedS > 0 ? Math.round(done.events / elapsedS) : 0,
    etaS: rate > 0 ? Math.round((total.bytes - done.bytes) / rate) : undefined,
  };
}

export function formatProgress(p: RebuildProgress): string {
  return `rebuild: ${p.objects}/${p.totalObjects} objects, ${p.events} events, ${p.eventsPerS} events/s, ETA ${p.etaS === undefined ? '?' : `${p.etaS} s`}`;
}

export async function rebuild(
  store: ObjectStore,
  prefix: string,
  warehouse: DuckDbWarehouse,
  logger: Logger,
  options: { from?: string; onProgress?: (p: RebuildProgress) => void; clock?: () => number } = {},
): Promise<RebuildProgress> {
  const clock = options.clock ?? (() => performance.now() / 1000);
  const fromKey = firstKeyOfDay(prefix, options.from);
  await warehouse.resetCurated(fromKey);
  const loaded = await warehouse.loadedKeys();
  const pending = (await store.list(prefix)).filter((o) => !loaded.has(o.key));
  const total = { objects: pending.length, bytes: pending.reduce((n, o) => n + o.size, 0) };
  const started = clock();
  let last = progressOf({ objects: 0, events: 0, bytes: 0 }, total, 0);
  await new Loader(store, prefix, warehouse, logger).loadNew((done) => {
    last = progressOf(done, total, clock() - started);
    options.onProgress?.(last);
  });
  return last;
}
