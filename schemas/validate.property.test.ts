// Fuzzing the envelope validator with what a hostile or broken writer of the stream could send:
// deep nesting, huge strings and arrays, wrong types in every place. Each input gets a verdict —
// ok or a reason the router dead-letters — never an exception, and within bounded time.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { decodeEvent } from '../router/event.js';
import { sampleEvent } from './fixtures.js';
import { createEventValidator, idFromSource, idMatchesSource } from './validate.js';

const validate = createEventValidator();
const REASONS = ['malformed_json', 'unknown_type', 'unknown_schema', 'missing_keys', 'schema_violation', 'inconsistent'];

function verdict(bytes: Uint8Array): string {
  const r = decodeEvent(bytes, validate);
  if (r.ok) return 'ok';
  expect(REASONS).toContain(r.reason);
  expect(typeof r.message).toBe('string');
  return r.reason;
}

function nested(depth: number, leaf = '0'): string {
  return '{"a":'.repeat(depth) + leaf + '}'.repeat(depth);
}

describe('envelope decoding on untrusted JSON', () => {
  const base = sampleEvent('task.updated') as unknown as Record<string, unknown>;

  it('gives every mutation of a valid envelope a verdict', () => {
    const paths = fc.constantFrom('id', 'type', 'time', 'workspaceid', 'projectid', 'dataschema', 'data', 'specversion', 'source', 'subject');
    fc.assert(
      fc.property(paths, fc.jsonValue({ maxDepth: 4 }), fc.option(fc.constantFrom('op', 'table', 'key', 'before', 'after', 'changed', 'source'), { nil: undefined }), (path, value, dataPath) => {
        const e = structuredClone(base) as Record<string, unknown>;
        if (dataPath && typeof e.data === 'object' && e.data) (e.data as Record<string, unknown>)[dataPath] = value;
        else e[path] = value;
        verdict(Buffer.from(JSON.stringify(e)));
      }),
      { numRuns: 1000 },
    );
  });

  it('gives arbitrary bytes and JSON a verdict', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), (b) => void verdict(b)), { numRuns: 300 });
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 6 }), (j) => void verdict(Buffer.from(JSON.stringify(j)))), { numRuns: 300 });
  });

  it('survives deep nesting and huge values in the row images, quickly', () => {
    for (const depth of [1000, 100_000]) {
      const started = Date.now();
      const deep = JSON.stringify({ ...base, data: { ...(base.data as object), after: '__DEEP__' } }).replace('"__DEEP__"', nested(depth));
      expect(verdict(Buffer.from(deep))).not.toBe('ok');
      const deepArrays = JSON.stringify(base).replace(/^\{/, `{"x":${'['.repeat(depth)}${']'.repeat(depth)},`);
      verdict(Buffer.from(deepArrays));
      expect(Date.now() - started).toBeLessThan(5000);
    }
    const huge = structuredClone(base) as { data: { after: Record<string, unknown> } };
    huge.data.after.title = 'x'.repeat(8 * 1024 * 1024);
    verdict(Buffer.from(JSON.stringify(huge)));
    const wide = structuredClone(base) as { data: { after: Record<string, unknown> } };
    for (let i = 0; i < 50_000; i++) wide.data.after[`c${i}`] = i;
    verdict(Buffer.from(JSON.stringify(wide)));
  });
});

describe('idMatchesSource', () => {
  it('answers as comparing the id with the one built from data.source, whatever the strings', () => {
    const hex = fc.stringMatching(/^[0-9A-Fa-f/x-]{0,10}$/);
    const lsn = fc.oneof(fc.tuple(hex, hex).map(([a, b]) => `${a}/${b}`), hex, fc.string({ maxLength: 20 }));
    const txIndex = fc.oneof(fc.integer({ min: 0, max: 99_999_999 }), fc.integer(), fc.double());
    fc.assert(
      fc.property(lsn, txIndex, fc.constantFrom('built', 'changed', 'other'), fc.nat(30), fc.string({ minLength: 1, maxLength: 1 }), fc.string({ maxLength: 26 }), (l, t, kind, at, c, other) => {
        const built = idFromSource(l, t);
        const id = kind === 'built' ? built : kind === 'changed' ? `${built.slice(0, at)}${c}${built.slice(at + 1)}` : other;
        expect(idMatchesSource(id, l, t)).toBe(id === built);
      }),
      { numRuns: 2000 },
    );
  });
});
