// The warehouse erasure sinks (analytics/erasure-sink.ts) against the real loader process
// (`taskflow analytics load`, which holds the DuckDB file) through its internal erasure endpoint:
// archive objects holding a subject's task, comment, membership and their email in another's
// comment are loaded; the sinks find them, purge, find none, and a repeat changes nothing; the
// loader keeps loading; only a service:gdpr token is accepted. After the loader stops, the file
// itself is read: the raw rows are there without the identifiers.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { openErasureSinks } from '../../analytics/erasure-sink.js';
import { DuckDbWarehouse } from '../../analytics/warehouse/duckdb.js';
import type { ErasureSink, SubjectIdentifiers } from '../../lib/erasure.js';
import { signDevToken } from '../../lib/jwt.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { type ServiceProcess, startServiceProcess } from '../support/service-process.js';
import { createTestTables, testStackEnv } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

const JWT_SECRET = 'warehouse-erasure-test-secret-0123456789';
const SUBJECT = '11111111-1111-4111-8111-00000000f001';
const OTHER = '11111111-1111-4111-8111-00000000f002';
const id = (s: string) => `33333333-3333-4333-8333-0000000f00${s}`;
const REMARK = 'a remark nobody else should read';
const IDS: SubjectIdentifiers = {
  subject: SUBJECT,
  email: 'grace@example.com',
  displayName: 'Grace Hopper',
  authored: [
    { table: 'tasks', id: id('01'), text: 'her private plan' },
    { table: 'comments', id: id('03'), text: REMARK },
  ],
};
const at = (s: number) => `2026-11-26T12:00:${String(s).padStart(2, '0')}.000000Z`;
const EVENTS = [
  sampleEvent('task.created', { commitLsn: 0x100n, time: at(1), entityId: id('01'), userId: SUBJECT, row: { description: 'her private plan' } }),
  sampleEvent('task.created', { commitLsn: 0x200n, time: at(2), entityId: id('02'), userId: OTHER, row: { description: 'nothing personal' } }),
  sampleEvent('comment.created', { commitLsn: 0x300n, time: at(3), entityId: id('03'), userId: SUBJECT, row: { task_id: id('01'), body: REMARK } }),
  sampleEvent('comment.created', { commitLsn: 0x400n, time: at(4), entityId: id('04'), userId: OTHER, row: { task_id: id('01'), body: 'ask grace@example.com' } }),
  sampleEvent('membership.created', { commitLsn: 0x500n, time: at(5), entityId: id('05'), userId: SUBJECT }),
];

let dir: string;
let env: Record<string, string>;
let loader: ServiceProcess | undefined;

function archive(n: number, events: readonly object[]): void {
  const folder = join(dir, 's3', 'archive', 'raw', '2026', '11', '26', '12');
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, `archive-1-2026-11-26-12-00-0${n}-0000000${n}-aaaa-bbbb-cccc-dddddddddddd.gz`), gzipSync(events.map((e) => `${JSON.stringify(e)}\n`).join('')));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gdpr-warehouse-'));
  const tables = await createTestTables('gdpr-warehouse', ['dlq']);
  env = {
    ...testStackEnv(),
    DYNAMODB_TABLE_DLQ: tables.dlq!,
    S3_DIR: join(dir, 's3'),
    ARCHIVE_BUCKET: 'archive',
    WAREHOUSE_PATH: join(dir, 'warehouse.duckdb'),
    LOADER_POLL_INTERVAL_MS: '50',
    LOADER_FULL_LIST_INTERVAL_MS: '0',
    RETENTION_INTERVAL_MS: '0',
    DQ_INTERVAL_MS: '0',
    METRICS_PORT: '0',
    LOADER_ERASURE_PORT: '0',
    JWT_SECRET,
  };
  archive(1, EVENTS.slice(0, 2));
  archive(2, EVENTS.slice(2));
  loader = await startServiceProcess(['analytics', 'load'], env, ['loader started']);
});

afterAll(async () => {
  await loader?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('warehouse erasure sinks through the loader process', () => {
  it('scan finds the subject in raw and curated, purge, scan finds 0, repeat changes nothing; the loader keeps loading', async () => {
    const url = String(loader!.entries['loader started']!.erasure);
    const opened = await openErasureSinks({ WAREHOUSE_ERASURE_URL: url, JWT_SECRET });
    const [raw, curated] = opened.sinks as [ErasureSink, ErasureSink];
    expect([raw.sink, curated.sink]).toEqual(['warehouse-raw', 'warehouse-curated']);
    // Both objects loaded: the raw scan sees every event.
    const before = await waitFor(async () => {
      const s = await raw.scan(IDS);
      return s.scanned === EVENTS.length && s;
    }, 'both archive objects loaded');
    expect(before.found).toBe(4); // their task, their comment, the other's comment with their email, their membership
    expect((await curated.scan(IDS)).found).toBe(4);

    expect(await raw.purge(IDS)).toEqual({ changed: 4 });
    expect((await curated.purge(IDS)).changed).toBeGreaterThanOrEqual(4);
    expect(await raw.scan(IDS)).toEqual({ scanned: EVENTS.length, found: 0 });
    expect((await curated.scan(IDS)).found).toBe(0);
    expect(await raw.purge(IDS)).toEqual({ changed: 0 });
    expect(await curated.purge(IDS)).toEqual({ changed: 0 });

    // The loader still loads what arrives after the purge.
    archive(3, [sampleEvent('task.created', { commitLsn: 0x600n, time: at(6), entityId: id('06'), userId: OTHER })]);
    await waitFor(async () => (await raw.scan(IDS)).scanned === EVENTS.length + 1, 'the next object loaded');

    // Only the gdpr processor's identity may call the endpoint.
    const asUser = await signDevToken(new TextEncoder().encode(JWT_SECRET), OTHER, { ttlSeconds: 60 });
    const refused = await fetch(`${url}/internal/erasure/warehouse-raw/scan`, { method: 'POST', headers: { authorization: `Bearer ${asUser}` }, body: JSON.stringify(IDS) });
    expect(refused.status).toBe(403);
    expect((await fetch(`${url}/internal/erasure/warehouse-raw/purge`, { method: 'POST', body: JSON.stringify(IDS) })).status).toBe(401);
    const wrongKey = await openErasureSinks({ WAREHOUSE_ERASURE_URL: url, JWT_SECRET: 'another-secret-another-secret-0123456789' });
    await expect(wrongKey.sinks[0]!.scan(IDS)).rejects.toMatchObject({ code: 'WAREHOUSE_ERASURE_FAILED', retriable: false });

    // The file itself, once the loader let go of it.
    await loader!.stop();
    loader = undefined;
    const warehouse = await DuckDbWarehouse.open(env.WAREHOUSE_PATH!);
    try {
      const rows = await warehouse.query('SELECT CAST(event AS VARCHAR) AS e FROM raw_events');
      expect(rows).toHaveLength(EVENTS.length + 1);
      for (const needle of [SUBJECT, 'grace@example.com', REMARK, 'her private plan']) expect(rows.filter((r) => String(r.e).includes(needle))).toEqual([]);
      expect(await warehouse.query(`SELECT id, description, created_by FROM tasks WHERE id = '${id('01')}'`)).toEqual([{ id: id('01'), description: null, created_by: null }]);
    } finally {
      await warehouse.close();
    }
  });

  it('the launcher cannot open the sinks without the endpoint', async () => {
    await expect(openErasureSinks({})).rejects.toMatchObject({ code: 'GDPR_SINK_UNCONFIGURED' });
  });
});
