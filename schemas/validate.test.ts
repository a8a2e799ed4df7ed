import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { arbitraryEvent, sampleEvent, SAMPLE_KINDS } from './fixtures.js';
import { UPCASTERS, type EventObject } from './upcasters.js';
import { createEventValidator, validateEvent } from './validate.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests poke at arbitrary nested fields
type Loose = Record<string, any>;

function mutate(event: object, change: (e: Loose) => void): Record<string, unknown> {
  const copy = structuredClone(event) as Loose;
  change(copy);
  return copy;
}

function rejection(input: unknown) {
  const r = validateEvent(input);
  if (r.ok) throw new Error('expected a rejection');
  return r;
}

describe('validateEvent', () => {
  it('accepts a sample of every kind', () => {
    for (const kind of SAMPLE_KINDS) {
      const r = validateEvent(sampleEvent(kind));
      expect({ kind, r }).toEqual({ kind, r: { ok: true, event: sampleEvent(kind) } });
    }
  });

  it('accepts every generated event', () => {
    fc.assert(
      fc.property(arbitraryEvent(), (event) => {
        const r = validateEvent(event);
        if (!r.ok) throw new Error(`${r.reason}: ${r.message}\n${JSON.stringify(event)}`);
      }),
      { numRuns: 300 },
    );
  });

  it('accepts encrypted personal fields, workspace-wide memberships and TOAST-omitted updates', () => {
    const enc = { enc: 'v1', kid: 'user-key-1', iv: 'AAAA', ct: 'BBBB' } as const;
    expect(validateEvent(sampleEvent('task.created', { row: { description: enc } })).ok).toBe(true);
    expect(validateEvent(sampleEvent('comment.updated', { row: { body: enc }, changed: ['body'] })).ok).toBe(true);
    const wide = sampleEvent('membership.created', { projectId: null });
    expect(wide.projectid).toBeUndefined();
    expect(validateEvent(wide).ok).toBe(true);
    const toast = sampleEvent('task.updated', { omitted: ['description'] });
    expect(toast.data.after).not.toHaveProperty('description');
    expect(validateEvent(toast).ok).toBe(true);
  });

  it('rejects non-objects and unknown types', () => {
    expect(rejection('{}').reason).toBe('not_an_object');
    expect(rejection([]).reason).toBe('not_an_object');
    const r = rejection(mutate(sampleEvent('task.created'), (e) => (e.type = 'taskflow.task.exploded')));
    expect(r).toEqual({ ok: false, reason: 'unknown_type', message: 'unknown event type "taskflow.task.exploded"' });
  });

  it('names the missing key or routing field', () => {
    const cases: [string, (e: Loose) => void, string][] = [
      ['workspaceid', (e) => delete e.workspaceid, 'workspaceid is required'],
      ['projectid', (e) => delete e.projectid, 'projectid is required'],
      ['key id', (e) => delete e.data.key.id, 'data.key.id is required'],
      ['row project_id', (e) => delete e.data.after.project_id, 'data.after.project_id is required'],
      ['key', (e) => delete e.data.key, 'data.key is required'],
    ];
    for (const [label, change, message] of cases) {
      expect({ label, r: rejection(mutate(sampleEvent('task.updated'), change)) }).toEqual({ label, r: { ok: false, reason: 'missing_keys', message } });
    }
  });

  it('names the field of a schema violation', () => {
    const cases: [(e: Loose) => void, RegExp][] = [
      [(e) => (e.id = '16B374D8-3'), /^id must match pattern/],
      [(e) => (e.data.after.status = 'lost'), /^data\.after\.status must be one of \["todo","in_progress","review","done"\]/],
      [(e) => (e.data.after.priority = 9), /^data\.after\.priority must be <= 4/],
      [(e) => (e.data.after.assignee_id = 'bob'), /^data\.after\.assignee_id must match format "uuid"/],
      [(e) => (e.time = 'yesterday'), /^time must match format "date-time"/],
      [(e) => (e.workspaceid = 'acme'), /^workspaceid must match format "uuid" or must be "\*"/],
      [(e) => delete e.data.changed, /^data\.changed is required/],
      [(e) => (e.data.after.description = { enc: 'v1', kid: 'k', iv: 'i' }), /^data\.after\.description/],
      [(e) => (e.data.source.txSize = 0), /^data\.source\.txSize must be >= 1/],
    ];
    for (const [change, message] of cases) {
      const r = rejection(mutate(sampleEvent('task.updated'), change));
      expect(r.reason).toBe('schema_violation');
      expect(r.message).toMatch(message);
    }
  });

  it('enforces the op rules of the envelope', () => {
    expect(rejection(mutate(sampleEvent('task.deleted'), (e) => (e.data.after = e.data.before))).message).toMatch(/^data\.after must be null/);
    expect(rejection(mutate(sampleEvent('task.created'), (e) => (e.data.after = null))).message).toMatch(/^data\.after must be object/);
    expect(rejection(mutate(sampleEvent('task.snapshot'), (e) => (e.data.source.snapshot = false))).message).toMatch(/^data\.source\.snapshot must be true/);
  });

  it('rejects events whose attributes contradict each other', () => {
    const cases: [string, (e: Loose) => void, RegExp][] = [
      ['task.updated', (e) => (e.data.op = 'c'), /data\.op is "c" but type taskflow\.task\.updated needs "u"/],
      ['task.created', (e) => (e.id = '0000000016B374D8-00000001'), /id "0000000016B374D8-00000001" does not match data\.source/],
      ['task.created', (e) => (e.workspaceid = '99999999-9999-4999-8999-999999999999'), /workspaceid .* differs from the row's workspace_id/],
      ['task.created', (e) => (e.projectid = '99999999-9999-4999-8999-999999999999'), /projectid .* differs from the row's project/],
      ['task.created', (e) => (e.subject = 'tasks/other'), /subject "tasks\/other" should be/],
      ['task.created', (e) => (e.data.key.id = '99999999-9999-4999-8999-999999999999'), /data\.key\.id .* differs from the row's id/],
      ['task.updated', (e) => e.data.changed.push('title') && delete e.data.after.title, /data\.changed lists "title"/],
      ['task.updated', (e) => e.data.omitted.push('title'), /data\.omitted lists "title" but data\.after carries it/],
      ['membership.created', (e) => delete e.projectid, /projectid undefined differs/],
      ['table.truncated', (e) => (e.workspaceid = '11111111-1111-4111-8111-111111111111'), /truncate must be "\*"/],
      ['table.truncated', (e) => (e.data.source.txIndex = 1), /txIndex 1 is not below txSize 1/],
    ];
    for (const [kind, change, message] of cases) {
      const r = rejection(mutate(sampleEvent(kind as 'task.created'), change));
      expect({ kind, reason: r.reason, message: r.message }).toEqual({ kind, reason: 'inconsistent', message: expect.stringMatching(message) });
    }
  });

  it('never throws, whatever part of an event is replaced by whatever JSON', () => {
    const paths = fc.constantFrom(
      [], ['data'], ['data', 'after'], ['data', 'before'], ['data', 'key'], ['data', 'source'], ['data', 'source', 'lsn'], ['data', 'changed'],
      ['data', 'omitted'], ['data', 'tables'], ['workspaceid'], ['projectid'], ['dataschema'], ['type'], ['id'], ['data', 'after', 'description'],
    );
    fc.assert(
      fc.property(arbitraryEvent(), paths, fc.jsonValue(), (event, path, value) => {
        const broken = structuredClone(event) as Loose;
        let node: Loose = broken;
        for (const key of path.slice(0, -1)) node = (node[key] ?? {}) as Loose;
        if (path.length === 0) {
          const r = validateEvent(value);
          expect(r.ok || r.message.length > 0).toBe(true);
          return;
        }
        node[path[path.length - 1]!] = value;
        const r = validateEvent(broken);
        if (!r.ok) expect(r.message.length).toBeGreaterThan(0);
      }),
      { numRuns: 500 },
    );
    const inherited = mutate(sampleEvent('task.updated'), (e) => e.data.changed.push('constructor'));
    expect(rejection(inherited).message).toMatch(/data\.changed lists "constructor"/);
  });

  it('rejects a dataschema of another schema or a newer version', () => {
    expect(rejection(mutate(sampleEvent('task.created'), (e) => (e.dataschema = 'taskflow://schemas/comment/v1')))).toEqual({
      ok: false, reason: 'unknown_schema', message: 'dataschema names "comment" but type taskflow.task.created needs "task"',
    });
    expect(rejection(mutate(sampleEvent('task.created'), (e) => (e.dataschema = 'taskflow://schemas/task/v0'))).message).toBe(
      'no upcaster from task v0 to v1',
    );
  });

  it('reads a newer version of a known schema as its own (tolerant reader), and still checks what it declares', () => {
    const newer = mutate(sampleEvent('task.created'), (e) => (e.dataschema = 'taskflow://schemas/task/v7'));
    expect(validateEvent(newer)).toEqual({ ok: true, event: newer, readAsOlder: 7 });
    const invalid = mutate(newer, (e) => ((e.data.after as { priority: unknown }).priority = 'high'));
    expect(rejection(invalid)).toMatchObject({ reason: 'schema_violation', message: expect.stringContaining('data.after.priority') });
  });
});

describe('upcasting', () => {
  // A made-up v0 of tasks that called the column `state` and had no routing project column.
  const v0ToV1 = {
    schema: 'task',
    fromVersion: 0,
    upcast(event: Readonly<EventObject>): EventObject {
      const data = event.data as { after: Record<string, unknown> | null };
      if (!data.after) return { ...event };
      const { state, ...rest } = data.after;
      return { ...event, data: { ...data, after: { ...rest, status: state, project_id: event.projectid } } };
    },
  };

  function deepFreeze<T>(value: T): T {
    if (typeof value === 'object' && value !== null) {
      for (const v of Object.values(value)) deepFreeze(v);
      Object.freeze(value);
    }
    return value;
  }

  it('upcasts an older event to the current version through the registered upcasters', () => {
    const current = sampleEvent('task.created');
    const { status, project_id: _p, ...rest } = current.data.after!;
    const old = deepFreeze({ ...current, dataschema: 'taskflow://schemas/task/v0', data: { ...current.data, after: { ...rest, state: status } } });
    const validate = createEventValidator({ upcasters: [v0ToV1, ...UPCASTERS] });
    const r = validate(old);
    expect(r).toEqual({ ok: true, event: current, upcastFrom: 0 });
    // Without the upcaster the same event is refused, not misread.
    expect(validateEvent(old)).toMatchObject({ ok: false, reason: 'unknown_schema' });
  });

  it('turns a failing upcaster into a rejection', () => {
    const throwing = { ...v0ToV1, upcast: (): EventObject => { throw new Error('no state column'); } };
    const old = { ...sampleEvent('task.created'), dataschema: 'taskflow://schemas/task/v0' };
    expect(createEventValidator({ upcasters: [throwing] })(old)).toEqual({
      ok: false, reason: 'unknown_schema', message: 'upcaster from task v0 to v1 failed: no state column',
    });
  });

  it('validates the upcast result against the current schema', () => {
    const broken = { ...v0ToV1, upcast: (e: Readonly<EventObject>) => ({ ...e, data: { ...(e.data as object), after: { id: 'x' } } }) };
    const old = { ...sampleEvent('task.created'), dataschema: 'taskflow://schemas/task/v0' };
    expect(createEventValidator({ upcasters: [broken, ...UPCASTERS] })(old)).toMatchObject({ ok: false, reason: 'missing_keys' });
  });
});
