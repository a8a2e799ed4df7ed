// Capture labels each event with the schema version its table's columns match (schemas/versions.ts):
// a migration changes the version from the first row written after it, with no restart.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { Pgoutput } from 'pg-logical-replication';
import { versionForColumns } from '../schemas/versions.js';
import { validateEvent } from '../schemas/validate.js';
import { ChangeDecoder } from './decoder.js';
import { parseTextArray } from './values.js';

const WS = '7f1c2a4e-0000-4000-8000-000000000001';
const P = '7f1c2a4e-0000-4000-8000-0000000000aa';
const uuid = (n: number) => `7f1c2a4e-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const V1 = ['id', 'workspace_id', 'project_id', 'title', 'description', 'status', 'priority', 'assignee_id', 'due_date', 'position', 'created_by', 'created_at', 'updated_at'];
const EXPAND = [...V1.slice(0, -2), 'created_at', 'updated_at', 'labels', 'due_at'];
const CONTRACT = EXPAND.filter((c) => c !== 'due_date');

function relation(cols: string[]): Pgoutput.MessageRelation {
  const keys = ['id', 'workspace_id', 'project_id'];
  return {
    tag: 'relation', relationOid: 1, schema: 'public', name: 'tasks', replicaIdentity: 'index', keyColumns: keys,
    columns: cols.map((name) => ({ name, flags: keys.includes(name) ? 1 : 0, typeOid: 25, typeMod: -1, typeSchema: null, typeName: null, parser: (v: unknown) => v })),
  };
}

describe('versionForColumns', () => {
  it('is the oldest version declaring every column, the newest for a table mid-migration', () => {
    expect(versionForColumns('task', V1)).toBe(1);
    expect(versionForColumns('task', ['id', 'workspace_id', 'project_id'])).toBe(1); // any subset of v1
    expect(versionForColumns('task', EXPAND)).toBe(2); // due_date and due_at side by side: no version has both
    expect(versionForColumns('task', CONTRACT)).toBe(2);
    expect(versionForColumns('comment', ['id', 'workspace_id', 'project_id', 'task_id', 'author_id', 'body', 'created_at', 'updated_at'])).toBe(1);
    expect(versionForColumns('comment', ['id', 'workspace_id', 'project_id', 'body', 'edited_at'])).toBe(2);
    expect(versionForColumns('membership', ['id', 'workspace_id', 'user_id', 'role'])).toBe(1);
  });
});

describe('capture across a migration', () => {
  it('labels rows written before the DDL v1 and after it v2, within one stream and one decoder', () => {
    const d = new ChangeDecoder({ source: '//taskflow/capture/taskflow', db: 'taskflow' });
    const base = { id: uuid(1), workspace_id: WS, project_id: P, title: 't', description: null, status: 'todo', priority: 2, assignee_id: null, position: 1, created_by: null, created_at: '2026-11-18T11:06:40Z', updated_at: '2026-11-18T11:06:40Z' };
    const rows: [Pgoutput.MessageRelation, Record<string, unknown>][] = [
      [relation(V1), { ...base, due_date: '2026-12-01' }],
      [relation(EXPAND), { ...base, due_date: '2026-12-01', labels: ['x'], due_at: '2026-12-01T00:00:00Z' }],
      [relation(CONTRACT), { ...base, labels: [], due_at: null }],
    ];
    const seen: string[] = [];
    rows.forEach(([rel, row], i) => {
      const lsn = `0/${(0x100 * (i + 1)).toString(16).toUpperCase()}`;
      d.handle({ tag: 'begin', commitLsn: lsn, commitTime: 1_795_000_000_123_456n, xid: 700 + i });
      d.handle(rel); // the server sends the new relation before the first row after the DDL
      d.handle({ tag: 'insert', relation: rel, new: { ...row, id: uuid(i + 1) } });
      d.handle({ tag: 'update', relation: rel, key: null, old: null, new: { ...row, id: uuid(i + 1), title: 'u' } });
      const r = d.handle({ tag: 'commit', flags: 0, commitLsn: lsn, commitEndLsn: lsn, commitTime: 1_795_000_000_123_456n });
      if (r?.kind !== 'transaction') throw new Error('no transaction');
      for (const e of r.tx.events) {
        seen.push(e.envelope.dataschema);
        const valid = validateEvent(JSON.parse(JSON.stringify(e.envelope)));
        if (!valid.ok) throw new Error(`${valid.reason}: ${valid.message}`);
        expect(valid.upcastFrom ?? null).toBe(i === 0 ? 1 : null);
      }
    });
    expect(seen).toEqual(['v1', 'v1', 'v2', 'v2', 'v2', 'v2'].map((v) => `taskflow://schemas/task/${v}`));
  });
});

/** A one-dimensional text[] literal as Postgres writes it (array_out). */
function arrayLiteral(items: (string | null)[]): string {
  const quote = (s: string) => (s === '' || /[{},"\\\s]/.test(s) || s.toUpperCase() === 'NULL' ? `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"` : s);
  return `{${items.map((s) => (s === null ? 'NULL' : quote(s))).join(',')}}`;
}

describe('parseTextArray', () => {
  it('reads every one-dimensional text[] literal back into its list', () => {
    fc.assert(
      fc.property(fc.array(fc.option(fc.string({ unit: 'grapheme' }), { nil: null, freq: 8 }), { maxLength: 8 }), (items) => {
        expect(parseTextArray(arrayLiteral(items))).toEqual(items);
      }),
    );
  });

  it('passes what it does not read through as text', () => {
    expect(parseTextArray('{}')).toEqual([]);
    expect(parseTextArray('{{a,b},{c,d}}')).toBe('{{a,b},{c,d}}');
    expect(parseTextArray('[1:2]={a,b}')).toBe('[1:2]={a,b}');
  });
});
