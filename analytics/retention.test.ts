// Retention with an injected clock: archive objects past the raw window go (by their Firehose
// key's time, else by when they were written), raw_events day partitions past the curated window
// are dropped, and nothing inside either window is touched.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { mkdtempSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { FsObjectStore } from '../lib/object-store.js';
import { sampleEvent } from '../schemas/fixtures.js';
import { applyRetention, expiredObjects, firehoseKeyTime, firstKeptDay } from './retention.js';
import { DuckDbWarehouse, loadObject } from './warehouse/duckdb.js';

const firehoseKey = (t: Date) => {
  const p = (n: number) => String(n).padStart(2, '0');
  const [y, mo, d, h, mi, s] = [t.getUTCFullYear(), p(t.getUTCMonth() + 1), p(t.getUTCDate()), p(t.getUTCHours()), p(t.getUTCMinutes()), p(t.getUTCSeconds())];
  return `raw/${y}/${mo}/${d}/${h}/taskflow-archive-1-${y}-${mo}-${d}-${h}-${mi}-${s}-0b1c2d3e-0000-4000-8000-000000000001`;
};
const NOW = new Date('2026-12-02T12:00:00Z');
const DAY = 86_400_000;

describe('retention rules', () => {
  it('reads the time of the oldest record from a Firehose key, and nothing from other keys', () => {
    expect(firehoseKeyTime(firehoseKey(new Date('2026-11-02T03:04:05Z')))?.toISOString()).toBe('2026-11-02T03:04:05.000Z');
    // Firehose's GZIP objects end with .gz (infra/local/firehose names them so too).
    expect(firehoseKeyTime(`${firehoseKey(new Date('2026-11-02T03:04:05Z'))}.gz`)?.toISOString()).toBe('2026-11-02T03:04:05.000Z');
    expect(firehoseKeyTime('raw/notes.txt')).toBeUndefined();
  });

  it('an object expires exactly when its time is older than the window (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 90 * 86_400 }), fc.integer({ min: 1, max: 60 }), (ageS, days) => {
        const written = new Date(NOW.getTime() - ageS * 1000);
        const objects = [{ key: firehoseKey(written), size: 1, lastModified: NOW }, { key: 'raw/other', size: 1, lastModified: written }];
        const expired = expiredObjects(objects, NOW, days);
        expect(expired).toHaveLength(ageS * 1000 > days * DAY ? 2 : 0);
      }),
    );
  });

  it('keeps the days of the curated window', () => {
    expect(firstKeptDay(NOW, 730)).toBe('2024-12-02');
    expect(firstKeptDay(NOW, 1)).toBe('2026-12-01');
  });
});

describe('applyRetention', () => {
  let dir: string;
  let store: FsObjectStore;
  let warehouse: DuckDbWarehouse;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'retention-test-'));
    store = new FsObjectStore(dir);
    warehouse = await DuckDbWarehouse.open(':memory:');
  });
  afterAll(async () => {
    await warehouse.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('deletes the raw objects older than 30 days and the raw_events days older than 2 years, and only those', async () => {
    const ages = [31, 29, 2 * 365 + 5, 1];
    for (const [i, ageDays] of ages.entries()) {
      const t = new Date(NOW.getTime() - ageDays * DAY);
      const event = sampleEvent('task.created', { commitLsn: BigInt(0x1000 + i * 16), entityId: `33333333-3333-4333-8333-00000000000${i}`, time: t.toISOString() });
      const body = gzipSync(`${JSON.stringify(event)}\n`);
      await store.put(firehoseKey(t), body);
      await loadObject(warehouse, firehoseKey(t), body);
    }
    await store.put('raw/manual-upload', new Uint8Array([1]));
    utimesSync(join(dir, 'raw/manual-upload'), new Date(NOW.getTime() - 40 * DAY), new Date(NOW.getTime() - 40 * DAY));

    const result = await applyRetention(store, 'raw/', warehouse, { rawDays: 30, curatedDays: 730 }, NOW);

    expect(result).toEqual({ objectsDeleted: 3, keptFromDay: '2024-12-02', rawEventsDropped: 1 });
    const left = (await store.list('raw/')).map((o) => firehoseKeyTime(o.key)?.getTime());
    expect(left.sort()).toEqual([NOW.getTime() - 29 * DAY, NOW.getTime() - DAY].sort());
    const days = (await warehouse.query(`SELECT strftime(day, '%Y-%m-%d') AS d FROM raw_events ORDER BY d`)).map((r) => r.d);
    expect(days).toEqual(['2024-11-27', '2026-11-01', '2026-11-03', '2026-12-01'].filter((d) => d >= '2024-12-02'));
    // A second pass finds nothing more.
    expect(await applyRetention(store, 'raw/', warehouse, { rawDays: 30, curatedDays: 730 }, NOW)).toEqual({ objectsDeleted: 0, keptFromDay: '2024-12-02', rawEventsDropped: 0 });
  });
});
