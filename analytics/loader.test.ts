// The loader's archive listing: a full listing at start and every fullListEveryMs, in between
// only the keys from the newest loaded key's time minus the lookback; whatever the order objects
// appear in (within the lookback), each is loaded once, and one older still is loaded by the
// next full listing. Also the LIST requests a cycle costs on S3 (the S3 adapter over a fake
// client paging as S3 does), before (full listing every cycle) and after.
import { describe, expect, it } from '@jest/globals';
import type { S3Client } from '@aws-sdk/client-s3';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../lib/logger.js';
import { FsObjectStore, type ObjectStore, S3ObjectStore, type StoredObject } from '../lib/object-store.js';
import { Loader, type LoaderMetrics, listingStart } from './loader.js';
import type { ArchiveObject, LoadResult, Warehouse } from './warehouse/duckdb.js';

const p2 = (n: number) => String(n).padStart(2, '0');
/** A key as Firehose (and infra/local/firehose) names it. */
const firehoseKey = (ms: number, uuid: string) => {
  const t = new Date(ms);
  const [y, mo, d, h, mi, s] = [t.getUTCFullYear(), p2(t.getUTCMonth() + 1), p2(t.getUTCDate()), p2(t.getUTCHours()), p2(t.getUTCMinutes()), p2(t.getUTCSeconds())];
  return `raw/${y}/${mo}/${d}/${h}/taskflow-changes-archive-1-${y}-${mo}-${d}-${h}-${mi}-${s}-${uuid}.gz`;
};
const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const T0 = Date.parse('2026-12-02T10:00:00Z');

/** A warehouse that only keeps a load log: every object once. */
class LogWarehouse implements Warehouse {
  readonly log: string[] = [];
  loadedKeys = () => Promise.resolve(new Set(this.log));
  loadObjects(objects: readonly ArchiveObject[]): Promise<Map<string, LoadResult>> {
    const out = new Map<string, LoadResult>();
    for (const o of objects) {
      if (this.log.includes(o.key)) continue;
      this.log.push(o.key);
      out.set(o.key, { events: 1, newEvents: 1, newestEventMs: null });
    }
    return Promise.resolve(out);
  }
  newestEventTime = () => Promise.resolve(undefined);
  dropDaysBefore = () => Promise.resolve(0);
  query = () => Promise.resolve([]);
  close = () => Promise.resolve();
}

/** An in-memory archive recording what each listing asked for. */
class MemoryStore implements ObjectStore {
  readonly objects = new Map<string, Uint8Array>();
  readonly listings: (string | undefined)[] = [];
  put(key: string, body: Uint8Array) {
    this.objects.set(key, body);
    return Promise.resolve();
  }
  get(key: string) {
    return Promise.resolve(this.objects.get(key)!);
  }
  list(prefix: string, startAfter?: string): Promise<StoredObject[]> {
    this.listings.push(startAfter);
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix) && k > (startAfter ?? '')).sort();
    return Promise.resolve(keys.map((key) => ({ key, size: 1, lastModified: new Date(0) })));
  }
  delete(key: string) {
    this.objects.delete(key);
    return Promise.resolve();
  }
}

const recordingMetrics = () => {
  const listed: { kind: string; keys: number; pending: number }[] = [];
  const metrics: LoaderMetrics = { loaded() {}, failed() {}, listed: (kind, keys, pending) => void listed.push({ kind, keys, pending }), quarantined() {} };
  return { listed, metrics };
};

describe('listingStart', () => {
  it('a key sorts after it exactly when its time is the start time or later (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3 * 86_400 }), fc.integer({ min: 0, max: 3 * 86_400 }), fc.integer({ min: 0, max: 2 ** 40 }), (newest, key, id) => {
        const start = listingStart(firehoseKey(T0 + newest * 1000, uuid(1)), T0 + key * 1000 - 0);
        expect(start).toBeDefined();
        for (const offset of [-1, 0, 1]) expect(firehoseKey(T0 + (key + offset) * 1000, uuid(id)) > start!).toBe(offset >= 0);
      }),
    );
  });

  it('is undefined for a key that is not Firehose’s (then every listing is full)', () => {
    expect(listingStart('raw/notes.txt', T0)).toBeUndefined();
  });
});

describe('Loader listing', () => {
  it('lists in full once, then from the lookback; loads each object once whatever its order within the lookback (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        // Objects delivered in rounds; each object's key time is up to 30 s before the newest so far.
        fc.array(fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 4 }), { minLength: 1, maxLength: 8 }),
        async (rounds) => {
          const store = new MemoryStore();
          const warehouse = new LogWarehouse();
          let now = T0;
          const loader = new Loader(store, 'raw/', warehouse, silentLogger, { lookbackMs: 60_000, fullListEveryMs: 3_600_000, now: () => now });
          let n = 0;
          let newest = T0;
          let fullBeforeFirstLoad = 0; // with nothing loaded yet, every listing is full
          for (const round of rounds) {
            if (warehouse.log.length === 0) fullBeforeFirstLoad++;
            for (const back of round) {
              newest += 2_000;
              await store.put(firehoseKey(newest - back * 1000, uuid(n++)), new Uint8Array());
            }
            now += 1_000;
            await loader.loadNew();
          }
          expect([...warehouse.log].sort()).toEqual([...store.objects.keys()].sort());
          expect(store.listings.filter((s) => s === undefined)).toHaveLength(fullBeforeFirstLoad);
        },
      ),
    );
  });

  it('an object delivered later than the lookback is loaded by the next full listing; a restarted loader starts from its load log', async () => {
    const store = new MemoryStore();
    const warehouse = new LogWarehouse();
    let now = T0;
    const { listed, metrics } = recordingMetrics();
    const loader = new Loader(store, 'raw/', warehouse, silentLogger, { lookbackMs: 60_000, fullListEveryMs: 600_000, now: () => now, metrics });
    await store.put(firehoseKey(T0, uuid(1)), new Uint8Array());
    await loader.loadNew();
    await store.put(firehoseKey(T0 + 600_000, uuid(2)), new Uint8Array());
    now += 1_000;
    await loader.loadNew();
    const late = firehoseKey(T0 + 1_000, uuid(3)); // 10 min older than the newest loaded
    await store.put(late, new Uint8Array());
    now += 1_000;
    expect(await loader.loadNew()).toBe(0);
    expect(listed.map((l) => l.kind)).toEqual(['full', 'incremental', 'incremental']);
    now += 600_000;
    expect(await loader.loadNew()).toBe(1);
    expect(listed.at(-1)).toEqual({ kind: 'full', keys: 3, pending: 1 });
    expect(warehouse.log).toContain(late);

    // A new process: its first listing is full, the next ones from its load log's newest key.
    const again = new Loader(store, 'raw/', warehouse, silentLogger, { lookbackMs: 60_000, now: () => now });
    store.listings.length = 0;
    await again.loadNew();
    await again.loadNew();
    expect(store.listings).toEqual([undefined, listingStart(firehoseKey(T0 + 600_000, uuid(2)), T0 + 600_000 - 60_000)]);
  });

  it('LIST requests per cycle on S3, archive of 20,000 objects: 20 for a full listing, 1 from the lookback', async () => {
    const keys = Array.from({ length: 20_000 }, (_, i) => firehoseKey(T0 + i * 1000, uuid(i))).sort();
    let requests = 0;
    // ListObjectsV2 as S3 answers it: at most 1,000 keys a page, StartAfter, continuation tokens.
    const client = {
      send(command: { input: { Prefix?: string; StartAfter?: string; ContinuationToken?: string } }) {
        requests++;
        const { Prefix = '', StartAfter = '', ContinuationToken } = command.input;
        const from = ContinuationToken ?? StartAfter;
        const page = keys.filter((k) => k.startsWith(Prefix) && k > from).slice(0, 1000);
        const truncated = page.length === 1000 && page.at(-1) !== keys.at(-1);
        return Promise.resolve({ Contents: page.map((Key) => ({ Key, Size: 1 })), IsTruncated: truncated, NextContinuationToken: truncated ? page.at(-1) : undefined });
      },
    } as unknown as S3Client;
    const store = new S3ObjectStore(client, 'archive');
    const warehouse = new LogWarehouse();
    warehouse.log.push(...keys); // all loaded already: a steady-state cycle
    let now = T0;
    const perCycle = async (fullListEveryMs: number) => {
      const loader = new Loader(store, 'raw/', warehouse, silentLogger, { fullListEveryMs, lookbackMs: 900_000, now: () => now });
      await loader.loadNew(); // the first listing is full in both
      const counts: number[] = [];
      for (let i = 0; i < 3; i++) {
        now += 100;
        const before = requests;
        await loader.loadNew();
        counts.push(requests - before);
      }
      return counts;
    };
    expect(await perCycle(0)).toEqual([20, 20, 20]); // before: the whole archive every cycle
    expect(await perCycle(600_000)).toEqual([1, 1, 1]); // after: 900 s of keys, one page
  });
});

describe('FsObjectStore.list from a key', () => {
  it('equals the full listing filtered by startAfter, whatever the keys (property)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'list-test-'));
    try {
      const segment = fc.stringMatching(/^[a-c0-2-]{1,3}$/);
      await fc.assert(
        fc.asyncProperty(fc.uniqueArray(fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => s.join('/'))), fc.array(segment, { minLength: 0, maxLength: 3 }), async (keys, after) => {
          const root = mkdtempSync(join(dir, 's-'));
          const store = new FsObjectStore(root);
          // A key can't also be a folder of another key on disk: keep those that fit.
          const kept = keys.filter((k) => !keys.some((o) => o !== k && o.startsWith(`${k}/`)));
          for (const k of kept) await store.put(`p/${k}`, new Uint8Array([1]));
          const startAfter = after.length ? `p/${after.join('/')}` : '';
          const all = (await store.list('p/')).map((o) => o.key);
          expect((await store.list('p/', startAfter)).map((o) => o.key)).toEqual(all.filter((k) => k > startAfter));
        }),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
