// The decoder on real pgoutput bytes: test/fixtures/pgoutput.json, recorded from PostgreSQL by
// `npm run fixtures:pgoutput` (test/fixtures/record-pgoutput.ts; rerunning it reproduces the file).
// Every captured table × insert / update / delete / truncate, an update leaving a TOASTed column
// unchanged, and changed-column capture opted in and out, parsed as capture parses a session's
// messages (pg-logical-replication's PgoutputPlugin, capture's column parsers) and checked
// against the schemas.
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { validateEvent } from '../schemas/validate.js';
import { type CommittedTransaction, ChangeDecoder } from './decoder.js';
import { CAPTURED_TABLES } from './slot-setup.js';
import { useCaptureColumnParsers } from './values.js';

interface Fixture {
  postgres: string;
  publication: string;
  scenarios: { name: string; sql: string; messages: string[] }[];
}
const fixture = JSON.parse(readFileSync(new URL('../test/fixtures/pgoutput.json', import.meta.url), 'utf8')) as Fixture;

const WS = '0f1c0000-0000-4000-8000-000000000001';
const PROJECT = '0f1c0000-0000-4000-8000-0000000000b1';
const TASK = '0f1c0000-0000-4000-8000-0000000000d1';
const TOAST_TASK = '0f1c0000-0000-4000-8000-0000000000d2';

/** The parts of an envelope the assertions read. */
interface Envelope {
  id: string;
  type: string;
  time: string;
  subject: string;
  workspaceid: string;
  projectid?: string;
  data: { op: string; table: string; key?: Record<string, unknown>; before?: Record<string, unknown> | null; after?: Record<string, unknown> | null; changed?: string[]; omitted?: string[]; tables?: string[] };
}

/** Each scenario's committed transactions, decoded in the recorded order by one plugin and decoder, as one session would. */
function decodeAll(): Map<string, CommittedTransaction[]> {
  const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [fixture.publication], messages: true });
  const decoder = new ChangeDecoder({ source: '//taskflow/capture/taskflow', db: 'taskflow' });
  const out = new Map<string, CommittedTransaction[]>();
  for (const scenario of fixture.scenarios) {
    const txs: CommittedTransaction[] = [];
    for (const b64 of scenario.messages) {
      const msg = plugin.parse(Buffer.from(b64, 'base64')) as Pgoutput.Message;
      useCaptureColumnParsers(msg);
      const r = decoder.handle(msg);
      if (r?.kind === 'transaction') txs.push(r.tx);
    }
    out.set(scenario.name, txs);
  }
  return out;
}

const decoded = decodeAll();
/** The one event of a one-row scenario. */
function only(name: string): Envelope {
  const txs = decoded.get(name);
  expect(txs).toHaveLength(1);
  expect(txs![0]!.events).toHaveLength(1);
  return txs![0]!.events[0]!.envelope as unknown as Envelope;
}

describe('ChangeDecoder on recorded pgoutput', () => {
  it(`decodes every scenario to envelopes the schemas accept (PostgreSQL ${fixture.postgres})`, () => {
    const ids: string[] = [];
    for (const [name, txs] of decoded) {
      expect({ name, transactions: txs.length }).toEqual({ name, transactions: 1 });
      for (const e of txs[0]!.events) {
        const r = validateEvent(JSON.parse(JSON.stringify(e.envelope)));
        if (!r.ok) throw new Error(`${name}: ${r.reason}: ${r.message}`);
        ids.push((e.envelope as unknown as Envelope).id);
      }
    }
    expect([...ids].sort()).toEqual(ids); // event ids follow the commit order
  });

  it('covers every captured table with insert, update, delete and truncate', () => {
    const seen = new Set<string>();
    for (const txs of decoded.values()) for (const e of txs[0]!.events) seen.add(`${(e.envelope as unknown as Envelope).data.table} ${e.op}`);
    const wanted = CAPTURED_TABLES.flatMap((t) => ['c', 'u', 'd', 't'].map((op) => `${t} ${op}`));
    expect(wanted.filter((w) => !seen.has(w))).toEqual([]);
  });

  it('an insert carries the whole row with typed values, routed by workspace and project', () => {
    const e = only('tasks insert');
    expect(e).toMatchObject({ type: 'taskflow.task.created', subject: `tasks/${TASK}`, workspaceid: WS, projectid: PROJECT, time: '2026-01-01T00:00:02.000000Z' });
    expect(e.data).toMatchObject({ op: 'c', key: { id: TASK }, before: null });
    expect(e.data.after).toMatchObject({ title: 'Write the plan', description: null, status: 'todo', priority: 1, due_date: '2026-02-01', position: 1.5, created_at: '2026-01-01T00:00:00Z' });
    expect(decoded.get('tasks insert')![0]!.events[0]!.partitionKey).toBe(WS);
  });

  it("an update without changed-column capture lists every column of after as changed; before is null when the identity did not change", () => {
    for (const name of ['projects update', 'memberships update', 'tasks update', 'comments update', 'tasks update, changed columns opted out']) {
      const e = only(name);
      expect({ name, op: e.data.op, before: e.data.before, omitted: e.data.omitted }).toEqual({ name, op: 'u', before: null, omitted: [] });
      expect(e.data.changed).toEqual(Object.keys(e.data.after!));
    }
    expect(only('tasks update').data.after).toMatchObject({ status: 'in_progress', position: 2 });
    expect(only('memberships update').data.after).toMatchObject({ role: 'admin' });
  });

  it('an update with changed-column capture opted in lists only the columns it changed', () => {
    const e = only('tasks update, changed columns opted in');
    expect(e.data.changed).toEqual(['title']);
    expect(e.data.after).toMatchObject({ title: 'Write the plan (draft)' });
    expect(decoded.get('tasks update, changed columns opted in')![0]!.messages).toEqual([]); // the trigger's message was consumed
  });

  it('an unchanged TOASTed column is left out of after and named in omitted, never reported as null', () => {
    expect((only('tasks insert with a TOASTed description').data.after!.description as string).length).toBe(8192);
    const e = only('tasks update leaving the TOASTed description unchanged');
    expect(e.subject).toBe(`tasks/${TOAST_TASK}`);
    expect(e.data.omitted).toEqual(['description']);
    expect(e.data.after).not.toHaveProperty('description');
    expect(e.data.changed).not.toContain('description');
    expect(e.data.after).toMatchObject({ status: 'review' });
  });

  it('a delete carries the replica identity as before; a membership delete has no project to route by', () => {
    const task = only('tasks delete');
    expect(task.data).toMatchObject({ op: 'd', after: null, before: { id: TASK, workspace_id: WS, project_id: PROJECT } });
    expect(task.projectid).toBe(PROJECT);
    const membership = only('memberships delete');
    expect(Object.keys(membership.data.before!).sort()).toEqual(['id', 'user_id', 'workspace_id']);
    expect(membership).not.toHaveProperty('projectid');
  });

  it('a truncate is one event for all workspaces naming every table it emptied, cascades included', () => {
    expect(only('comments truncate')).toMatchObject({ type: 'taskflow.table.truncated', workspaceid: '*', data: { op: 't', tables: ['comments'] } });
    expect(only('tasks truncate').data.tables).toEqual(['tasks', 'comments']);
    expect(only('projects truncate').data.tables).toEqual(['projects', 'memberships', 'tasks', 'comments']);
    expect(decoded.get('projects truncate')![0]!.events[0]!.partitionKey).toBe('*');
  });
});
