import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { Rng, stableUuid } from './random.js';
import { DEMO, demoRows } from './seed.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[45][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('deterministic randomness', () => {
  it('stableUuid is a pure function of the name', () => {
    expect(stableUuid('demo:x')).toBe(stableUuid('demo:x'));
    expect(stableUuid('demo:x')).not.toBe(stableUuid('demo:y'));
    expect(stableUuid('demo:x')).toMatch(UUID);
  });

  it('the same seed gives the same sequence, another seed another one', () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const a = new Rng(seed);
        const b = new Rng(seed);
        const c = new Rng(seed + 1);
        const xs = Array.from({ length: 8 }, () => a.next());
        expect(Array.from({ length: 8 }, () => b.next())).toEqual(xs);
        expect(Array.from({ length: 8 }, () => c.next())).not.toEqual(xs);
      }),
    );
  });

  it('int stays within its bounds and uuid is well-formed', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: -50, max: 50 }), fc.integer({ min: 0, max: 50 }), (seed, min, span) => {
        const rng = new Rng(seed);
        for (let i = 0; i < 20; i++) {
          const v = rng.int(min, min + span);
          expect(v >= min && v <= min + span && Number.isInteger(v)).toBe(true);
        }
        expect(rng.uuid()).toMatch(UUID);
      }),
    );
  });
});

describe('demo data', () => {
  it('has stable ids and unique primary keys', () => {
    expect(DEMO.projectId).toBe(stableUuid('demo:project:websiteRelaunch'));
    const rows = demoRows();
    const keys = rows.map((r) => `${r.table}:${String(r.values.id)}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(rows.filter((r) => r.table === 'tasks' && r.values.project_id === DEMO.projectId).length).toBeGreaterThanOrEqual(8);
  });
});
