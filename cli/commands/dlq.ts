// `taskflow dlq`: inspect and redrive the router's dead letters.
//   taskflow dlq list [--reason R] [--all]                entries (--all: also those already redriven, and capture's)
//   taskflow dlq show ID                                  one entry with its original bytes, escaped for the terminal
//   taskflow dlq redrive [--reason R] [--id ID] [--force] put router entries back on the change stream
import { parseArgs } from 'node:util';
import { createDynamoClient, createKinesisClient, loadAwsConfig } from '../../lib/aws.js';
import { str, tableEnvVar } from '../../lib/config.js';
import { type DeadLetter, DynamoDeadLetterStore, printable } from '../../lib/dlq.js';
import { redriveDeadLetters } from '../../router/redrive.js';
import type { Command } from '../command.js';
import { operatorEnvironment } from '../operator-env.js';

const usage = `usage:
  taskflow dlq list [--reason R] [--all]     router dead letters not redriven yet (--all: every entry, capture's too)
  taskflow dlq show ID                       one entry and its payload (control characters shown escaped, e.g. \\x1b)
  taskflow dlq redrive [--reason R] [--id ID] [--force]
                                             put router entries back on the change stream (partition key
                                             redrive:<workspace>, on the workspace's shard). Each is first checked
                                             as the router will check it; one that would be dead-lettered again
                                             is refused with the reason (exit 1) unless --force
Finds DynamoDB and Kinesis through the environment (AWS_REGION, DYNAMODB_ENDPOINT, DYNAMODB_TABLE_DLQ,
KINESIS_ENDPOINT, CHANGE_STREAM_NAME) or, when unset, the running local stack (.taskflow/stack.json).`;

function summary(d: DeadLetter): string {
  const origin = Object.entries(d.origin).map(([k, v]) => `${k}=${v}`).join(' ');
  return printable(`${d.id}  ${d.source.padEnd(7)} ${d.reason.padEnd(17)} ${d.payload.length} B  ${origin}${d.redrivenAt ? `  redriven ${d.redrivenAt}` : ''}\n    ${d.message}`);
}

/** The payload as text, escaped for the terminal; bytes that are not UTF-8 as base64. */
function payloadText(payload: Uint8Array): string {
  try {
    return printable(new TextDecoder('utf-8', { fatal: true }).decode(payload));
  } catch {
    return `(not UTF-8, base64) ${Buffer.from(payload).toString('base64')}`;
  }
}

const SUBCOMMANDS = ['list', 'show', 'redrive'] as const;

export const command: Command = {
  summary: 'dead letters: list | show ID | redrive [--reason R] [--force]',
  subcommands: SUBCOMMANDS,
  async run(argv) {
    const [sub, ...rest] = argv;
    const { values, positionals } = parseArgs({
      args: rest,
      options: { reason: { type: 'string' }, id: { type: 'string' }, all: { type: 'boolean', default: false }, force: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } },
      allowPositionals: true,
    });
    if (sub === '--help' || sub === 'help' || values.help) {
      console.log(usage);
      return 0;
    }
    if (!(SUBCOMMANDS as readonly (string | undefined)[]).includes(sub) || (sub === 'show' && !positionals[0])) {
      console.error(usage);
      return 2;
    }
    const env = operatorEnvironment();
    const aws = loadAwsConfig(env);
    const dynamo = createDynamoClient(aws);
    const store = new DynamoDeadLetterStore(dynamo, str(env, tableEnvVar('dlq'), 'taskflow-dlq'));
    try {
      if (sub === 'list') {
        const entries = (await store.list(values.all ? { includeRedriven: true } : { source: 'router' })).filter((d) => !values.reason || d.reason === values.reason);
        for (const d of entries) console.log(summary(d));
        console.log(`${entries.length} dead letter(s)`);
        return 0;
      }
      if (sub === 'show') {
        const d = await store.get(positionals[0]!);
        if (!d) {
          console.error(`no dead letter ${printable(positionals[0]!)}`);
          return 1;
        }
        console.log(summary(d));
        console.log(payloadText(d.payload));
        return 0;
      }
      const kinesis = createKinesisClient(aws);
      try {
        const { redriven, refused } = await redriveDeadLetters({
          store,
          kinesis,
          streamName: str(env, 'CHANGE_STREAM_NAME'),
          force: values.force,
          ...(values.reason ? { reason: values.reason } : {}),
          ...(values.id ? { id: values.id } : {}),
        });
        for (const d of redriven) console.log(`redriven ${d.id} (${d.reason})`);
        for (const r of refused) {
          const again = r.reason === r.letter.reason ? 'for the same reason' : `as ${r.reason} (it was ${r.letter.reason})`;
          console.error(printable(`refused ${r.letter.id}: it would be dead-lettered again ${again}: ${r.message}`));
        }
        console.log(`${redriven.length} dead letter(s) redriven${refused.length ? `, ${refused.length} refused (fix the cause first, or --force to redrive them anyway)` : ''}`);
        return refused.length > 0 ? 1 : 0;
      } finally {
        kinesis.destroy();
      }
    } finally {
      dynamo.destroy();
    }
  },
};
