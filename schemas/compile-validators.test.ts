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

describe('precompiled validators', () => {
  it('cover the same schemas and versions as compiling the current documents', () => {
    expect(precompiled.versions).toEqual(compiled.versions);
    expect(Object.keys(precompiled.validators).sort()).toEqual(Object.keys(compiled.validators).sort());
  });

  it('give every event, valid or mutated, the verdict and message of the run-time compiled ones', () => {
    const fields = fc.constantFrom('id', 'type', 'time', 'workspaceid', 'projectid', 'dataschema', 'subject', 'data');
    const dataFields = fc.constantFrom('op', 'table', 'key', 'before', 'after', 'changed', 'omitted', 'source', 'tables');
    const mutation = fc.option(fc.tuple(fc.boolean(), fields, dataFields, fc.option(fc.jsonValue({ maxDepth: 3 }), { nil: undefined })), { nil: undefined });
    let rejected = 0;
    fc.assert(
      fc.property(arbitraryEvent(), mutation, (event, m) => {
        const e = structuredClone(event) as unknown as Record<string, unknown>;
        if (m) {
          const [inData, field, dataField, value] = m;
          const target = inData && typeof e.data === 'object' && e.data !== null ? (e.data as Record<string, unknown>) : e;
          const key = target === e ? field : dataField;
          if (value === undefined) delete target[key];
          else target[key] = value;
        }
        const expected = validateCompiled(structuredClone(e));
        if (!expected.ok) rejected += 1;
        expect(validateEvent(structuredClone(e))).toEqual(expected);
      }),
      { numRuns: 1500 },
    );
    expect(rejected).toBeGreaterThan(100);
  });
});
