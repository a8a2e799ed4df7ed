// Compiling the event validators with ajv: at build time into standalone code
// (`taskflow schemas gen-types` writes generated/validators.ts, which readers load without ajv:
// compiling at import cost a restarted router ≈ 0.5 s of CPU, on the recovery path), and at run
// time for readers pinned to other schema documents (tests of not-yet-redeployed consumers:
// `eventValidatorFrom(compileValidators(documents))`).
import { _, Ajv2020, type AnySchema, type ValidateFunction } from 'ajv/dist/2020.js';
import standaloneModule from 'ajv/dist/standalone/index.js';
import { validatorFormats } from './formats.js';
import { ENTITIES, EVENT_KINDS, type EventKind } from './kinds.js';
import { parseSchemaId, schemaId } from './schema-id.js';
import type { CompiledValidators } from './validate.js';

// CommonJS: under NodeNext its default import is `module.exports`, the function itself.
const standaloneCode = standaloneModule as unknown as typeof standaloneModule.default;

type Documents = Readonly<Record<string, Record<string, unknown>>>;

/** Schema name → its newest version among the documents. */
export function latestVersions(documents: Documents): Record<string, number> {
  const latest: Record<string, number> = {};
  for (const id of Object.keys(documents)) {
    const ref = parseSchemaId(id);
    if (ref && ref.version > (latest[ref.name] ?? 0)) latest[ref.name] = ref.version;
  }
  return latest;
}

/** The one schema an event of this kind must satisfy: the envelope plus its data schema. */
function validatorSchema(kind: EventKind, envelopeId: string, dataSchemaId: string): Record<string, unknown> {
  if (kind.kind !== 'entity') {
    return { allOf: [{ $ref: envelopeId }], properties: { data: { $ref: dataSchemaId } } };
  }
  const entity = ENTITIES[kind.entity];
  const rowImage = { if: { type: 'object' }, then: { $ref: dataSchemaId } };
  return {
    allOf: [{ $ref: envelopeId }],
    ...(entity.hasProject ? { required: ['projectid'] } : {}),
    properties: {
      data: {
        allOf: [{ $ref: `${envelopeId}#/$defs/changeData` }],
        properties: {
          table: { const: entity.table },
          key: { required: ['id'], properties: { id: { type: 'string', format: 'uuid' } } },
          before: rowImage,
          after: rowImage,
        },
      },
    },
  };
}

/** Keywords that judge what other subschemas left unevaluated: the only readers of ajv's evaluated-properties bookkeeping. */
const UNEVALUATED_KEYWORDS = new Set(['unevaluatedProperties', 'unevaluatedItems']);

/** Where a document uses an unevaluated* keyword (a JSON pointer), or undefined. */
function unevaluatedKeywordAt(node: unknown, path: string): string | undefined {
  if (typeof node !== 'object' || node === null) return undefined;
  for (const [key, value] of Object.entries(node)) {
    if (!Array.isArray(node) && UNEVALUATED_KEYWORDS.has(key)) return `${path}/${key}`;
    const found = unevaluatedKeywordAt(value, `${path}/${key}`);
    if (found) return found;
  }
  return undefined;
}

export interface CompileOptions {
  /**
   * Track which properties and items each subschema evaluated, as Ajv2020 always does (for
   * unevaluatedProperties/unevaluatedItems, which no event schema uses). Off by default: the
   * bookkeeping allocated objects on every validation (about 600 of 1,900 bytes per task event,
   * a sixth of its validation time) and decides nothing. On, it is the reference the untracked
   * validators are tested against (compile-validators.test.ts).
   */
  trackEvaluated?: boolean;
}

/** An ajv holding the documents and one validator schema per data schema (the four verbs of an entity share theirs), keyed by schema name. */
function ajvWithValidators(documents: Documents, standalone: boolean, options: CompileOptions = {}): { ajv: Ajv2020; versions: Record<string, number>; names: string[] } {
  const ajv = new Ajv2020({ strictTypes: false, allErrors: false, ...(standalone ? { code: { source: true, esm: true, lines: true, formats: _`formats` } } : {}) });
  if (!options.trackEvaluated) {
    // Without the bookkeeping an unevaluated* keyword would see every property as unevaluated:
    // refused here rather than generated wrong.
    for (const [id, doc] of Object.entries(documents)) {
      const at = unevaluatedKeywordAt(doc, '');
      if (at) throw new Error(`${id} uses ${at.slice(at.lastIndexOf('/') + 1)} (at ${at}): compile with trackEvaluated`);
    }
    // Ajv2020 forces the option on in its constructor; it is read when a schema is compiled.
    ajv.opts.unevaluated = false;
  }
  for (const [name, format] of Object.entries(validatorFormats)) ajv.addFormat(name, format as Parameters<Ajv2020['addFormat']>[1]);
  ajv.addKeyword({ keyword: 'x-version', schemaType: 'number' });
  for (const doc of Object.values(documents)) ajv.addSchema(doc as AnySchema);
  const versions = latestVersions(documents);
  const envelopeId = schemaId({ name: 'envelope', version: versions.envelope ?? 1 });
  const names: string[] = [];
  for (const kind of EVENT_KINDS.values()) {
    if (names.includes(kind.schema)) continue;
    const version = versions[kind.schema];
    if (version === undefined) throw new Error(`no schema "${kind.schema}" for event type ${kind.type}`);
    ajv.addSchema(validatorSchema(kind, envelopeId, schemaId({ name: kind.schema, version })) as AnySchema, validatorKey(kind.schema));
    names.push(kind.schema);
  }
  return { ajv, versions, names };
}

const validatorKey = (name: string) => `taskflow://validators/${name}`;
const exportName = (name: string) => `validate_${name.replaceAll('-', '_')}`;

/** Compiles every validator now, from these documents. */
export function compileValidators(documents: Documents, options: CompileOptions = {}): CompiledValidators {
  const { ajv, versions, names } = ajvWithValidators(documents, false, options);
  const validators: Record<string, ValidateFunction> = {};
  for (const name of names) validators[name] = ajv.getSchema(validatorKey(name))!;
  return { versions, validators };
}

/**
 * The standalone ES module of the validators (generated/validators.ts): ajv's code, with its
 * runtime helpers imported instead of `require`d, exporting `versions` and `validators` as
 * compileValidators returns them.
 */
export function standaloneValidatorsModule(documents: Documents): string {
  const { ajv, versions, names } = ajvWithValidators(documents, true);
  const code = standaloneCode(ajv, Object.fromEntries(names.map((n) => [exportName(n), validatorKey(n)])));
  const imports = new Map<string, string>();
  const body = code.replace(/^"use strict";/, '').replace(/require\("([^"]+)"\)/g, (_match, path: string) => {
    const file = path.endsWith('.js') ? path : `${path}.js`;
    if (!imports.has(file)) imports.set(file, `runtime${imports.size}`);
    return imports.get(file)!;
  });
  return [
    '// @ts-nocheck -- ajv standalone code',
    ...[...imports].map(([file, name]) => `import ${name} from ${JSON.stringify(file)};`),
    "import { validatorFormats as formats } from '../formats.js';",
    body.trim(),
    `export const versions = ${JSON.stringify(versions)};`,
    `export const validators = {\n${names.map((n) => `  ${JSON.stringify(n)}: ${exportName(n)},`).join('\n')}\n};`,
    '',
  ].join('\n');
}
