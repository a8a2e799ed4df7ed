import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { GDPR_ERASURE_TABLE } from '../schemas/kinds.js';
import { SINGLE_PARTITION, partitionName, partitionRowFilter, partitionTables, partitionTxIndex, pgHashBytes, workspacePartition } from './partitions.js';

const TABLES = ['projects', 'memberships', 'tasks', 'comments'];

describe('pgHashBytes', () => {
  it("equals PostgreSQL 17's hashtext / uuid_hash (values read from the server) for every tail length", () => {
    const hashtext: [string, number][] = [['', -1477818771], ['a', 1075015857], ['abc', -785388649], ['abcd', -393934804], ['abcdefg', 501636814], ['abcdefgh', -1960928205], ['abcdefghijk', -1483803693], ['abcdefghijkl', -1586087212], ['abcdefghijklm', 405849808], ['abcdefghijklmnopqrstuvwxy', 980150893]];
    for (const [s, h] of hashtext) expect(pgHashBytes(Buffer.from(s)) | 0).toBe(h);
    const uuidHash: [string, number, number, number][] = [
      ['00000000-0000-0000-0000-000000000000', 1353656403, 1, 1],
      ['ffffffff-ffff-ffff-ffff-ffffffffffff', -682383255, 1, 1],
      ['cf098b1a-2814-4825-bae1-b1fb2ea37637', -624366756, 0, 3],
      ['123e4567-e89b-12d3-a456-426614174000', 1944658063, 1, 5],
    ];
    for (const [id, h, p2, p7] of uuidHash) {
      expect(pgHashBytes(Buffer.from(id.replace(/-/g, ''), 'hex')) | 0).toBe(h);
      expect([workspacePartition(id, 2), workspacePartition(id, 7)]).toEqual([p2, p7]);
    }
  });
});

describe('workspace partitions', () => {
  it('puts every workspace in exactly one partition, the same one each time, and all in partition 0 of 1', () => {
    fc.assert(
      fc.property(fc.uuid(), fc.integer({ min: 1, max: 64 }), (ws, count) => {
        const p = workspacePartition(ws, count);
        expect(Number.isInteger(p) && p >= 0 && p < count).toBe(true);
        expect(workspacePartition(ws.toUpperCase(), count)).toBe(p);
        expect(workspacePartition(ws, 1)).toBe(0);
        // a partition's workspaces are the ones its filter keeps: exactly one of the N filters matches
        const matching = Array.from({ length: count }, (_, index) => index).filter((index) => index === ((pgHashBytes(Buffer.from(ws.replace(/-/g, ''), 'hex')) & 0x7fffffff) % count));
        expect(matching).toEqual([p]);
      }),
    );
  });

  it('spreads workspaces evenly: each of N partitions gets its share of 4,000 random workspaces within 25%', () => {
    fc.assert(
      fc.property(fc.array(fc.uuid(), { minLength: 4000, maxLength: 4000 }), fc.integer({ min: 2, max: 8 }), (ids, count) => {
        const per = new Array<number>(count).fill(0);
        for (const id of new Set(ids)) per[workspacePartition(id, count)]! += 1;
        const share = new Set(ids).size / count;
        for (const n of per) expect(Math.abs(n - share) / share).toBeLessThan(0.25);
      }),
      { numRuns: 10 },
    );
  });

  it('keeps ids unique across the partitions of one transaction and in order within each', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 16 }), fc.array(fc.nat({ max: 15 }), { maxLength: 60 }), (count, owners) => {
        // owners[i]: the partition of the transaction's i-th change (mod count)
        const seen = new Set<number>();
        const perPartition = new Map<number, number[]>();
        for (const owner of owners) {
          const index = owner % count;
          const list = perPartition.get(index) ?? [];
          const txIndex = partitionTxIndex(list.length, { index, count });
          expect(seen.has(txIndex)).toBe(false);
          seen.add(txIndex);
          list.push(txIndex);
          perPartition.set(index, list);
        }
        for (const list of perPartition.values()) expect([...list].sort((a, b) => a - b)).toEqual(list);
      }),
    );
    expect(partitionTxIndex(7, SINGLE_PARTITION)).toBe(7);
  });

  it('one partition keeps the names and tables of today; N partitions filter every workspace table and give the erasure table to partition 0', () => {
    expect(partitionName('taskflow_capture', SINGLE_PARTITION)).toBe('taskflow_capture');
    expect(partitionRowFilter(SINGLE_PARTITION)).toBeUndefined();
    expect(partitionTables(SINGLE_PARTITION, TABLES)).toEqual([...TABLES, GDPR_ERASURE_TABLE].map((table) => ({ table })));
    expect(partitionName('taskflow_capture', { index: 1, count: 4 })).toBe('taskflow_capture_p1of4');
    const filter = '((uuid_hash(workspace_id) & 2147483647) % 4) = 1';
    expect(partitionTables({ index: 1, count: 4 }, TABLES)).toEqual(TABLES.map((table) => ({ table, filter })));
    expect(partitionTables({ index: 0, count: 4 }, TABLES).map((t) => t.table)).toEqual([...TABLES, GDPR_ERASURE_TABLE]);
  });
});
