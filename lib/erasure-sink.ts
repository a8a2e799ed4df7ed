// The dead-letter table's erasure sink (gdpr/POLICY.md `dead-letters`): lib/dlq.ts is shared by
// every service that dead-letters (capture, router, search, notifications, audit, analytics), so
// its sink lives beside it. Every dead letter — redriven or not — whose reason, message, origin
// or payload (read as UTF-8, gunzipped when gzipped) holds one of the subject's identifiers is
// deleted with all its parts; so is a continuation part a crash left without its head.
import { createDynamoClient, loadAwsConfig } from './aws.js';
import { type Env, readSettings, stringSetting, tableEnvVar } from './config.js';
import { type DeadLetter, DLQ_TABLE, DynamoDeadLetterStore } from './dlq.js';
import { attributeHolds } from './dynamo-erasure.js';
import { type ErasureSink, type SinkSteps, bindSink, identifierStrings, type SubjectIdentifiers } from './erasure.js';

const holds = (e: DeadLetter, needles: readonly string[]) =>
  attributeHolds({ SS: [e.reason, e.message, ...Object.values(e.origin)] }, needles) || attributeHolds({ B: e.payload }, needles);

/** The identifiers, plus their comments' ids: a dead-lettered event of a comment may carry its body encrypted, never its id. */
const needles = (ids: SubjectIdentifiers) => [...identifierStrings(ids), ...ids.authored.filter((a) => a.table === 'comments').map((a) => a.id)];

export const DEAD_LETTERS_SINK: SinkSteps<DynamoDeadLetterStore> = {
  sink: 'dead-letters',
  async purge(store, ids, onProgress) {
    const n = needles(ids);
    let changed = 0;
    for (const e of await store.list({ includeRedriven: true })) {
      if (!holds(e, n)) continue;
      if (await store.remove(e.id)) changed += 1;
      onProgress?.(changed);
    }
    for await (const part of store.orphanParts()) {
      if (!attributeHolds({ B: part.chunk }, n)) continue;
      await store.removePart(part.id);
      changed += 1;
    }
    return { changed };
  },
  async scan(store, ids) {
    const n = needles(ids);
    const entries = await store.list({ includeRedriven: true });
    let found = entries.filter((e) => holds(e, n)).length;
    let scanned = entries.length;
    for await (const part of store.orphanParts()) {
      scanned += 1;
      if (attributeHolds({ B: part.chunk }, n)) found += 1;
    }
    return { scanned, found };
  },
};

export const ERASURE_SINKS = [DEAD_LETTERS_SINK] as const;

const SINK_SETTINGS = { dlqTable: stringSetting({ name: tableEnvVar('dlq'), default: DLQ_TABLE, meaning: 'Dead-letter table (lib/dlq.ts).' }) };

export function openErasureSinks(env: Env): Promise<{ sinks: ErasureSink[]; close(): Promise<void> }> {
  const client = createDynamoClient(loadAwsConfig(env));
  const store = new DynamoDeadLetterStore(client, readSettings(env, SINK_SETTINGS).dlqTable);
  return Promise.resolve({ sinks: [bindSink(DEAD_LETTERS_SINK, store)], close: () => Promise.resolve(client.destroy()) });
}
