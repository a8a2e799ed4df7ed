// Each data-quality check passes on a consistent warehouse and names its failing rows when the
// data breaks it (DuckDB, events loaded directly: the warehouse does not re-validate).
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { gzipSync } from 'node:zlib';
import { sampleEvent } from '../../schemas/fixtures.js';
import { runDataQuality, DQ_CHECKS } from './dq.js';
import { DuckDbWarehouse, loadObject } from './duckdb.js';

const T0 = Date.parse('2026-11-26T12:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString().replace('Z', '000Z');
const settings = (nowSeconds = 120) => ({ freshnessMaxSeconds: 300, settleSeconds: 30, now: new Date(T0 + nowSeconds * 1000) });
const PROJECT = '22222222-2222-4222-8222-222222222222';
const TASK = '33333333-3333-4333-8333-333333333333';

/** A project, a task in it, a comment on it: consistent. */
function consistent(): object[] {
  return [
    sampleEvent('project.created', { commitLsn: 0x10n, entityId: PROJECT, time: at(0) }),
    sampleEvent('task.created', { commitLsn: 0x20n, entityId: TASK, time: at(1) }),
    sampleEvent('comment.created', { commitLsn: 0x30n, time: at(2) }),
    sampleEvent('task.updated', { commitLsn: 0x40n, entityId: TASK, time: at(100), row: { status: 'done' } }),
  ];
}

let warehouse: DuckDbWarehouse;
let objects = 0;
const load = (events: object[]) => loadObject(warehouse, `raw/${objects++}`, gzipSync(events.map((e) => `${JSON.stringify(e)}\n`).join('')));
const failing = async (now?: number) => (await runDataQuality(warehouse, settings(now))).filter((r) => !r.passed);

beforeEach(async () => {
  warehouse = await DuckDbWarehouse.open(':memory:');
});
afterEach(async () => {
  await warehouse.close();
});

describe('data quality', () => {
  it('passes every check on consistent data and records each in dq_results', async () => {
    await load(consistent());
    expect(await failing()).toEqual([]);
    expect(await warehouse.query('SELECT count(*)::INTEGER AS n FROM dq_results WHERE passed')).toEqual([{ n: DQ_CHECKS.length }]);
  });

  it('freshness: names the latest commit when it is older than allowed', async () => {
    await load(consistent());
    const [stale] = await failing(100 + 301);
    expect(stale).toMatchObject({ check: 'freshness', failingRows: 1 });
    expect(stale!.sample[0]!.age_seconds).toBe(301);
  });

  it('referential integrity: a comment whose task is gone', async () => {
    await load([...consistent(), sampleEvent('task.deleted', { commitLsn: 0x50n, entityId: TASK, time: at(101) })]);
    const result = await failing();
    expect(result.map((r) => r.check)).toEqual(['referential_integrity']);
    expect(result[0]!.sample).toEqual([{ id: '44444444-4444-4444-8444-444444444444', problem: 'comment without its task' }]);
  });

  it('accepted values: a task status outside the enum', async () => {
    await load([...consistent(), sampleEvent('task.updated', { commitLsn: 0x50n, entityId: TASK, time: at(101), row: { status: 'archived' as 'done' } })]);
    const result = await failing();
    expect(result.map((r) => r.check)).toEqual(['accepted_values']);
    expect(result[0]!.sample).toEqual([{ id: TASK, field: 'status', value: 'archived' }]);
  });

  it('order: a commit time that goes back within a workspace', async () => {
    await load([...consistent(), sampleEvent('task.updated', { commitLsn: 0x50n, entityId: TASK, time: at(50) })]);
    const result = await failing();
    expect(result.map((r) => r.check)).toEqual(['order_monotonic']);
    expect(result[0]!.sample[0]).toMatchObject({ id: '0000000000000050-00000000', previous_id: '0000000000000040-00000000' });
  });

  it('volume: a settled transaction missing one of its events', async () => {
    await load([...consistent(), sampleEvent('task.updated', { commitLsn: 0x50n, txIndex: 0, txSize: 2, entityId: TASK, time: at(20) })]);
    const result = await failing();
    expect(result.map((r) => r.check)).toContain('volume_complete_transactions');
    expect(result.find((r) => r.check === 'volume_complete_transactions')!.sample).toEqual([{ lsn: '0/50', tx_size: 2, events: 1 }]);
  });

  it('keys not null: an entity event without its key', async () => {
    const broken = sampleEvent('task.updated', { commitLsn: 0x50n, entityId: TASK, time: at(101) }) as unknown as { data: { key?: unknown } };
    delete broken.data.key;
    await load([...consistent(), broken]);
    const result = await failing();
    expect(result.map((r) => r.check)).toEqual(['keys_not_null']);
    expect(result[0]!.sample).toEqual([{ id: '0000000000000050-00000000', type: 'taskflow.task.updated', at: 'raw_events' }]);
  });

  it('event ids unique: holds by construction (the raw table refuses a second copy)', async () => {
    await load(consistent());
    await load(consistent());
    expect(await warehouse.query('SELECT count(*)::INTEGER AS n FROM raw_events')).toEqual([{ n: 4 }]);
    expect(await failing()).toEqual([]);
  });
});
