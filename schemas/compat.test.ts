import { describe, expect, it } from '@jest/globals';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import fc from 'fast-check';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSchemaDir } from './catalog.js';
import { checkCompatibility, checkVersionChains, removedProperties, type CompatibilityReport, type JsonSchema } from './compat.js';
import { UPCASTERS } from './upcasters.js';

type Schema = { [keyword: string]: unknown };

function summary(report: CompatibilityReport) {
  const side = (d: 'backward' | 'forward') => report[d].problems.map((p) => `${p.rule} ${p.path}`);
  return { backward: side('backward'), forward: side('forward') };
}

const obj = (properties: Record<string, JsonSchema>, extra: Schema = {}): Schema => ({ type: 'object', properties, ...extra });

describe('checkCompatibility rules', () => {
  const base = obj({ id: { type: 'string', format: 'uuid' }, title: { type: 'string', maxLength: 100 }, status: { enum: ['todo', 'done'] } }, { required: ['id'] });
  const evolve = (change: (s: Schema & { properties: Record<string, Schema>; required: string[] }) => void): Schema => {
    const copy = structuredClone(base) as Schema & { properties: Record<string, Schema>; required: string[] };
    change(copy);
    return copy;
  };

  const cases: [string, Schema, Schema, { backward: string[]; forward: string[] }][] = [
    ['same schema', base, base, { backward: [], forward: [] }],
    ['adding an optional field', base, evolve((s) => (s.properties.due = { type: 'string', format: 'date' })), { backward: [], forward: [] }],
    [
      'adding an optional field to a closed object',
      { ...base, additionalProperties: false },
      evolve((s) => {
        s.properties.due = { type: 'string' };
        s.additionalProperties = false;
      }),
      { backward: [], forward: ['additionalProperties due'] },
    ],
    ['adding a required field', base, evolve((s) => ((s.properties.ws = { type: 'string' }), s.required.push('ws'))), { backward: ['required ws'], forward: [] }],
    ['removing a required field', base, evolve((s) => ((s.required = []), delete s.properties.id)), { backward: [], forward: ['required id'] }],
    [
      'removing a field from a closed object',
      { ...base, additionalProperties: false },
      evolve((s) => ((s.additionalProperties = false), delete s.properties.title)),
      { backward: ['additionalProperties title'], forward: [] },
    ],
    ['changing a type', base, evolve((s) => (s.properties.title = { type: 'integer' })), { backward: ['type title'], forward: ['type title'] }],
    ['narrowing an enum', base, evolve((s) => (s.properties.status = { enum: ['todo'] })), { backward: ['enum status'], forward: [] }],
    ['widening an enum', base, evolve((s) => (s.properties.status = { enum: ['todo', 'done', 'blocked'] })), { backward: [], forward: ['enum status'] }],
    ['tightening maxLength', base, evolve((s) => (s.properties.title!.maxLength = 50)), { backward: ['maxLength title'], forward: [] }],
    ['adding a pattern', base, evolve((s) => (s.properties.title!.pattern = '^[A-Z]')), { backward: ['pattern title'], forward: [] }],
    ['changing a format', base, evolve((s) => (s.properties.id!.format = 'date')), { backward: ['format id'], forward: ['format id'] }],
    ['making a field non-nullable', obj({ a: { type: ['string', 'null'] } }), obj({ a: { type: 'string' } }), { backward: ['type a'], forward: [] }],
    ['integer to number', obj({ n: { type: 'integer' } }), obj({ n: { type: 'number' } }), { backward: [], forward: ['type n'] }],
    ['raising a minimum', obj({ n: { type: 'integer', minimum: 0 } }), obj({ n: { type: 'integer', exclusiveMinimum: 0 } }), { backward: ['exclusiveMinimum n'], forward: [] }],
    ['an equivalent lower bound', obj({ n: { type: 'integer', minimum: 1 } }), obj({ n: { type: 'integer', exclusiveMinimum: 0.5 } }), { backward: [], forward: ['minimum n'] }],
    [
      'nullable written as type list or as anyOf',
      obj({ a: { type: ['string', 'null'], format: 'uuid' } }),
      obj({ a: { anyOf: [{ type: 'string', format: 'uuid' }, { type: 'null' }] } }),
      { backward: [], forward: [] },
    ],
    [
      'dropping an alternative of anyOf',
      obj({ body: { anyOf: [{ type: 'string' }, { $ref: '#/$defs/enc' }] } }, { $defs: { enc: obj({ ct: { type: 'string' } }, { required: ['ct'] }) } }),
      obj({ body: { type: 'string' } }),
      { backward: ['type body', '$defs $defs/enc'], forward: ['$defs $defs/enc'] },
    ],
    ['a keyword the checker does not model', obj({ a: { oneOf: [{ type: 'string' }] } }), obj({ a: { oneOf: [{ type: 'number' }] } }), { backward: ['oneOf a'], forward: ['oneOf a'] }],
    ['tightening array items', obj({ tags: { type: 'array', items: { type: 'string' } } }), obj({ tags: { type: 'array', items: { type: 'string', minLength: 1 } } }), { backward: ['minLength tags[]'], forward: [] }],
    [
      'closing a map',
      obj({ key: { type: 'object', additionalProperties: { type: ['string', 'number'] } } }),
      obj({ key: { type: 'object', additionalProperties: { type: 'string' } } }),
      { backward: ['type key.*'], forward: [] },
    ],
  ];

  it.each(cases)('%s', (_label, oldSchema, newSchema, expected) => {
    expect(summary(checkCompatibility(oldSchema, newSchema))).toEqual(expected);
  });

  it('follows $ref into $defs and names the field', () => {
    const v1 = { $id: 'taskflow://schemas/x/v1', ...obj({ after: { $ref: '#/$defs/row' } }), $defs: { row: obj({ status: { enum: ['a', 'b'] } }) } };
    const v2 = { $id: 'taskflow://schemas/x/v2', ...obj({ after: { $ref: 'taskflow://schemas/x/v2#/$defs/row' } }), $defs: { row: obj({ status: { enum: ['a'] } }) } };
    const report = checkCompatibility(v1, v2);
    expect(report.backward.problems).toEqual([
      { path: 'after.status', rule: 'enum', message: 'after.status: enum narrowed: ["b"] removed (new readers would reject some old events)' },
    ]);
    expect(report.forward.compatible).toBe(true);
  });

  it('follows chains of $ref and reports a $ref it cannot follow', () => {
    const chain = (leaf: Schema): Schema => ({ ...obj({ n: { $ref: '#/$defs/a' } }), $defs: { a: { $ref: '#/$defs/b' }, b: leaf } });
    expect(summary(checkCompatibility(chain({ type: 'integer' }), chain({ type: 'number' })))).toEqual({ backward: [], forward: ['type n'] });
    expect(summary(checkCompatibility(obj({ n: { type: 'string' } }), obj({ n: { $ref: 'other.json#/x' } })))).toEqual({ backward: ['$ref n'], forward: ['$ref n', 'type n'] });
  });

  it('checks definitions the root does not reach (the envelope keeps changeData there)', () => {
    const v1 = { type: 'object', $defs: { source: obj({ xid: { type: 'integer' } }) } };
    const v2 = { type: 'object', $defs: { source: obj({ xid: { type: 'string' } }) } };
    expect(summary(checkCompatibility(v1, v2))).toEqual({ backward: ['type $defs/source.xid'], forward: ['type $defs/source.xid'] });
  });

  it('terminates on recursive schemas and still sees changes inside them', () => {
    const tree = (leaf: Schema): Schema => ({ $defs: { node: obj({ value: leaf, children: { type: 'array', items: { $ref: '#/$defs/node' } } }) }, $ref: '#/$defs/node' });
    expect(summary(checkCompatibility(tree({ type: 'string' }), tree({ type: 'string' })))).toEqual({ backward: [], forward: [] });
    expect(checkCompatibility(tree({ type: 'string' }), tree({ type: 'integer' })).backward.problems[0]?.path).toBe('value');
  });

  it('finds every committed schema compatible with itself', () => {
    for (const file of loadSchemaDir(dirname(fileURLToPath(import.meta.url)))) {
      expect({ file: file.path, ...summary(checkCompatibility(file.schema, structuredClone(file.schema))) }).toEqual({ file: file.path, backward: [], forward: [] });
    }
  });

  it('checks version chains and refuses gaps', () => {
    const v = (version: number, schema: JsonSchema) => ({ name: 'task', version, schema });
    const { steps, errors } = checkVersionChains([v(1, base), v(2, evolve((s) => s.required.push('title'))), v(3, evolve((s) => s.required.push('title')))]);
    expect(steps.map((s) => [s.from, s.to, s.broken])).toEqual([[1, 2, ['backward']], [2, 3, []]]);
    expect(errors).toEqual([]);
    expect(checkVersionChains([v(1, base), v(3, base)]).errors).toEqual(['task: versions must run v1, v2, … without gaps; found v1, v3']);
    expect(checkVersionChains([v(1, base), v(2, evolve((s) => s.properties.status!.enum = ['todo', 'done', 'x']))], 'backward').steps[0]?.broken).toEqual([]);
  });

  it('finds a renamed property, which validity cannot see, and lets only an upcaster carry it (or any backward break)', () => {
    const v = (version: number, schema: JsonSchema) => ({ name: 'task', version, schema });
    const renamed = evolve((s) => {
      s.properties.state = s.properties.status!;
      delete s.properties.status;
    });
    expect(summary(checkCompatibility(base, renamed))).toEqual({ backward: [], forward: [] }); // open schemas: both valid
    expect(removedProperties(base, renamed)).toEqual(['status']);
    expect(removedProperties(obj({ a: obj({ b: { type: 'string' } }) }), obj({ a: obj({}) }))).toEqual(['a.b']);
    const without = checkVersionChains([v(1, base), v(2, renamed)]).steps[0]!;
    expect([without.removed, without.upcaster, without.broken]).toEqual([['status'], false, ['backward']]);
    const carried = checkVersionChains([v(1, base), v(2, renamed)], 'both', new Set(['task/v1'])).steps[0]!;
    expect([carried.upcaster, carried.broken]).toEqual([true, []]);
    // An upcaster carries a backward break, never a forward one: old readers do not run it.
    const retyped = evolve((s) => (s.properties.title = { type: 'integer' }));
    expect(checkVersionChains([v(1, base), v(2, retyped)], 'both', new Set(['task/v1'])).steps[0]!.broken).toEqual(['forward']);
    // The committed task v2 renames due_date; its upcaster is registered.
    const dir = dirname(fileURLToPath(import.meta.url));
    const task = loadSchemaDir(dir).filter((f) => f.name === 'task');
    expect(checkVersionChains(task).steps[0]).toMatchObject({ removed: ['due_date'], broken: ['backward'] });
    expect(checkVersionChains(task, 'both', new Set(UPCASTERS.map((u) => `${u.schema}/v${u.fromVersion}`))).steps[0]).toMatchObject({ broken: [] });
  });
});

// ---- properties over random schemas and random evolutions ----

const addFormats = addFormatsModule.default;
const ajv = new Ajv2020({ strict: false, allErrors: false });
addFormats(ajv, ['uuid', 'date']);
const isValid = (schema: Schema, value: unknown) => ajv.validate(schema, value) as boolean;

const NAMES = ['a', 'b', 'c', 'd'];

const leaf: fc.Arbitrary<Schema> = fc.oneof(
  fc.record({ type: fc.constant('string'), maxLength: fc.integer({ min: 2, max: 12 }) }, { requiredKeys: ['type'] }),
  fc.record({ type: fc.constant('string'), format: fc.constantFrom('uuid', 'date') }),
  fc.record({ enum: fc.uniqueArray(fc.constantFrom('x', 'y', 'z', 'w'), { minLength: 1, maxLength: 3 }) }),
  fc
    .record({ type: fc.constant('integer'), minimum: fc.integer({ min: -5, max: 0 }), maximum: fc.integer({ min: 1, max: 50 }) }, { requiredKeys: ['type'] }),
  fc.constant({ type: 'number' }),
  fc.constant({ type: 'boolean' }),
);
const nullable = (s: fc.Arbitrary<Schema>) =>
  fc.tuple(s, fc.boolean()).map(([schema, isNullable]) => (isNullable && typeof schema.type === 'string' ? { ...schema, type: [schema.type, 'null'] } : schema));

const { schema: randomNode } = fc.letrec<{ schema: Schema; object: Schema }>((tie) => ({
  schema: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    nullable(leaf),
    tie('object'),
    tie('schema').map((items) => ({ type: 'array', items })),
    // Nullable written the other way, to exercise anyOf.
    tie('schema').map((s) => ({ anyOf: [s, { type: 'null' }] })),
  ),
  object: fc
    .record({
      properties: fc.dictionary(fc.constantFrom(...NAMES), tie('schema'), { minKeys: 1, maxKeys: 3 }),
      closed: fc.boolean(),
      requiredMask: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
    })
    .map(({ properties, closed, requiredMask }) => ({
      type: 'object',
      properties,
      required: Object.keys(properties).filter((_, i) => requiredMask[i]),
      ...(closed ? { additionalProperties: false } : {}),
    })),
}));

/** Random schemas; some reach their body through `$ref` into `$defs`, to exercise reference following. */
const randomSchema: fc.Arbitrary<Schema> = fc
  .tuple(randomNode, fc.boolean())
  .map(([node, viaRef]) => (viaRef ? { $defs: { body: node }, $ref: '#/$defs/body' } : node));

/** Values valid under a generated schema (declared properties only: the checker's convention). */
function instanceOf(schema: Schema, root: Schema = schema): fc.Arbitrary<unknown> {
  if (schema.$ref === '#/$defs/body') return instanceOf((root.$defs as Record<string, Schema>).body!, root);
  if (Array.isArray(schema.anyOf)) return fc.oneof(...(schema.anyOf as Schema[]).map((branch) => instanceOf(branch, root)));
  const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string | undefined];
  return fc.oneof(...types.map((t) => instanceOfType(schema, t)));
}

function instanceOfType(schema: Schema, type: string | undefined): fc.Arbitrary<unknown> {
  if (Array.isArray(schema.enum)) return fc.constantFrom(...(schema.enum as unknown[]));
  switch (type) {
    case 'null':
      return fc.constant(null);
    case 'string':
      if (schema.format === 'uuid') return fc.uuid();
      if (schema.format === 'date') return fc.date({ min: new Date('2000-01-01'), max: new Date('2099-01-01'), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10));
      return fc.string({ maxLength: (schema.maxLength as number | undefined) ?? 8 });
    case 'integer':
      return fc.integer({ min: (schema.minimum as number | undefined) ?? -100, max: (schema.maximum as number | undefined) ?? 100 });
    case 'number':
      return fc.double({ noNaN: true, noDefaultInfinity: true });
    case 'boolean':
      return fc.boolean();
    case 'array':
      return fc.array(instanceOf(schema.items as Schema), { maxLength: 3 });
    case 'object': {
      const props = schema.properties as Record<string, Schema>;
      const model = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, instanceOf(v)]));
      return fc.record(model, { requiredKeys: schema.required as string[] });
    }
    default:
      throw new Error(`no generator for ${JSON.stringify(schema)}`);
  }
}

interface Site {
  /** Keys from the root to the node. */
  at: string[];
  /** The instance path the checker reports for it. */
  path: string;
  node: Schema;
}

function sites(schema: Schema, at: string[] = [], path = '(root)'): Site[] {
  if (schema.$ref === '#/$defs/body') return sites((schema.$defs as Record<string, Schema>).body!, ['$defs', 'body'], path);
  const here: Site = { at, path, node: schema };
  if (Array.isArray(schema.anyOf)) return [here, ...(schema.anyOf as Schema[]).flatMap((branch, i) => sites(branch, [...at, 'anyOf', String(i)], path))];
  const join = (field: string) => (path === '(root)' ? field : `${path}.${field}`);
  if (schema.type === 'object') {
    const props = schema.properties as Record<string, Schema>;
    return [here, ...Object.entries(props).flatMap(([k, v]) => sites(v, [...at, 'properties', k], join(k)))];
  }
  if (schema.type === 'array') return [here, ...sites(schema.items as Schema, [...at, 'items'], `${path === '(root)' ? '' : path}[]`)];
  return [here];
}

function replaceAt(schema: Schema, at: string[], next: Schema): Schema {
  if (at.length === 0) return next;
  const [head, ...rest] = at;
  const child = replaceAt((schema as Record<string, Schema>)[head!]!, rest, next);
  if (Array.isArray(schema)) return Object.assign([...schema], { [head!]: child }) as unknown as Schema;
  return { ...schema, [head!]: child };
}

const typeOf = (s: Schema) => (Array.isArray(s.type) ? (s.type as string[]) : typeof s.type === 'string' ? [s.type] : []);
const fresh = (s: Schema) => ['p', 'q', 'r'].find((n) => !(n in (s.properties as object)))!;

/** An evolution of one node: the new node, or undefined when it does not apply to this node. */
type Mutation = (node: Schema) => Schema | undefined;

// Changes that keep every old instance valid (backward compatible).
const SAFE: Record<string, Mutation> = {
  addOptionalProperty: (n) => (n.type === 'object' ? { ...n, properties: { ...(n.properties as object), [fresh(n)]: { type: 'string' } } } : undefined),
  dropRequired: (n) => ((n.required as string[] | undefined)?.length ? { ...n, required: (n.required as string[]).slice(1) } : undefined),
  openObject: (n) => (n.additionalProperties === false ? { ...n, additionalProperties: undefined } : undefined),
  widenEnum: (n) => (Array.isArray(n.enum) ? { ...n, enum: [...(n.enum as string[]), 'new'] } : undefined),
  makeNullable: (n) => (typeof n.type === 'string' && n.type !== 'object' && n.type !== 'null' ? { ...n, type: [n.type, 'null'] } : undefined),
  integerToNumber: (n) => (n.type === 'integer' ? { type: 'number' } : undefined),
  dropMaxLength: (n) => (typeof n.maxLength === 'number' ? { ...n, maxLength: undefined } : undefined),
  raiseMaximum: (n) => (typeof n.maximum === 'number' ? { ...n, maximum: n.maximum + 1 } : undefined),
  dropFormat: (n) => (typeof n.format === 'string' ? { type: n.type } : undefined),
};

// Changes for which some old instance becomes invalid (backward breaking).
const BREAKING: Record<string, Mutation> = {
  addRequiredProperty: (n) =>
    n.type === 'object' ? { ...n, properties: { ...(n.properties as object), [fresh(n)]: { type: 'string' } }, required: [...(n.required as string[]), fresh(n)] } : undefined,
  changeType: (n) => (typeOf(n).includes('boolean') ? undefined : { type: 'boolean' }),
  narrowEnum: (n) => (Array.isArray(n.enum) && n.enum.length > 1 ? { ...n, enum: (n.enum as unknown[]).slice(1) } : undefined),
  dropNull: (n) => (Array.isArray(n.type) ? { ...n, type: (n.type as string[])[0] } : undefined),
  lowerMaxLength: (n) => (typeof n.maxLength === 'number' ? { ...n, maxLength: n.maxLength - 1 } : undefined),
  // never below the minimum: a schema no integer satisfies has no instance to generate
  lowerMaximum: (n) => (typeof n.maximum === 'number' && !(typeof n.minimum === 'number' && n.maximum - 1 < n.minimum) ? { ...n, maximum: n.maximum - 1 } : undefined),
  addFormat: (n) => (n.type === 'string' && n.format === undefined && n.enum === undefined ? { type: 'string', format: 'uuid' } : undefined),
  numberToInteger: (n) => (n.type === 'number' ? { type: 'integer' } : undefined),
  removePropertyAndClose: (n) => {
    if (n.type !== 'object') return undefined;
    const [first, ...rest] = Object.keys(n.properties as object);
    if (first === undefined || rest.length === 0) return undefined;
    const { [first]: _gone, ...properties } = n.properties as Record<string, Schema>;
    return { ...n, properties, required: (n.required as string[]).filter((r) => r !== first), additionalProperties: false };
  },
};

function clean(s: unknown): unknown {
  // Mutations write `undefined` to drop a keyword; JSON round-trip removes those keys.
  return JSON.parse(JSON.stringify(s));
}

/** A schema with one mutation from `table` applied at one of its sites, with the site. */
function evolved(table: Record<string, Mutation>, { insideAnyOf = true } = {}) {
  return fc.tuple(randomSchema, fc.constantFrom(...Object.keys(table)), fc.nat()).chain(([schema, name, pick]) => {
    const candidates = sites(schema).filter((s) => table[name]!(s.node) !== undefined && (insideAnyOf || !s.at.includes('anyOf')));
    if (candidates.length === 0) return fc.constant(undefined);
    const site = candidates[pick % candidates.length]!;
    const next = clean(replaceAt(schema, site.at, table[name]!(site.node)!)) as Schema;
    return fc.constant({ old: schema, next, name, site });
  });
}

describe('checkCompatibility properties', () => {
  it('finds every schema compatible with itself', () => {
    fc.assert(
      fc.property(randomSchema, (schema) => {
        expect(summary(checkCompatibility(schema, structuredClone(schema)))).toEqual({ backward: [], forward: [] });
      }),
      { numRuns: 300 },
    );
  });

  it('accepts compatible evolutions, and their old instances stay valid', () => {
    fc.assert(
      fc.property(
        evolved(SAFE).chain((e) => (e ? fc.tuple(fc.constant(e), fc.array(instanceOf(e.old), { maxLength: 8 })) : fc.constant(undefined))),
        (drawn) => {
          if (!drawn) return;
          const [{ old, next }, instances] = drawn;
          expect(checkCompatibility(old, next).backward.problems).toEqual([]);
          for (const value of instances) {
            expect(isValid(old, value)).toBe(true); // the generator's own sanity
            expect({ value, valid: isValid(next, value) }).toEqual({ value, valid: true });
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('flags breaking evolutions at the changed field', () => {
    fc.assert(
      // Not inside anyOf: another alternative may still accept what the changed one no longer does.
      fc.property(evolved(BREAKING, { insideAnyOf: false }), (e) => {
        if (!e) return;
        const problems = checkCompatibility(e.old, e.next).backward.problems;
        // The problem names the changed field, or a field inside it (an added or removed property).
        const within = (p: string) => e.site.path === '(root)' || p === e.site.path || p.startsWith(`${e.site.path}.`) || p.startsWith(`${e.site.path}[]`);
        expect({ mutation: e.name, flagged: problems.some((p) => within(p.path)) }).toEqual({ mutation: e.name, flagged: true });
      }),
      { numRuns: 300 },
    );
  });

  it('is sound for any mix of evolutions: a compatible verdict never hides an invalid instance', () => {
    const ops = { ...SAFE, ...BREAKING };
    const mixed = fc.tuple(randomSchema, fc.array(fc.tuple(fc.constantFrom(...Object.keys(ops)), fc.nat()), { minLength: 1, maxLength: 3 })).map(([schema, steps]) => {
      let next = schema;
      for (const [name, pick] of steps) {
        const candidates = sites(next).filter((s) => ops[name]!(s.node) !== undefined);
        const site = candidates[pick % Math.max(1, candidates.length)];
        if (site) next = clean(replaceAt(next, site.at, ops[name]!(site.node)!)) as Schema;
      }
      return { old: schema, next };
    });
    fc.assert(
      fc.property(
        mixed.chain((e) => fc.tuple(fc.constant(e), fc.array(instanceOf(e.old), { maxLength: 6 }), fc.array(instanceOf(e.next), { maxLength: 6 }))),
        ([{ old, next }, oldValues, newValues]) => {
          const report = checkCompatibility(old, next);
          if (report.backward.compatible) for (const v of oldValues) expect({ v, valid: isValid(next, v) }).toEqual({ v, valid: true });
          if (report.forward.compatible) for (const v of newValues) expect({ v, valid: isValid(old, v) }).toEqual({ v, valid: true });
        },
      ),
      { numRuns: 300 },
    );
  });
});
