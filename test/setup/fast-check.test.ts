// The run's fast-check seed reaches every property test (test/setup/fast-check.mjs).
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

describe('fast-check set-up', () => {
  it('uses the seed of FC_SEED, which npm test always sets', () => {
    expect(process.env.FC_SEED).toMatch(/^\d+$/);
    expect(fc.readConfigureGlobal().seed).toBe(Number(process.env.FC_SEED));
  });
});
