import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { Pgoutput } from 'pg-logical-replication';
import { formatLsn } from '../lib/event-id.js';
import { validateEvent } from '../schemas/validate.js';
import { actorOf, ChangeDecoder, type CommittedTransaction, formatCommitTime, MAX_ACTOR_BYTES } from './decoder.js';
import { timestampToRfc3339 } from './values.js';

const opts = { source: '//taskflow/capture/taskflow', db: 'taskflow' };
const column = (name: string, key = false) => ({ name, flags: key ? 1 : 0, typeOid: 25, typeMod: -1, typeSchema: null, typeName: null, parser: (v: unknown) => v });

function relation(name: string, cols: string[], keys: string[], oid = 1): Pgoutput.MessageRelation {
  return { tag: 'relation', relationOid: oid, schema: 'public', name, replicaIdentity: 'index', columns: cols.map((c) => column(c, keys.includes(c))), keyColumns: keys };
}
const tasks = relation('tasks', ['id', 'workspace_id', 'project_id', 'title', 'description', 'status'], ['id', 'workspace_id', 'project_id']);
const memberships = relation('memberships', ['id', 'workspace_id', 'user_id', 'project_id', 'role'], ['id', 'workspace_id', 'user_id'], 2);
const projects = relation('projects', ['id', 'workspace_id', 'name'], ['id', 'workspace_id'], 3);

const WS = '7f1c2a4e-0000-4000-8000-000000000001';
const P = '7f1c2a4e-0000-4000-8000-0000000000aa';
const uuid = (n: number) => `7f1c2a4e-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

function begin(lsn: string, xid = 700): Pgoutput.MessageBegin {
  return { tag: 'begin', commitLsn: lsn, commitTime: 1_795_000_000_123_456n, xid };
}
function commit(lsn: string, end: string): Pgoutput.MessageCommit {
  return { tag: 'commit', flags: 0, commitLsn: lsn, commitEndLsn: end, commitTime: 1_795_000_000_123_456n };
}
function run(decoder: ChangeDecoder, msgs: Pgoutput.Message[]): CommittedTransaction[] {
  const out: CommittedTransaction[] = [];
  for (const m of msgs) {
    const r = decoder.handle(m);
    if (r?.kind === 'transaction') out.push(r.tx);
  }
  return out;
}
/** The parts of an envelope the assertions read. */
interface View {
  id: string;
  data: { after: Record<string, unknown> | null; before: unknown; omitted?: string[]; changed?: string[]; source: Record<string, unknown> };
}
const view = (e: { envelope: Record<string, unknown> } | undefined) => e!.envelope as unknown as View;

function expectValid(envelope: unknown) {
  const r = validateEvent(JSON.parse(JSON.stringify(envelope)));
  if (!r.ok) throw new Error(`${r.reason}: ${r.message}\n${JSON.stringify(envelope, null, 1)}`);
}

describe('ChangeDecoder', () => {
  it('turns a transaction into envelopes with ids, commit time, txSize and routing', () => {
    const d = new ChangeDecoder(opts);
    const row = { id: uuid(1), workspace_id: WS, project_id: P, title: 'a', description: 'long', status: 'todo' };
    const [tx] = run(d, [
      begin('0/16B374D8'),
      tasks,
      { tag: 'insert', relation: tasks, new: row },
      // unchanged TOASTed description arrives as undefined
      { tag: 'update', relation: tasks, key: null, old: null, new: { ...row, description: undefined, status: 'done' } },
      { tag: 'delete', relation: tasks, key: { id: uuid(1), workspace_id: WS, project_id: P }, old: null },
      commit('0/16B374D8', '0/16B37508'),
    ]);
    expect(tx).toMatchObject({ xid: 700, commitLsn: 0x16b374d8n, commitEndLsn: 0x16b37508n, size: 3, deadRows: [] });
    const [c, del] = [tx!.events[0]!.envelope, tx!.events[2]!.envelope];
    const u = view(tx!.events[1]);
    expect(c).toMatchObject({
      id: '0000000016B374D8-00000000',
      type: 'taskflow.task.created',
      time: '2026-11-18T11:06:40.123456Z',
      subject: `tasks/${uuid(1)}`,
      workspaceid: WS,
      projectid: P,
      dataschema: 'taskflow://schemas/task/v1',
      data: { op: 'c', key: { id: uuid(1) }, before: null, after: row, source: { lsn: '0/16B374D8', xid: 700, txIndex: 0, txSize: 3, snapshot: false } },
    });
    expect(u.data.after).not.toHaveProperty('description');
    expect(u.data.omitted).toEqual(['description']);
    // No changed-columns message in this transaction: every column of after is all it can say.
    expect(u.data.changed).toEqual(['id', 'workspace_id', 'project_id', 'title', 'status']);
    expect(tx!.changedUnknown).toBe(1);
    expect(u.data.before).toBeNull();
    expect(u.id).toBe('0000000016B374D8-00000001');
    expect(del).toMatchObject({ type: 'taskflow.task.deleted', data: { op: 'd', before: { id: uuid(1), workspace_id: WS, project_id: P }, after: null } });
    for (const e of tx!.events) expectValid(e.envelope);
    expect(tx!.events.map((e) => e.partitionKey)).toEqual([WS, WS, WS]);
  });

  it("lists in `changed` only the columns the update changed, from the row's changed-columns message", () => {
    const d = new ChangeDecoder(opts);
    const row = { id: uuid(1), workspace_id: WS, project_id: P, title: 'a', description: 'long', status: 'todo' };
    const changedMsg = (id: string, columns: string[]): Pgoutput.MessageMessage => ({
      tag: 'message',
      flags: 1,
      transactional: true,
      messageLsn: '0/500',
      prefix: 'taskflow.changed',
      content: Buffer.from(JSON.stringify({ table: 'tasks', id, columns })),
    });
    const watermark: Pgoutput.MessageMessage = { ...changedMsg(uuid(9), []), prefix: 'taskflow.snapshot.low', content: Buffer.from('{}') };
    const [tx] = run(d, [
      begin('0/500'),
      tasks,
      // Two updates of one row and one of another; AFTER ROW triggers may fire after the statement.
      { tag: 'update', relation: tasks, key: null, old: null, new: { ...row, title: 'b' } },
      { tag: 'update', relation: tasks, key: null, old: null, new: { ...row, id: uuid(2), description: undefined, status: 'done' } },
      { tag: 'update', relation: tasks, key: null, old: null, new: { ...row, title: 'b', status: 'done' } },
      changedMsg(uuid(1), ['title']),
      changedMsg(uuid(2), ['status']),
      watermark,
      changedMsg(uuid(1), ['status']),
      commit('0/500', '0/520'),
    ]);
    expect(tx!.events.map((e) => view(e).data.changed)).toEqual([['title'], ['status'], ['status']]);
    expect(tx!.changedUnknown).toBe(0);
    // Only the changed-columns messages are consumed; others (snapshot watermarks) go on.
    expect(tx!.messages.map((m) => m.prefix)).toEqual(['taskflow.snapshot.low']);
    for (const e of tx!.events) expectValid(e.envelope);
  });

  it("keeps a message's bytes although the parser's buffer is reused before the commit", () => {
    const d = new ChangeDecoder(opts);
    const row = { id: uuid(1), workspace_id: WS, project_id: P, title: 'a', description: 'x', status: 'todo' };
    // pg-logical-replication hands out content as a view into the connection's read buffer.
    const readBuffer = Buffer.from(JSON.stringify({ table: 'tasks', id: uuid(1), columns: ['title'] }));
    d.handle(begin('0/600'));
    d.handle({ tag: 'update', relation: tasks, key: null, old: null, new: { ...row, title: 'b' } });
    d.handle({ tag: 'message', flags: 1, transactional: true, messageLsn: '0/600', prefix: 'taskflow.changed', content: readBuffer.subarray(0) });
    d.handle({ tag: 'message', flags: 1, transactional: true, messageLsn: '0/601', prefix: 'wm', content: readBuffer.subarray(0, 4) });
    readBuffer.fill(0x20); // the next chunk lands in the same buffer before the commit arrives
    const out = d.handle(commit('0/600', '0/620'));
    const tx = out?.kind === 'transaction' ? out.tx : undefined;
    expect(view(tx!.events[0]).data.changed).toEqual(['title']);
    expect(Buffer.from(tx!.messages[0]!.content).toString()).toBe('{"ta');
  });

  it('follows a relation change (ALTER TABLE ADD COLUMN) in the middle of the stream', () => {
    const d = new ChangeDecoder(opts);
    const wider = relation('tasks', [...tasks.columns.map((c) => c.name), 'estimate'], tasks.keyColumns);
    const [t1, t2] = run(d, [
      begin('0/100'),
      tasks,
      { tag: 'insert', relation: tasks, new: { id: uuid(1), workspace_id: WS, project_id: P, title: 'a' } },
      commit('0/100', '0/110'),
      begin('0/200'),
      wider,
      { tag: 'insert', relation: wider, new: { id: uuid(2), workspace_id: WS, project_id: P, title: 'b', estimate: '3' } },
      commit('0/200', '0/210'),
    ]);
    expect(view(t1!.events[0]).data.after).not.toHaveProperty('estimate');
    expect(view(t2!.events[0]).data.after?.estimate).toBe('3');
  });

  it('reports truncate as its own event for every workspace', () => {
    const d = new ChangeDecoder(opts);
    const [tx] = run(d, [begin('0/300'), { tag: 'truncate', cascade: true, restartIdentity: false, relations: [tasks, memberships] }, commit('0/300', '0/320')]);
    const e = tx!.events[0]!;
    expect(e.partitionKey).toBe('*');
    expect(e.envelope).toMatchObject({ type: 'taskflow.table.truncated', workspaceid: '*', data: { op: 't', table: 'tasks', tables: ['tasks', 'memberships'] } });
    expectValid(e.envelope);
  });

  it('routes memberships and projects: project id from the row, absent for workspace-wide rows', () => {
    const d = new ChangeDecoder(opts);
    const [tx] = run(d, [
      begin('0/400'),
      { tag: 'insert', relation: memberships, new: { id: uuid(5), workspace_id: WS, user_id: uuid(9), project_id: null, role: 'member' } },
      { tag: 'delete', relation: memberships, key: { id: uuid(5), workspace_id: WS, user_id: uuid(9) }, old: null },
      { tag: 'insert', relation: projects, new: { id: P, workspace_id: WS, name: 'p' } },
      commit('0/400', '0/420'),
    ]);
    const [m1, m2, p] = tx!.events.map((e) => e.envelope as Record<string, unknown>);
    expect(m1).not.toHaveProperty('projectid');
    expect(m2).not.toHaveProperty('projectid');
    expect(p!.projectid).toBe(P);
    for (const e of tx!.events) expectValid(e.envelope);
  });

  it('sends a row without workspace id to the dead letters and keeps its index', () => {
    const d = new ChangeDecoder(opts);
    const [tx] = run(d, [
      begin('0/500'),
      { tag: 'insert', relation: tasks, new: { id: uuid(1), workspace_id: null, project_id: P } },
      { tag: 'insert', relation: tasks, new: { id: uuid(2), workspace_id: WS, project_id: P } },
      commit('0/500', '0/520'),
    ]);
    expect(tx!.deadRows).toMatchObject([{ reason: 'MISSING_WORKSPACE_ID', id: '0000000000000500-00000000', table: 'tasks' }]);
    expect(tx!.events.map((e) => e.id)).toEqual(['0000000000000500-00000001']);
    expect(tx!.size).toBe(2);
  });

  it('passes heartbeats through and keeps transactional messages with their transaction', () => {
    const d = new ChangeDecoder(opts);
    const hb = d.handle({ tag: 'message', flags: 0, transactional: false, messageLsn: '0/600', prefix: 'taskflow.heartbeat', content: new Uint8Array() });
    expect(hb).toMatchObject({ kind: 'message', prefix: 'taskflow.heartbeat', lsn: 0x600n });
    const [tx] = run(d, [begin('0/700'), { tag: 'message', flags: 1, transactional: true, messageLsn: '0/6F0', prefix: 'wm', content: Buffer.from('x') }, commit('0/700', '0/720')]);
    expect(tx).toMatchObject({ size: 0, events: [], messages: [{ prefix: 'wm' }] });
  });

  it("attaches the transaction's taskflow.actor message to each of its events as data.source.actor", () => {
    const d = new ChangeDecoder(opts);
    const row = { id: uuid(1), workspace_id: WS, project_id: P, title: 'a', description: null, status: 'todo' };
    const actorMessage = (content: string, lsn = '0/7F0'): Pgoutput.Message => ({ tag: 'message', flags: 1, transactional: true, messageLsn: lsn, prefix: 'taskflow.actor', content: Buffer.from(content) });
    const [withActor, without, bad] = run(d, [
      begin('0/800'),
      tasks,
      actorMessage(JSON.stringify({ userId: uuid(9), via: 'board' })),
      { tag: 'insert', relation: tasks, new: row },
      { tag: 'update', relation: tasks, key: null, old: null, new: { ...row, status: 'done' } },
      commit('0/800', '0/820'),
      begin('0/900'),
      { tag: 'insert', relation: tasks, new: { ...row, id: uuid(2) } },
      commit('0/900', '0/920'),
      begin('0/A00'),
      actorMessage('{"user": 1}'),
      { tag: 'insert', relation: tasks, new: { ...row, id: uuid(3) } },
      commit('0/A00', '0/A20'),
    ]);
    expect(withActor!.events.map((e) => view(e).data.source.actor)).toEqual([
      { userId: uuid(9), via: 'board' },
      { userId: uuid(9), via: 'board' },
    ]);
    for (const e of withActor!.events) expectValid(e.envelope);
    expect(withActor!.actorProblem).toBeUndefined();
    expect(view(without!.events[0]).data.source).not.toHaveProperty('actor');
    // A malformed actor message leaves the events without an actor and says why.
    expect(view(bad!.events[0]).data.source).not.toHaveProperty('actor');
    expect(bad!.actorProblem).toBe('actor message has no userId string');
    expect(actorOf([{ prefix: 'taskflow.actor', content: Buffer.from('not json') }])).toEqual({ problem: 'actor message is not JSON' });
    expect(actorOf([{ prefix: 'taskflow.actor', content: Buffer.alloc(MAX_ACTOR_BYTES + 1, 32) }]).problem).toMatch(/exceeds/);
    // A truncate carries its transaction's actor too.
    const [truncated] = run(d, [begin('0/B00'), actorMessage('{"userId":"ops"}'), { tag: 'truncate', cascade: false, restartIdentity: false, relations: [tasks] }, commit('0/B00', '0/B20')]);
    expect(view(truncated!.events[0]).data.source.actor).toEqual({ userId: 'ops' });
    expectValid(truncated!.events[0]!.envelope);
    // Several actor messages in one transaction: the last one names it.
    expect(actorOf([actorMessage('{"userId":"a"}'), actorMessage('{"userId":"b"}')] as Pgoutput.MessageMessage[]).actor).toEqual({ userId: 'b' });
  });

  it('numbers any transactions 0..n-1, in order, with ids that sort like commit order', () => {
    const change = fc.record({ op: fc.constantFrom('insert', 'update', 'delete'), ws: fc.integer({ min: 1, max: 4 }), row: fc.integer({ min: 1, max: 50 }) });
    fc.assert(
      fc.property(fc.array(fc.array(change, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 8 }), (txs) => {
        const d = new ChangeDecoder(opts);
        const msgs: Pgoutput.Message[] = [tasks];
        txs.forEach((changes, t) => {
          const lsn = formatLsn(BigInt(0x1000 * (t + 1)));
          msgs.push(begin(lsn, 1000 + t));
          for (const c of changes) {
            const row = { id: uuid(c.row), workspace_id: uuid(1000 + c.ws), project_id: P, title: 't', description: null, status: 'todo' };
            if (c.op === 'insert') msgs.push({ tag: 'insert', relation: tasks, new: row });
            else if (c.op === 'update') msgs.push({ tag: 'update', relation: tasks, key: null, old: null, new: row });
            else msgs.push({ tag: 'delete', relation: tasks, key: { id: row.id, workspace_id: row.workspace_id, project_id: P }, old: null });
          }
          msgs.push(commit(lsn, formatLsn(BigInt(0x1000 * (t + 1) + 0x30))));
        });
        const out = run(d, msgs);
        expect(out.length).toBe(txs.length);
        const ids: string[] = [];
        out.forEach((tx, t) => {
          expect(tx.events.length).toBe(txs[t]!.length);
          tx.events.forEach((e, i) => {
            const data = view(e).data;
            expect(data.source).toMatchObject({ txIndex: i, txSize: txs[t]!.length, xid: 1000 + t });
            expect(e.partitionKey).toBe(uuid(1000 + txs[t]![i]!.ws));
            ids.push(e.id);
          });
        });
        expect([...ids].sort()).toEqual(ids);
      }),
      { numRuns: 100 },
    );
  });

  it('formats commit times and timestamps with every digit', () => {
    expect(formatCommitTime(1_795_000_000_000_001n)).toBe('2026-11-18T11:06:40.000001Z');
    // consecutive commits in one millisecond, then the next one, then back: no stale prefix
    expect(formatCommitTime(1_795_000_000_000_999n)).toBe('2026-11-18T11:06:40.000999Z');
    expect(formatCommitTime(1_795_000_000_001_000n)).toBe('2026-11-18T11:06:40.001000Z');
    expect(formatCommitTime(1_795_000_000_000_002n)).toBe('2026-11-18T11:06:40.000002Z');
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 9_000_000_000_000_000n }), (micros) => {
        const expected = `${new Date(Number(micros / 1000n)).toISOString().slice(0, -1)}${String(micros % 1000n).padStart(3, '0')}Z`;
        expect(formatCommitTime(micros)).toBe(expected);
      }),
    );
    expect(timestampToRfc3339('2026-11-26 12:00:00.123456+00')).toBe('2026-11-26T12:00:00.123456Z');
    expect(timestampToRfc3339('2026-11-26 12:00:00+05:30')).toBe('2026-11-26T12:00:00+05:30');
    expect(timestampToRfc3339('2026-11-26 12:00:00-03')).toBe('2026-11-26T12:00:00-03:00');
    expect(timestampToRfc3339('2026-11-26 12:00:00')).toBe('2026-11-26T12:00:00');
    expect(timestampToRfc3339('infinity')).toBe('infinity');
  });
});

describe('ChangeDecoder: GDPR erasure requests', () => {
  const requests = relation('gdpr_erasure_requests', ['id', 'user_id', 'requested_at', 'deadline', 'reason'], ['id'], 9);
  it('turns an insert into gdpr_erasure_requests into a valid taskflow.gdpr.erasure_requested event for every workspace, in its place in the transaction', () => {
    const d = new ChangeDecoder(opts);
    const row = { id: uuid(70), user_id: uuid(71), requested_at: '2026-12-02T10:00:00.123456Z', deadline: '2026-12-05T10:00:00.123456Z', reason: 'art. 17' };
    const [tx] = run(d, [begin('0/16B374D8'), requests, { tag: 'insert', relation: requests, new: row }, { tag: 'insert', relation: requests, new: { ...row, id: uuid(72), reason: null } }, commit('0/16B374D8', '0/16B37508')]);
    expect(tx!.deadRows).toEqual([]);
    expect(tx!.events.map((e) => [e.id, e.partitionKey, e.op])).toEqual([
      ['0000000016B374D8-00000000', '*', 'e'],
      ['0000000016B374D8-00000001', '*', 'e'],
    ]);
    expect(tx!.events[0]!.envelope).toMatchObject({ type: 'taskflow.gdpr.erasure_requested', subject: `users/${uuid(71)}`, workspaceid: '*', dataschema: 'taskflow://schemas/gdpr-erasure/v1', data: { requestId: uuid(70), userId: uuid(71), requestedAt: row.requested_at, deadline: row.deadline, reason: 'art. 17' } });
    expect(tx!.events[1]!.envelope.data).not.toHaveProperty('reason');
    for (const e of tx!.events) expectValid(e.envelope);
  });
});
