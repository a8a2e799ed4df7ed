// The readers' validators are precompiled (generated/validators.ts; codegen.test.ts fails when
// it is stale): they must judge every event as ajv compiling the same documents at run time does.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { compileValidators } from './compile-validators.js';
import { arbitraryEvent } from './fixtures.js';
import { schemaDocuments } from './generated/schemas.js';
import * as precompiled from './generated/validators.js';
import { eventValidatorFrom, validateEvent } from './validate.js';

const compiled = compileValidators(schemaDocuments);
const validateCompiled = eventValidatorFrom(compiled);
// Ajv2020 as it comes: tracking the properties each subschema evaluated.
const validateTracked = eventValidatorFrom(compileValidators(schemaDocuments, { trackEvaluated: true }));

/** A valid event, or one with a top-level or data field deleted or replaced by any JSON value. */
function mutatedEvents() {
  const fields = fc.constantFrom('id', 'type', 'time', 'workspaceid', 'projectid', 'dataschema', 'subject', 'data');
  const dataFields = fc.constantFrom('op', 'table', 'key', 'before', 'after', 'changed', 'omitted', 'source', 'tables');
  const mutation = fc.option(fc.tuple(fc.boolean(), fields, dataFields, fc.option(fc.jsonValue({ maxDepth: 3 }), { nil: undefined })), { nil: undefined });
  return fc.tuple(arbitraryEvent(), mutation).map(([event, m]) => {
    const e = structuredClone(event) as unknown as Record<string, unknown>;
    if (m) {
      const [inData, field, dataField, value] = m;
      const target = inData && typeof e.data === 'object' && e.data !== null ? (e.data as Record<string, unknown>) : e;
      const key = target === e ? field : dataField;
      if (value === undefined) delete target[key];
      else target[key] = value;
    }
    return e;
  });
}

describe('precompiled validators', () => {
  it('cover the same schemas and versions as compiling the current documents', () => {
    expect(precompiled.versions).toEqual(compiled.versions);
    expect(Object.keys(precompiled.validators).sort()).toEqual(Object.keys(compiled.validators).sort());
  });

  it('give every event, valid or mutated, the verdict and message of the run-time compiled ones', () => {
    let rejected = 0;
    fc.assert(
      fc.property(mutatedEvents(), (e) => {
        const expected = validateCompiled(structuredClone(e));
        if (!expected.ok) rejected += 1;
        expect(validateEvent(structuredClone(e))).toEqual(expected);
      }),
      { numRuns: 1500 },
    );
    expect(rejected).toBeGreaterThan(100);
  });
});

describe('validators without evaluated-properties tracking', () => {
  it('give every event, valid or mutated, the verdict and message of Ajv2020 tracking them', () => {
    let rejected = 0;
    fc.assert(
      fc.property(mutatedEvents(), (e) => {
        const expected = validateTracked(structuredClone(e));
        if (!expected.ok) rejected += 1;
        expect(validateEvent(structuredClone(e))).toEqual(expected);
      }),
      { numRuns: 1500 },
    );
    expect(rejected).toBeGreaterThan(100);
  });

  it('refuse documents using unevaluatedProperties or unevaluatedItems (they need the tracking)', () => {
    const envelope = schemaDocuments['taskflow://schemas/envelope/v1']!;
    const documents = { ...schemaDocuments, 'taskflow://schemas/envelope/v1': { ...envelope, properties: { ...(envelope.properties as object), data: { type: 'object', unevaluatedProperties: false } } } };
    expect(() => compileValidators(documents)).toThrow('taskflow://schemas/envelope/v1 uses unevaluatedProperties (at /properties/data/unevaluatedProperties)');
    expect(() => compileValidators(documents, { trackEvaluated: true })).not.toThrow();
  });
});
