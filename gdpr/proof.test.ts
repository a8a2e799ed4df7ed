import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { POLICY_VERSION, PROCESSOR_SINKS, SINKS } from './policy.js';
import { newRequest, type ErasureRequest } from './processor.js';
import { buildProof, canonicalJson, signProof, verifyProofSignature } from './proof.js';

const KEY = new TextEncoder().encode('k'.repeat(32));
const ids = { subject: '11111111-1111-4111-8111-000000000001', email: 'ada@example.com', displayName: 'Ada', authored: [] };

function complete(): ErasureRequest {
  const r = newRequest({ requestId: 'r1', ids, ticket: 'DPO-7', requestedBy: 'dpo@example.com', now: new Date('2026-12-02T10:00:00Z'), sinks: PROCESSOR_SINKS });
  const { identifiers: _dropped, ...rest } = r;
  const verified = Object.fromEntries(PROCESSOR_SINKS.map((s) => [s, { state: 'verified' as const, changed: 1, scanned: 1, found: 0, scannedAt: '2026-12-02T10:04:00.000Z' }]));
  return { ...rest, sinks: verified, step: 'complete', completedAt: '2026-12-02T10:05:00.000Z', keyDestruction: { subject: ids.subject, kids: ['sk1.a'], destroyedAt: '2026-12-02T10:01:00.000Z', store: 'memory' }, version: 5 };
}

describe('erasure proof', () => {
  it('lists every sink of the policy with what reached it, and names no sink as covered that nothing covers', () => {
    const proof = buildProof(complete(), new Date('2026-12-02T11:00:00Z'));
    expect(proof.policyVersion).toBe(POLICY_VERSION);
    expect(proof.sinks.map((s) => s.sink)).toEqual(SINKS.map((s) => s.sink));
    for (const s of proof.sinks) expect(s.evidence.kind).toBe({ keys: 'key-destroyed', processor: 'purged-and-scanned', 'none held': 'none held', 'not yet': 'not covered' }[s.reachedBy]);
    expect(JSON.stringify(proof)).not.toContain('ada@example.com');
  });

  it('refuses a request that is not complete', () => {
    expect(() => buildProof({ ...complete(), step: 'verified' }, new Date())).toThrow(/not|complete/);
  });

  it('a signed proof verifies under its key; any change to it, or another key, does not', () => {
    const signed = signProof(buildProof(complete(), new Date('2026-12-02T11:00:00Z')), KEY);
    expect(verifyProofSignature(signed, KEY)).toBe(true);
    expect(verifyProofSignature(JSON.parse(JSON.stringify(signed)), KEY)).toBe(true);
    expect(verifyProofSignature(signed, new TextEncoder().encode('x'.repeat(32)))).toBe(false);
    fc.assert(
      fc.property(fc.constantFrom('ticket', 'subject', 'completedAt', 'requestedBy'), fc.string({ minLength: 1 }), (field, value) => {
        fc.pre(value !== (signed.request as Record<string, unknown>)[field]);
        expect(verifyProofSignature({ ...signed, request: { ...signed.request, [field]: value } }, KEY)).toBe(false);
      }),
    );
  });

  it('canonical JSON does not depend on key order', () => {
    fc.assert(fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (o) => expect(canonicalJson(Object.fromEntries(Object.entries(o).reverse()))).toBe(canonicalJson(o))));
  });
});
