// The proof of an erasure (issue 13 §5): the request, the policy version it ran under, per sink of
// gdpr/POLICY.md what reached it and the evidence (purged counts, the verification scan's counts
// and time, the key destruction record), and an HMAC-SHA256 signature over the canonical JSON
// (keys sorted) under the environment's audit key — the key the audit trail's digests use, so the
// auditor who checks the trail checks the proof. Pure: the CLI loads the key and writes the file.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { TaskflowError } from '../lib/errors.js';
import { POLICY_VERSION, type ReachedBy, SINKS } from './policy.js';
import type { ErasureRequest, SinkProgress } from './processor.js';

export const PROOF_KIND = 'taskflow.gdpr.erasure-proof/v1';

export interface SinkEvidence {
  sink: string;
  method: string;
  reachedBy: ReachedBy;
  /** processor: its purge and scan; keys: the key destruction; none held: the sink is written without identifiers; not yet: nothing covers it. */
  evidence: (SinkProgress & { kind: 'purged-and-scanned' }) | { kind: 'key-destroyed'; destroyedAt: string; kids: string[] } | { kind: 'none held' } | { kind: 'not covered' };
}

export interface ErasureProof {
  kind: typeof PROOF_KIND;
  issuedAt: string;
  policyVersion: string;
  /** The version of the policy the request was recorded under (a later policy may list more sinks). */
  requestPolicyVersion: string;
  request: Pick<ErasureRequest, 'requestId' | 'subject' | 'ticket' | 'requestedBy' | 'requestedAt' | 'deadline' | 'completedAt'> & { reason?: string };
  keyDestruction: ErasureRequest['keyDestruction'];
  sinks: SinkEvidence[];
  signature?: { alg: 'HMAC-SHA256'; keyId: string; value: string };
}

export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The unsigned proof of a complete request; a request not yet complete has none. */
export function buildProof(r: ErasureRequest, now: Date): ErasureProof {
  if (r.step !== 'complete') throw new TaskflowError('GDPR_NOT_COMPLETE', `request ${r.requestId} is at step ${r.step}: a proof is issued once it is complete`);
  const sinks: SinkEvidence[] = SINKS.map((p) => {
    const progress = r.sinks[p.sink];
    const evidence: SinkEvidence['evidence'] =
      p.reachedBy === 'processor' && progress
        ? { kind: 'purged-and-scanned', ...progress }
        : p.reachedBy === 'keys' && r.keyDestruction
          ? { kind: 'key-destroyed', destroyedAt: r.keyDestruction.destroyedAt, kids: r.keyDestruction.kids }
          : p.reachedBy === 'none held'
            ? { kind: 'none held' }
            : { kind: 'not covered' };
    return { sink: p.sink, method: p.method, reachedBy: p.reachedBy, evidence };
  });
  return {
    kind: PROOF_KIND,
    issuedAt: now.toISOString(),
    policyVersion: POLICY_VERSION,
    requestPolicyVersion: r.policyVersion,
    request: { requestId: r.requestId, subject: r.subject, ticket: r.ticket, requestedBy: r.requestedBy, requestedAt: r.requestedAt, deadline: r.deadline, completedAt: r.completedAt, ...(r.reason === undefined ? {} : { reason: r.reason }) },
    keyDestruction: r.keyDestruction,
    sinks,
  };
}

/** Names the key without revealing it: a verifier with several environments' keys picks the right one. */
export function signingKeyId(key: Uint8Array): string {
  return createHmac('sha256', key).update('taskflow/gdpr-proof/key-id').digest('hex').slice(0, 16);
}

export function signProof(proof: ErasureProof, key: Uint8Array): ErasureProof {
  const { signature: _old, ...body } = proof;
  return { ...body, signature: { alg: 'HMAC-SHA256', keyId: signingKeyId(key), value: createHmac('sha256', key).update(canonicalJson(body)).digest('hex') } };
}

export function verifyProofSignature(proof: ErasureProof, key: Uint8Array): boolean {
  if (!proof.signature || proof.signature.keyId !== signingKeyId(key)) return false;
  const expected = Buffer.from(signProof(proof, key).signature!.value, 'hex');
  const given = Buffer.from(proof.signature.value, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
