// The curated MERGE against the reference semantics — apply each event once, in event-id order,
// an update leaving its omitted (unchanged TOASTed) columns as they were — for any split of the
// events into archive objects, delivered in any order, with objects and events repeated.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { gzipSync } from 'node:zlib';
import { DuckDbWarehouse, loadObject } from './duckdb.js';

const KEYS = ['33333333-0000-4000-8000-000000000001', '33333333-0000-4000-8000-000000000002', '33333333-0000-4000-8000-000000000003'];
const WS = '11111111-1111-4111-8111-111111111111';
const PROJECT = '22222222-2222-4222-8222-222222222222';
const OMITTABLE = ['title', 'description'] as const;

interface Step {
  key: number;
  op: 'c' | 'u' | 'd';
  title: string;
  description: string | null;
  status: string;
  omitted: Array<(typeof OMITTABLE)[number]>;
}

type Row = { id: string; title: string | null; description: string | null; status: string | null };

const stepArb: fc.Arbitrary<Step> = fc.record({
  key: fc.integer({ min: 0, max: KEYS.length - 1 }),
  op: fc.constantFrom('c', 'u', 'u', 'u', 'd'),
  title: fc.constantFrom('a', 'b', 'c'),
  description: fc.constantFrom('x', 'y', null),
  status: fc.constantFrom('todo', 'doing', 'done'),
  omitted: fc.subarray([...OMITTABLE]),
});

function envelope(step: Step, i: number): Record<string, unknown> {
  const id = `${(0x1000 + i).toString(16).toUpperCase().padStart(16, '0')}-00000000`;
  const keyId = KEYS[step.key]!;
  const full = { id: keyId, workspace_id: WS, project_id: PROJECT, title: step.title, description: step.description, status: step.status, priority: 1 };
  const after = step.op === 'd' ? null : step.op === 'u' ? Object.fromEntries(Object.entries(full).filter(([k]) => !(step.omitted as string[]).includes(k))) : full;
  return {
    id,
    // Commit times grow with the id, 3 h apart: a batch's dedup window (tables.ts stagedSql) holds
    // only its own events' times, so a copy of an event loaded by an earlier batch is found there.
    time: new Date(Date.UTC(2026, 10, 26, 12) + i * 3 * 3_600_000).toISOString(),
    type: `taskflow.task.${{ c: 'created', u: 'updated', d: 'deleted' }[step.op]}`,
    workspaceid: WS,
    projectid: PROJECT,
    data: { op: step.op, table: 'tasks', key: { id: keyId }, before: step.op === 'd' ? { id: keyId, workspace_id: WS, project_id: PROJECT } : null, after, ...(step.op === 'u' ? { omitted: step.omitted } : {}) },
  };
}

/** Each event once, in id order (the steps are in id order already). */
function reference(steps: readonly Step[]): Row[] {
  const rows = new Map<string, Row>();
  for (const s of steps) {
    const id = KEYS[s.key]!;
    if (s.op === 'd') rows.delete(id);
    else if (s.op === 'c') rows.set(id, { id, title: s.title, description: s.description, status: s.status });
    else {
      const old = rows.get(id);
      rows.set(id, {
        id,
        title: s.omitted.includes('title') ? (old?.title ?? null) : s.title,
        description: s.omitted.includes('description') ? (old?.description ?? null) : s.description,
        status: s.status,
      });
    }
  }
  return [...rows.values()].sort((a, b) => a.id.localeCompare(b.id));
}

let warehouse: DuckDbWarehouse;
beforeAll(async () => {
  warehouse = await DuckDbWarehouse.open(':memory:');
});
afterAll(async () => {
  await warehouse.close();
});

describe('curated MERGE', () => {
  it('equals applying every event once in id order, for any objects, order and repeats; omitted columns are never overwritten', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(stepArb, { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 5 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
        async (steps, cuts, order) => {
          run++;
          // A fresh set of tables per run: clear what the previous run loaded.
          for (const t of ['load_log', 'raw_events', 'truncations', 'tasks_state']) await warehouse.query(`DELETE FROM ${t}`);
          const lines = steps.map((s, i) => `${JSON.stringify(envelope(s, i))}\n`);
          // Split into objects at the cut points, each line possibly in two objects (a resend).
          const bounds = [...new Set(cuts.map((c) => c % (lines.length + 1)))].sort((a, b) => a - b);
          const objects: string[][] = [];
          let start = 0;
          for (const b of [...bounds, lines.length]) {
            if (b > start) objects.push(lines.slice(start, b));
            start = Math.max(start, b);
          }
          const extra = objects.length > 0 ? [objects[order[0]! % objects.length]!.slice(0, 1 + (order[0]! % 3))] : [];
          const all = [...objects, ...extra];
          // Deliver in the order `order` picks, each object at least once, some twice (a second delivery is a no-op).
          const sequence = [...order.map((o) => o % all.length), ...all.map((_, i) => i)];
          const deliveries = sequence.map((i) => ({ key: `raw/obj-${run}-${i}`, body: gzipSync(all[i]!.join('')) }));
          // One object per transaction, or all in one (a loader catching up; repeated keys within it skipped).
          if (order[0]! % 2 === 0) for (const o of deliveries) await loadObject(warehouse, o.key, o.body);
          else await warehouse.loadObjects(deliveries);
          const rows = (await warehouse.query('SELECT id, title, description, status FROM tasks ORDER BY id')) as Row[];
          expect(rows).toEqual(reference(steps));
          const raw = await warehouse.query('SELECT count(*)::INTEGER AS n, count(DISTINCT id)::INTEGER AS d FROM raw_events');
          expect(raw[0]).toEqual({ n: steps.length, d: steps.length });
        },
      ),
      { numRuns: 25 },
    );
  }, 180_000);

  it('a query issued while a load runs sees it whole or not at all', async () => {
    const lines = Array.from({ length: 200 }, (_, i) => `${JSON.stringify(envelope({ key: i % 3, op: 'u', title: 'a', description: 'x', status: 'todo', omitted: [] }, 5000 + i))}\n`);
    const seen: unknown[] = [];
    let done = false;
    const load = warehouse.loadObjects(Array.from({ length: 8 }, (_, o) => ({ key: `raw/concurrent-${o}`, body: gzipSync(lines.slice(o * 25, o * 25 + 25).join('')) }))).finally(() => (done = true));
    while (!done) seen.push((await warehouse.query('SELECT (SELECT count(*) FROM raw_events WHERE id >= \'0000000000001388\')::INTEGER AS raw, (SELECT coalesce(sum(new_events), 0) FROM load_log WHERE object_key LIKE \'raw/concurrent-%\')::INTEGER AS logged'))[0]);
    await load;
    expect(seen.length).toBeGreaterThan(0);
    for (const s of seen) expect([{ raw: 0, logged: 0 }, { raw: 200, logged: 200 }]).toContainEqual(s);
  });

  it('loads an object once: a second load of the same key is refused by the load log', async () => {
    const line = `${JSON.stringify(envelope({ key: 0, op: 'c', title: 't', description: null, status: 'todo', omitted: [] }, 999))}\n`;
    expect(await loadObject(warehouse, 'raw/once', gzipSync(line))).toEqual({ events: 1, newEvents: 1, newestEventMs: Date.parse(JSON.parse(line).time as string) });
    expect(await loadObject(warehouse, 'raw/once', gzipSync(line))).toBe('already-loaded');
    expect((await warehouse.loadedKeys()).has('raw/once')).toBe(true);
  });
});
