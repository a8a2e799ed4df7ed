// `taskflow audit`: the audit trail service, and the tools that read it.
//   taskflow audit                                      run the service (long-running)
//   taskflow audit verify [--from T] [--to T] [--json]  recompute the chain; exit 1 naming the first bad segment
//   taskflow audit query --entity tasks/<id> [--json]   an entity's history
//   taskflow audit forget --user <id>                   erasure: delete the user's pseudonym mapping
//   taskflow audit redrive [--reason R] [--id ID]       put the audit trail's dead letters back on the stream
import { parseArgs } from 'node:util';
import { AUDIT_SETTING_LIST, AUDIT_SETTINGS, DEV_AUDIT_KEY_FILE, loadAuditKey, loadAuditStoreConfig, loadConfig } from '../../audit/config.js';
import { forgetIdentity } from '../../audit/identities.js';
import { entityHistory, type HistoryEntry, verifyTrail } from '../../audit/inspect.js';
import { Pseudonymizer } from '../../audit/record.js';
import { redriveAuditDeadLetters } from '../../audit/redrive.js';
import { startAudit } from '../../audit/service.js';
import { parseState } from '../../audit/shard-writer.js';
import { openAuditStore } from '../../audit/open-store.js';
import type { SegmentLink } from '../../audit/chain.js';
import { createDynamoClient, createKinesisClient, loadAwsConfig } from '../../lib/aws.js';
import { type Env, settingsHelp } from '../../lib/config.js';
import { DEVELOPMENT, ENV_VAR } from '../../lib/dev-mode.js';
import { DynamoDeadLetterStore } from '../../lib/dlq.js';
import { TaskflowError } from '../../lib/errors.js';
import { CONSUMER_SETTINGS, DynamoLeaseStore, stateOf } from '@taskflow/stream';
import { createLogger } from '../../lib/logger.js';
import type { Command } from '../command.js';
import { runUntilSignalled } from '../long-running.js';
import { operatorEnvironment } from '../operator-env.js';

const usage = `usage:
  taskflow audit                                       run the audit trail service
  taskflow audit verify [--from TIME] [--to TIME] [--json]
  taskflow audit query --entity <table>/<id> [--json]
  taskflow audit forget --user USER_ID
  taskflow audit redrive [--reason R] [--id ID]
Settings of the service (environment; see audit/README.md):
${settingsHelp(AUDIT_SETTING_LIST)}
The tools find the store, DynamoDB and Kinesis through the same variables or, when unset, the running local stack (.taskflow/stack.json).`;

function environment(): Env {
  return operatorEnvironment({ configuredBy: ['AUDIT_STORE_DIR'], localDefaults: () => ({ AUDIT_KEY_FILE: DEV_AUDIT_KEY_FILE, [ENV_VAR]: DEVELOPMENT }) });
}

async function runService(): Promise<number> {
  const config = loadConfig(process.env);
  const logger = createLogger('audit');
  const audit = await startAudit(config, logger);
  return runUntilSignalled(logger, 'stopping: checkpointing and releasing leases', () => audit.stop('graceful'));
}

function parseTime(value: string | undefined, flag: string): Date | undefined {
  if (value === undefined) return undefined;
  const t = new Date(value);
  if (Number.isNaN(t.getTime())) throw new TaskflowError('BAD_ARGUMENT', `${flag}: not a time: "${value}" (use ISO 8601, e.g. 2026-12-01T10:00:00Z)`);
  return t;
}

/** The newest segment per shard the service checkpointed, from its leases (when the lease table is reachable). */
async function checkpointedHeads(env: Env): Promise<Map<string, SegmentLink> | undefined> {
  if (!env.DYNAMODB_ENDPOINT && !env.AWS_EXECUTION_ENV) return undefined;
  const dynamo = createDynamoClient(loadAwsConfig(env));
  try {
    const store = new DynamoLeaseStore(dynamo, CONSUMER_SETTINGS.leaseTable.read(env), AUDIT_SETTINGS.consumerName.read(env));
    const heads = new Map<string, SegmentLink>();
    for (const l of await store.list()) {
      // The state is in the lease's slot item (or inline in an item of the previous version). A
      // slot written again since the list (a running service checkpointed) is read from a fresh list.
      let { found, state } = await stateOf(store, l);
      if (!found) {
        const again = (await store.list()).find((x) => x.leaseKey === l.leaseKey);
        ({ found, state } = again ? await stateOf(store, again) : { found: false, state: undefined });
      }
      const head = found ? parseState(state).head : undefined;
      if (head) heads.set(l.leaseKey, head);
    }
    return heads;
  } finally {
    dynamo.destroy();
  }
}

function historyTable(entries: readonly HistoryEntry[]): string {
  const rows = entries.map((e) => [e.time, e.type.replace(/^taskflow\./, ''), e.userId ?? (e.actor ? `pseudonym ${e.actor}` : '(none)'), (e.changed ?? []).join(',') || '-', `${e.lsn} xid ${e.xid}`, e.eventId]);
  const head = ['committed', 'change', 'actor', 'changed', 'transaction', 'event id'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export const command: Command = {
  summary: 'audit trail: run the service | verify [--from --to] | query --entity T/ID | forget --user U | redrive',
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === undefined) return runService();
    if (sub === '--help' || sub === 'help') {
      console.log(usage);
      return 0;
    }
    const { values } = parseArgs({
      args: rest,
      options: { from: { type: 'string' }, to: { type: 'string' }, json: { type: 'boolean', default: false }, entity: { type: 'string' }, user: { type: 'string' }, reason: { type: 'string' }, id: { type: 'string' } },
    });
    const env = environment();
    const store = openAuditStore(loadAuditStoreConfig(env), loadAwsConfig(env));
    if (sub === 'verify') {
      const from = parseTime(values.from, '--from');
      const to = parseTime(values.to, '--to');
      const heads = await checkpointedHeads(env);
      const results = await verifyTrail(store, { ...(from ? { from } : {}), ...(to ? { to } : {}), ...(heads ? { heads } : {}) });
      const bad = results.filter((r) => r.finding);
      if (values.json) console.log(JSON.stringify({ ok: bad.length === 0, shards: results }, null, 2));
      else {
        for (const r of results) {
          const status = r.finding ? `${r.finding.problem.toUpperCase()}: segment ${r.finding.index} — ${r.finding.detail}` : 'ok';
          console.log(`${r.shardId}  ${r.segments} segment(s), ${r.records} record(s) verified  ${status}`);
        }
        console.log(bad.length === 0 ? `audit trail verified: ${results.length} shard chain(s) intact${heads ? ', each reaching its checkpoint' : ''}` : `audit trail BROKEN in ${bad.length} shard chain(s)`);
      }
      return bad.length === 0 ? 0 : 1;
    }
    if (sub === 'query') {
      if (!values.entity || !/^[a-z_]+\/[^/]+$/.test(values.entity)) throw new TaskflowError('BAD_ARGUMENT', '--entity <table>/<id> is required, e.g. --entity tasks/5b0c…');
      const history = await entityHistory(store, values.entity);
      if (values.json) console.log(JSON.stringify(history, null, 2));
      else console.log(history.length === 0 ? `no audit records for ${values.entity}` : `${historyTable(history)}\n${history.length} change(s) to ${values.entity}`);
      return 0;
    }
    if (sub === 'forget') {
      if (!values.user) throw new TaskflowError('BAD_ARGUMENT', '--user USER_ID is required');
      const pseudonym = new Pseudonymizer(loadAuditKey(env)).actor(values.user);
      const had = await forgetIdentity(store, pseudonym);
      console.log(had ? `forgot user ${values.user}: pseudonym ${pseudonym} no longer resolves; the chain is unchanged` : `no identity mapping for user ${values.user} (pseudonym ${pseudonym})`);
      return 0;
    }
    if (sub === 'redrive') {
      const aws = loadAwsConfig(env);
      const dynamo = createDynamoClient(aws);
      const kinesis = createKinesisClient(aws);
      try {
        const done = await redriveAuditDeadLetters({
          store: new DynamoDeadLetterStore(dynamo, AUDIT_SETTINGS.dlqTable.read(env)),
          kinesis,
          streamName: CONSUMER_SETTINGS.streamName.read(env),
          ...(values.reason ? { reason: values.reason } : {}),
          ...(values.id ? { id: values.id } : {}),
        });
        for (const d of done) console.log(`redriven ${d.id} (${d.reason})`);
        console.log(`${done.length} dead letter(s) redriven`);
      } finally {
        kinesis.destroy();
        dynamo.destroy();
      }
      return 0;
    }
    console.error(usage);
    return 2;
  },
};
