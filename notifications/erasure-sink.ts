// The notifications service's erasure sink (gdpr/POLICY.md `notifications-inbox`): every item of
// its tables that holds the subject goes — their inbox (notifications to them), notifications
// about them (their id as the actor, an excerpt of their text, one of their comments), the tasks
// they watch and the service's projection of their memberships. Whole-table Scans
// (lib/dynamo-erasure.ts): notifications about the subject sit in other users' inboxes.
import { createDynamoClient, loadAwsConfig } from '../lib/aws.js';
import { type Env, readSettings } from '../lib/config.js';
import { type ErasableTable, purgeHolding, scanHolding } from '../lib/dynamo-erasure.js';
import { type ErasureSink, type SinkSteps, bindSink, identifierStrings, type SubjectIdentifiers } from '../lib/erasure.js';
import { NOTIFICATION_SETTINGS } from './config.js';

/**
 * The identifiers, plus the ids of the subject's comments: a notification of a comment carries
 * only its first characters, which do not contain a longer comment's whole text.
 */
const needles = (ids: SubjectIdentifiers) => [...identifierStrings(ids), ...ids.authored.filter((a) => a.table === 'comments').map((a) => a.id)];

export const NOTIFICATIONS_INBOX_SINK: SinkSteps<readonly ErasableTable[]> = {
  sink: 'notifications-inbox',
  async purge(tables, ids, onProgress) {
    let changed = 0;
    for (const t of tables) changed += (await purgeHolding(t, needles(ids), (n) => onProgress?.(changed + n))).changed;
    return { changed };
  },
  async scan(tables, ids) {
    let scanned = 0;
    let found = 0;
    for (const t of tables) {
      const r = await scanHolding(t, needles(ids));
      scanned += r.scanned;
      found += r.found;
    }
    return { scanned, found };
  },
};

export const ERASURE_SINKS = [NOTIFICATIONS_INBOX_SINK] as const;

export function openErasureSinks(env: Env): Promise<{ sinks: ErasureSink[]; close(): Promise<void> }> {
  const s = readSettings(env, { inbox: NOTIFICATION_SETTINGS.inboxTable, watchers: NOTIFICATION_SETTINGS.watchersTable, memberships: NOTIFICATION_SETTINGS.membershipsTable });
  const client = createDynamoClient(loadAwsConfig(env));
  // Keys as notifications/tables.ts and lib/dynamo-memberships.ts declare them.
  const tables: ErasableTable[] = [
    { client, table: s.inbox, key: ['inbox', 'id'] },
    { client, table: s.watchers, key: ['taskId', 'userId'] },
    { client, table: s.memberships, key: ['userId', 'scope'] },
  ];
  return Promise.resolve({ sinks: [bindSink(NOTIFICATIONS_INBOX_SINK, tables)], close: () => Promise.resolve(client.destroy()) });
}
