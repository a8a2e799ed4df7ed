// The audit trail's erasure sink (gdpr/POLICY.md `audit-trail`): a pseudonym cut. The segments
// are immutable (Object Lock in production) and hold pseudonyms and keyed digests, never
// contents (record.ts); what links a pseudonym to the person is the identity mapping, which the
// purge deletes — the subject's mapping under the current key, and any other mapping naming
// them (one written under an earlier key). The chain still verifies afterwards.
import { type Env } from '../lib/config.js';
import { type ErasureSink, type SinkSteps, bindSink, type SubjectIdentifiers } from '../lib/erasure.js';
import { loadAwsConfig } from '../lib/aws.js';
import { loadAuditKey, loadAuditStoreConfig } from './config.js';
import { forgetIdentity, identityKey } from './identities.js';
import { openAuditStore } from './open-store.js';
import { Pseudonymizer } from './record.js';
import { type AuditStore, MUTABLE_PREFIX } from './store.js';

export interface AuditTrail {
  store: AuditStore;
  pseudonyms: Pseudonymizer;
}

/** Every identity mapping's key, and whether it names the subject. */
async function mappings(t: AuditTrail, subject: string): Promise<{ key: string; names: boolean }[]> {
  const out: { key: string; names: boolean }[] = [];
  let after: string | undefined;
  for (;;) {
    const keys = await t.store.list(MUTABLE_PREFIX, after);
    if (keys.length === 0) return out;
    for (const key of keys) {
      const bytes = await t.store.get(key);
      const userId = bytes ? (JSON.parse(Buffer.from(bytes).toString('utf8')) as { userId?: string }).userId : undefined;
      out.push({ key, names: userId === subject });
    }
    after = keys[keys.length - 1];
  }
}

export const AUDIT_TRAIL_SINK: SinkSteps<AuditTrail> = {
  sink: 'audit-trail',
  async purge(t, ids: SubjectIdentifiers, onProgress) {
    let changed = (await forgetIdentity(t.store, t.pseudonyms.actor(ids.subject))) ? 1 : 0;
    for (const m of await mappings(t, ids.subject)) {
      if (!m.names) continue;
      await t.store.delete(m.key);
      changed += 1;
    }
    onProgress?.(changed);
    return { changed };
  },
  async scan(t, ids) {
    const all = await mappings(t, ids.subject);
    const current = identityKey(t.pseudonyms.actor(ids.subject));
    return { scanned: all.length, found: all.filter((m) => m.names || m.key === current).length };
  },
};

export const ERASURE_SINKS = [AUDIT_TRAIL_SINK] as const;

export function openErasureSinks(env: Env): Promise<{ sinks: ErasureSink[]; close(): Promise<void> }> {
  const trail: AuditTrail = { store: openAuditStore(loadAuditStoreConfig(env), loadAwsConfig(env)), pseudonyms: new Pseudonymizer(loadAuditKey(env)) };
  return Promise.resolve({ sinks: [bindSink(AUDIT_TRAIL_SINK, trail)], close: () => Promise.resolve() });
}
