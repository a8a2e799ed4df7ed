// The hand-written uuid format check must accept exactly what the RFC 4122 text-form regex does.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { isUuid } from './formats.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A uuid with one code unit replaced by any character (a digit, a dash, a letter past f, é, a lone surrogate …). */
const nearUuid = fc
  .tuple(fc.uuid(), fc.nat(35), fc.oneof(fc.string({ minLength: 1, maxLength: 1, unit: 'binary' }), fc.constantFrom('-', 'g', 'G', 'F', '0', '/', ':', '@', '`', '\u0130', '\ud800', '\u0660')))
  .map(([u, at, c]) => u.slice(0, at) + c + u.slice(at + 1));

describe('isUuid', () => {
  it('accepts exactly what the regex accepts', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uuid(), fc.uuid().map((u) => u.toUpperCase()), nearUuid, fc.string({ maxLength: 40, unit: 'binary' })), (s) => {
        expect(isUuid(s)).toBe(UUID.test(s));
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses a uuid one character short or long, or with its dashes moved', () => {
    const u = '33333333-3333-4333-8333-000000000000';
    expect(isUuid(u)).toBe(true);
    expect(isUuid(u.slice(1))).toBe(false);
    expect(isUuid(`${u}0`)).toBe(false);
    expect(isUuid('333333333-333-4333-8333-000000000000')).toBe(false);
    expect(isUuid('')).toBe(false);
  });
});
