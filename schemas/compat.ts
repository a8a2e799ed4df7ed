// Schema compatibility, decided from two schema documents alone (pure, no I/O).
//
//   backward compatible: readers on the NEW schema accept every event written under the OLD one
//                        (every old instance is a new instance). Needed to deploy readers first
//                        and to replay history through new readers.
//   forward compatible:  readers still on the OLD schema accept every event written under the
//                        NEW one. Needed to deploy writers before all readers have upgraded.
//
// Both are the same question, "is every instance of A valid under B?", asked with A = old,
// B = new (backward) and A = new, B = old (forward). The answer is keyword by keyword and
// conservative: when it cannot prove inclusion (keywords it does not model, such as if/then,
// oneOf or not, changed in B) it reports a problem rather than guessing.
//
// One convention keeps "adding an optional field" safe both ways: a writer emits only the
// properties its schema declares, unless the schema says `additionalProperties` explicitly
// (true or a schema: a map). So a property declared on one side only matters when the other
// side forbids or constrains unknown properties.

export type JsonSchema = boolean | { [keyword: string]: unknown };

export interface CompatibilityProblem {
  /** Field path in the instance, e.g. "data.after.status"; "(root)" for the whole value. */
  path: string;
  /** The keyword whose change breaks compatibility, e.g. "required", "type", "enum", "maximum". */
  rule: string;
  message: string;
}

export interface DirectionResult {
  compatible: boolean;
  problems: CompatibilityProblem[];
}

export interface CompatibilityReport {
  backward: DirectionResult;
  forward: DirectionResult;
}

export type Direction = 'backward' | 'forward';
type SchemaObject = { [keyword: string]: unknown };

const ANNOTATIONS = new Set([
  '$schema', '$id', '$comment', '$defs', 'definitions', 'title', 'description', 'default', 'examples', 'deprecated', 'readOnly', 'writeOnly',
]);
/** Keywords compared below; every other non-annotation keyword must be unchanged. */
const MODELLED = new Set([
  '$ref', 'type', 'enum', 'const', 'format', 'pattern', 'minLength', 'maxLength', 'minimum', 'maximum', 'exclusiveMinimum',
  'exclusiveMaximum', 'multipleOf', 'properties', 'required', 'additionalProperties', 'minProperties', 'maxProperties', 'items',
  'minItems', 'maxItems', 'uniqueItems',
]);
const ALL_TYPES = ['null', 'boolean', 'object', 'array', 'number', 'integer', 'string'] as const;

function isObject(v: unknown): v is SchemaObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isAnnotation(keyword: string): boolean {
  return ANNOTATIONS.has(keyword) || keyword.startsWith('x-');
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => deepEqual((a as SchemaObject)[k], (b as SchemaObject)[k]));
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function show(v: unknown): string {
  return JSON.stringify(v);
}

/** Resolves "#/…" (or "<own $id>#/…") JSON pointers inside one schema document. */
class Document {
  /** Local pointers followed while comparing, to find the definitions nothing reached. */
  readonly followed = new Set<string>();

  constructor(readonly root: JsonSchema) {}

  /** "#/…" for a reference into this document, else undefined. */
  local(ref: string): string | undefined {
    const id = isObject(this.root) && typeof this.root.$id === 'string' ? this.root.$id : undefined;
    return ref.startsWith('#') ? ref : id !== undefined && ref.startsWith(`${id}#`) ? ref.slice(id.length) : undefined;
  }

  resolve(ref: string): JsonSchema | undefined {
    const local = this.local(ref);
    if (local === undefined) return undefined;
    this.followed.add(local);
    let node: unknown = this.root;
    for (const raw of local.slice(1).split('/').slice(1)) {
      const token = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
      if (!isObject(node) && !Array.isArray(node)) return undefined;
      node = (node as SchemaObject)[token];
    }
    return typeof node === 'boolean' || isObject(node) ? node : undefined;
  }
}

class Checker {
  readonly problems: CompatibilityProblem[] = [];

  constructor(
    private readonly direction: Direction,
    private readonly docA: Document,
    private readonly docB: Document,
    /** $ref pairs being compared further up: meeting one again means a cycle, assumed to hold (coinduction). */
    private readonly inProgress = new Set<string>(),
  ) {}

  private report(path: string, rule: string, change: string): void {
    const consequence = this.direction === 'backward' ? 'new readers would reject some old events' : 'old readers would reject some new events';
    const message = `${path}: ${change} (${consequence})`;
    if (!this.problems.some((p) => p.message === message)) this.problems.push({ path, rule, message });
  }

  /** A's and B's values of something, written old → new. */
  private transition(valueA: string, valueB: string): string {
    return this.direction === 'backward' ? `${valueA} → ${valueB}` : `${valueB} → ${valueA}`;
  }

  /** A keyword that B has and A lacks was added (backward) or removed (forward) by the new version. */
  private get appeared(): string {
    return this.direction === 'backward' ? 'added' : 'removed';
  }

  /** "old …" / "new …" wording for side A or B in this direction. */
  private side(which: 'A' | 'B'): string {
    return (which === 'A') === (this.direction === 'backward') ? 'old' : 'new';
  }

  /** Follows $refs (chains too); annotation siblings are dropped, constraint siblings merged in. */
  private deref(schema: JsonSchema, doc: Document, path: string): { schema: JsonSchema; ref?: string } {
    let current = schema;
    let ref: string | undefined;
    for (let hops = 0; isObject(current) && typeof current.$ref === 'string'; hops += 1) {
      const target = hops < 32 ? doc.resolve(current.$ref) : undefined;
      if (target === undefined) {
        this.report(path, '$ref', `cannot follow $ref ${show(current.$ref)} (only references inside the schema are supported)`);
        return { schema: true };
      }
      ref = current.$ref;
      current = this.mergeSiblings(current, target);
    }
    return ref === undefined ? { schema: current } : { schema: current, ref };
  }

  private mergeSiblings(refNode: SchemaObject, target: JsonSchema): JsonSchema {
    const { $ref: _ref, ...siblings } = refNode;
    const constraints = Object.keys(siblings).filter((k) => !isAnnotation(k));
    if (constraints.length === 0 || target === false) return target;
    const merged: SchemaObject = target === true ? {} : { ...target };
    for (const k of constraints) {
      if (k in merged && !deepEqual(merged[k], siblings[k])) {
        // Two different constraints under one keyword: keep both as an allOf the checker treats as opaque.
        return { allOf: [target, siblings] };
      }
      merged[k] = siblings[k];
    }
    return merged;
  }

  /** Reports why some instance of `a` may be invalid under `b`. */
  subset(rawA: JsonSchema, rawB: JsonSchema, path: string): void {
    const { schema: a, ref: refA } = this.deref(rawA, this.docA, path);
    const { schema: b, ref: refB } = this.deref(rawB, this.docB, path);
    if (refA === undefined && refB === undefined) {
      this.compare(a, b, path);
      return;
    }
    const key = `${refA ?? ''}|${refB ?? ''}`;
    if (this.inProgress.has(key)) return;
    this.inProgress.add(key);
    try {
      this.compare(a, b, path);
    } finally {
      this.inProgress.delete(key);
    }
  }

  private compare(a: JsonSchema, b: JsonSchema, path: string): void {
    if (a === false || b === true) return;
    if (b === false) {
      this.report(path, 'false', `the ${this.side('B')} schema accepts nothing here`);
      return;
    }
    const objA: SchemaObject = a === true ? {} : a;
    const objB: SchemaObject = b;

    if (this.isPureAnyOf(objA) || this.isPureAnyOf(objB)) {
      this.anyOf(objA, objB, path);
      return;
    }
    this.keywords(objA, objB, this.types(objA), path);
  }

  private isPureAnyOf(s: SchemaObject): boolean {
    return Array.isArray(s.anyOf) && Object.keys(s).every((k) => k === 'anyOf' || isAnnotation(k));
  }

  private anyOf(a: SchemaObject, b: SchemaObject, path: string): void {
    const branchesB = this.isPureAnyOf(b) ? (b.anyOf as JsonSchema[]) : [b];
    // Every alternative of A must fit some alternative of B. A nullable `type: [t, "null"]` of A
    // is split by type, so that it fits B's `anyOf: [{type: t}, {type: "null"}]`.
    const branchesA = (this.isPureAnyOf(a) ? (a.anyOf as JsonSchema[]) : [a]).flatMap((branch) =>
      isObject(branch) && Array.isArray(branch.type) && branchesB.length > 1 ? (branch.type as string[]).map((type) => ({ ...branch, type })) : [branch],
    );
    for (const branch of branchesA) {
      let best: CompatibilityProblem[] | undefined;
      for (const candidate of branchesB) {
        const trial = new Checker(this.direction, this.docA, this.docB, this.inProgress);
        trial.subset(branch, candidate, path);
        if (best === undefined || trial.problems.length < best.length) best = trial.problems;
        if (best.length === 0) break;
      }
      for (const p of best ?? []) if (!this.problems.some((q) => q.message === p.message)) this.problems.push(p);
    }
  }

  /** The JSON types a schema admits (from `type`, else from `enum`/`const`, else all). */
  private types(s: SchemaObject): Set<string> {
    if (typeof s.type === 'string') return new Set([s.type]);
    if (Array.isArray(s.type)) return new Set(s.type as string[]);
    const values = this.values(s);
    if (values) return new Set(values.map(jsonType));
    return new Set(ALL_TYPES);
  }

  private values(s: SchemaObject): unknown[] | undefined {
    if ('const' in s) return [s.const];
    if (Array.isArray(s.enum)) return s.enum;
    return undefined;
  }

  private keywords(a: SchemaObject, b: SchemaObject, typesA: Set<string>, path: string): void {
    // type
    if (b.type !== undefined) {
      const typesB = this.types(b);
      const lost = [...typesA].filter((t) => !typesB.has(t) && !(t === 'integer' && typesB.has('number')));
      if (lost.length > 0) {
        const from = a.type === undefined && !this.values(a) ? 'any type' : show(a.type ?? [...typesA]);
        this.report(path, 'type', `type ${this.transition(from, show(b.type))}: ${lost.join(', ')} not accepted by the ${this.side('B')} schema`);
      }
    }
    // enum / const
    const valuesB = this.values(b);
    if (valuesB) {
      const valuesA = this.values(a)?.filter((v) => typesA.has(jsonType(v)) || (jsonType(v) === 'integer' && typesA.has('number')));
      const rule = 'const' in b ? 'const' : 'enum';
      if (!valuesA) {
        this.report(path, rule, `${rule} ${show(valuesB)} ${this.appeared}`);
      } else {
        const missing = valuesA.filter((v) => !valuesB.some((w) => deepEqual(v, w)));
        if (missing.length > 0) {
          const verb = this.direction === 'backward' ? 'narrowed' : 'widened';
          this.report(path, rule, `${rule} ${verb}: ${show(missing)} ${this.direction === 'backward' ? 'removed' : 'added'}`);
        }
      }
    }
    const permits = (t: string) => typesA.has(t) || (t === 'number' && typesA.has('integer'));
    if (permits('string')) {
      for (const k of ['format', 'pattern'] as const) {
        if (b[k] !== undefined && b[k] !== a[k]) {
          this.report(path, k, a[k] === undefined ? `${k} ${show(b[k])} ${this.appeared}` : `${k} ${this.transition(show(a[k]), show(b[k]))}`);
        }
      }
      this.lowerBound(a, b, 'minLength', path);
      this.upperBound(a, b, 'maxLength', path);
    }
    if (permits('number')) this.numeric(a, b, typesA, path);
    if (permits('object')) this.object(a, b, path);
    if (permits('array')) this.array(a, b, path);
    // Keywords not modelled here: B's must be A's, word for word (after following $refs).
    for (const k of Object.keys(b)) {
      if (MODELLED.has(k) || isAnnotation(k)) continue;
      if (!deepEqual(this.inline(a[k], this.docA), this.inline(b[k], this.docB))) {
        this.report(path, k, `"${k}" ${a[k] === undefined ? this.appeared : 'changed'}; compatibility cannot be proven for this keyword`);
      }
    }
  }

  /** A copy with local $refs replaced by their targets (cycles left as refs), to compare opaque keywords. */
  private inline(v: unknown, doc: Document, depth = 0): unknown {
    if (Array.isArray(v)) return v.map((x) => this.inline(x, doc, depth));
    if (!isObject(v)) return v;
    if (typeof v.$ref === 'string' && depth < 8) {
      const { $ref, ...rest } = v;
      return { ...rest, $inlined: this.inline(doc.resolve($ref), doc, depth + 1) };
    }
    return Object.fromEntries(Object.entries(v).filter(([k]) => !isAnnotation(k)).map(([k, x]) => [k, this.inline(x, doc, depth)]));
  }

  private lowerBound(a: SchemaObject, b: SchemaObject, k: string, path: string): void {
    if (typeof b[k] !== 'number') return;
    if (typeof a[k] !== 'number') this.report(path, k, `${k} ${b[k]} ${this.appeared}`);
    else if (a[k] < b[k]) this.report(path, k, `${k} ${this.transition(String(a[k]), String(b[k]))}`);
  }

  private upperBound(a: SchemaObject, b: SchemaObject, k: string, path: string): void {
    if (typeof b[k] !== 'number') return;
    if (typeof a[k] !== 'number') this.report(path, k, `${k} ${b[k]} ${this.appeared}`);
    else if (a[k] > b[k]) this.report(path, k, `${k} ${this.transition(String(a[k]), String(b[k]))}`);
  }

  private numeric(a: SchemaObject, b: SchemaObject, typesA: Set<string>, path: string): void {
    // Effective bounds: [value, exclusive]. A ⊆ B when A's lower bound is at or above B's.
    const bound = ([value, exclusive]: [number, boolean]) => `${value}${exclusive ? ' (exclusive)' : ''}`;
    const limit = (s: SchemaObject, incl: string, excl: string, pickMax: boolean): [number, boolean] | undefined => {
      const candidates: [number, boolean][] = [];
      if (typeof s[incl] === 'number') candidates.push([s[incl], false]);
      if (typeof s[excl] === 'number') candidates.push([s[excl], true]);
      if (candidates.length === 0) return undefined;
      return candidates.reduce((x, y) => {
        if (x[0] !== y[0]) return (x[0] > y[0]) === pickMax ? x : y;
        return x[1] ? x : y; // same value: the exclusive one is the stricter
      });
    };
    const loA = limit(a, 'minimum', 'exclusiveMinimum', true);
    const loB = limit(b, 'minimum', 'exclusiveMinimum', true);
    if (loB && (!loA || loA[0] < loB[0] || (loA[0] === loB[0] && loB[1] && !loA[1]))) {
      const rule = loB[1] ? 'exclusiveMinimum' : 'minimum';
      this.report(path, rule, loA ? `lower bound ${this.transition(bound(loA), bound(loB))}` : `${rule} ${loB[0]} ${this.appeared}`);
    }
    const hiA = limit(a, 'maximum', 'exclusiveMaximum', false);
    const hiB = limit(b, 'maximum', 'exclusiveMaximum', false);
    if (hiB && (!hiA || hiA[0] > hiB[0] || (hiA[0] === hiB[0] && hiB[1] && !hiA[1]))) {
      const rule = hiB[1] ? 'exclusiveMaximum' : 'maximum';
      this.report(path, rule, hiA ? `upper bound ${this.transition(bound(hiA), bound(hiB))}` : `${rule} ${hiB[0]} ${this.appeared}`);
    }
    if (typeof b.multipleOf === 'number') {
      const m = b.multipleOf;
      const onlyIntegers = typesA.size === 1 && typesA.has('integer');
      const ok = (typeof a.multipleOf === 'number' && Number.isInteger(a.multipleOf / m)) || (onlyIntegers && m === 1);
      if (!ok) this.report(path, 'multipleOf', a.multipleOf === undefined ? `multipleOf ${m} ${this.appeared}` : `multipleOf ${this.transition(show(a.multipleOf), show(m))}`);
    }
  }

  private object(a: SchemaObject, b: SchemaObject, path: string): void {
    const requiredA = new Set(Array.isArray(a.required) ? (a.required as string[]) : []);
    for (const r of Array.isArray(b.required) ? (b.required as string[]) : []) {
      if (requiredA.has(r)) continue;
      const field = join(path, r);
      this.report(
        field,
        'required',
        this.direction === 'backward'
          ? 'became required: old events may lack it'
          : 'no longer required: new events may omit it',
      );
    }
    const propsA = isObject(a.properties) ? (a.properties as Record<string, JsonSchema>) : {};
    const propsB = isObject(b.properties) ? (b.properties as Record<string, JsonSchema>) : {};
    const addlA = a.additionalProperties as JsonSchema | undefined;
    const addlB = b.additionalProperties as JsonSchema | undefined;
    for (const name of Object.keys(propsA)) {
      const field = join(path, name);
      const pb = propsB[name];
      if (pb !== undefined) this.subset(propsA[name]!, pb, field);
      else if (addlB === false) {
        this.report(
          field,
          'additionalProperties',
          this.direction === 'backward'
            ? `"${name}" was removed and the new schema forbids unknown properties`
            : `"${name}" was added but the old schema forbids unknown properties`,
        );
      } else if (addlB !== undefined && addlB !== true) this.subset(propsA[name]!, addlB, field);
    }
    // Declared only by B: instances of A carry it only through an explicit additionalProperties.
    if (addlA !== undefined && addlA !== false) {
      for (const name of Object.keys(propsB)) if (!(name in propsA)) this.subset(addlA, propsB[name]!, join(path, name));
      if (addlB === false) this.report(join(path, '*'), 'additionalProperties', `the ${this.side('B')} schema forbids the extra properties the ${this.side('A')} one allows`);
      else if (addlB !== undefined && addlB !== true) this.subset(addlA, addlB, join(path, '*'));
    }
    this.lowerBound(a, b, 'minProperties', path);
    this.upperBound(a, b, 'maxProperties', path);
  }

  private array(a: SchemaObject, b: SchemaObject, path: string): void {
    if (b.items !== undefined) this.subset((a.items as JsonSchema | undefined) ?? true, b.items as JsonSchema, `${path === '(root)' ? '' : path}[]`);
    this.lowerBound(a, b, 'minItems', path);
    this.upperBound(a, b, 'maxItems', path);
    if (b.uniqueItems === true && a.uniqueItems !== true) this.report(path, 'uniqueItems', `uniqueItems ${this.appeared}`);
  }
}

function join(path: string, field: string): string {
  return path === '(root)' ? field : `${path}.${field}`;
}

function definitions(schema: JsonSchema): Record<string, JsonSchema> {
  return isObject(schema) && isObject(schema.$defs) ? (schema.$defs as Record<string, JsonSchema>) : {};
}

function direction(direction: Direction, oldSchema: JsonSchema, newSchema: JsonSchema): DirectionResult {
  const [a, b] = direction === 'backward' ? [oldSchema, newSchema] : [newSchema, oldSchema];
  const docA = new Document(a);
  const checker = new Checker(direction, docA, new Document(b));
  checker.subset(a, b, '(root)');
  // Definitions are contracts too (other schemas and validators refer to them, e.g. the
  // envelope's changeData): compare the ones the root did not reach, and refuse removals.
  const defsA = definitions(a);
  const defsB = definitions(b);
  const defsNew = definitions(newSchema);
  for (const name of Object.keys(definitions(oldSchema))) {
    const path = `$defs/${name}`;
    if (!(name in defsNew)) {
      checker.problems.push({ path, rule: '$defs', message: `${path}: definition removed (schemas and validators referring to it break)` });
    } else if (!docA.followed.has(`#/$defs/${name}`)) {
      checker.subset(defsA[name]!, defsB[name]!, path);
    }
  }
  return { compatible: checker.problems.length === 0, problems: checker.problems };
}

/** Whether replacing `oldSchema` by `newSchema` keeps readers working, in both directions. */
export function checkCompatibility(oldSchema: JsonSchema, newSchema: JsonSchema): CompatibilityReport {
  return { backward: direction('backward', oldSchema, newSchema), forward: direction('forward', oldSchema, newSchema) };
}

export type Requirement = 'both' | 'backward' | 'forward';

export interface VersionedSchema {
  name: string;
  version: number;
  schema: JsonSchema;
}

/**
 * Properties the old schema declares and the new one does not, by field path ("due_date",
 * "data.after.due_date"). Validity cannot see these: the schemas are open, so an old event that
 * carries the field is still a valid new one and a new event without it a valid old one. Yet
 * readers on the new version would ignore the old events' value, and readers on the old version
 * would miss it in new events: this is what a rename, or a type change made by renaming, looks
 * like (task v1 `due_date` → v2 `due_at`). A step with removals needs an upcaster.
 */
export function removedProperties(oldSchema: JsonSchema, newSchema: JsonSchema, path = '(root)'): string[] {
  if (!isObject(oldSchema) || !isObject(newSchema)) return [];
  const propsOld = isObject(oldSchema.properties) ? (oldSchema.properties as Record<string, JsonSchema>) : {};
  const propsNew = isObject(newSchema.properties) ? (newSchema.properties as Record<string, JsonSchema>) : {};
  return Object.keys(propsOld).flatMap((name) =>
    name in propsNew ? removedProperties(propsOld[name]!, propsNew[name]!, join(path, name)) : [join(path, name)],
  );
}

export interface VersionStep {
  name: string;
  from: number;
  to: number;
  report: CompatibilityReport;
  /** Properties of v<from> that v<to> no longer declares (removedProperties). */
  removed: string[];
  /** Whether an upcaster from v<from> is registered: it carries old events over, so new readers lose nothing. */
  upcaster: boolean;
  /** The directions `requirement` asks for that this step breaks. */
  broken: Direction[];
}

export function brokenDirections(report: CompatibilityReport, requirement: Requirement): Direction[] {
  const wanted: Direction[] = requirement === 'both' ? ['backward', 'forward'] : [requirement];
  return wanted.filter((d) => !report[d].compatible);
}

/**
 * Each schema version against the one before it (v2 vs v1, v3 vs v2 …). A missing version in a
 * chain is itself an error: it would hide the step that needs checking. Backward (new readers,
 * old events) breaks when old events are invalid under the new schema or lose a removed
 * property — unless an upcaster from the old version is registered (`upcasters` holds
 * "<name>/v<from>"; its property test proves it turns old events into valid new ones). Forward
 * (old readers, new events) is about validity only: readers still on the old version read new
 * events as their own version (schemas/CONTRACTS.md, "Readers not yet redeployed"), and a
 * removed property stays on the stream through the deprecation window.
 */
export function checkVersionChains(
  schemas: VersionedSchema[],
  requirement: Requirement = 'both',
  upcasters: ReadonlySet<string> = new Set(),
): { steps: VersionStep[]; errors: string[] } {
  const byName = new Map<string, VersionedSchema[]>();
  for (const s of schemas) byName.set(s.name, [...(byName.get(s.name) ?? []), s]);
  const steps: VersionStep[] = [];
  const errors: string[] = [];
  for (const [name, versions] of [...byName].sort(([a], [b]) => a.localeCompare(b))) {
    const sorted = [...versions].sort((a, b) => a.version - b.version);
    sorted.forEach((s, i) => {
      if (s.version !== i + 1) errors.push(`${name}: versions must run v1, v2, … without gaps; found v${sorted.map((x) => x.version).join(', v')}`);
    });
    for (let i = 1; i < sorted.length; i += 1) {
      const prev = sorted[i - 1]!;
      const next = sorted[i]!;
      const report = checkCompatibility(prev.schema, next.schema);
      const removed = removedProperties(prev.schema, next.schema);
      const upcaster = upcasters.has(`${name}/v${prev.version}`);
      const broken = brokenDirections(report, requirement).filter((d) => !(d === 'backward' && upcaster));
      if (!upcaster && removed.length > 0 && requirement !== 'forward' && !broken.includes('backward')) broken.unshift('backward');
      steps.push({ name, from: prev.version, to: next.version, report, removed, upcaster, broken });
    }
  }
  return { steps, errors: [...new Set(errors)] };
}
