// Retention (analytics/README.md "Retention"): raw archive objects older than the raw window
// (30 days) are deleted, and the warehouse's day partitions of raw_events older than the curated
// window (2 years) are dropped (the history and metrics views read them). Production uses S3
// lifecycle rules and Snowflake tasks for the same windows (infra/aws); this is the local path,
// run by the loader and testable with any clock.
import type { ObjectStore, StoredObject } from '../lib/object-store.js';
import type { Warehouse } from './warehouse/duckdb.js';

export interface RetentionPolicy {
  /** Raw archive objects are kept this many days. */
  rawDays: number;
  /** Warehouse day partitions are kept this many days. */
  curatedDays: number;
}

export interface RetentionResult {
  objectsDeleted: number;
  /** The oldest day partition kept (YYYY-MM-DD). */
  keptFromDay: string;
  rawEventsDropped: number;
}

const DAY_MS = 86_400_000;

/** The time of a Firehose key's oldest record (`…-YYYY-MM-dd-HH-mm-ss-<uuid>`, UTC), or undefined for any other key. */
export function firehoseKeyTime(key: string): Date | undefined {
  const m = /-(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-[0-9a-f-]+(?:\.gz)?$/i.exec(key);
  if (!m) return undefined;
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return Number.isNaN(t) ? undefined : new Date(t);
}

/** Objects past the raw window at `now`: by their key's time, or when it has none, by when they were written. */
export function expiredObjects(objects: readonly StoredObject[], now: Date, rawDays: number): StoredObject[] {
  const cutoff = now.getTime() - rawDays * DAY_MS;
  return objects.filter((o) => (firehoseKeyTime(o.key) ?? o.lastModified).getTime() < cutoff);
}

/** The first day (UTC, YYYY-MM-DD) inside the curated window at `now`. */
export function firstKeptDay(now: Date, curatedDays: number): string {
  return new Date(now.getTime() - curatedDays * DAY_MS).toISOString().slice(0, 10);
}

export async function applyRetention(store: ObjectStore, prefix: string, warehouse: Warehouse, policy: RetentionPolicy, now: Date): Promise<RetentionResult> {
  const expired = expiredObjects(await store.list(prefix), now, policy.rawDays);
  // The load log keeps their keys, so a re-listing never loads them again; their events stay in raw_events.
  for (const o of expired) await store.delete(o.key);
  const keptFromDay = firstKeptDay(now, policy.curatedDays);
  return { objectsDeleted: expired.length, keptFromDay, rawEventsDropped: await warehouse.dropDaysBefore(keptFromDay) };
}
