// `taskflow dlq`: inspect and redrive the router's dead letters.
//   taskflow dlq list [--reason R] [--all]      entries (--all: also those already redriven, and capture's)
//   taskflow dlq show ID                        one entry with its original bytes
//   taskflow dlq redrive [--reason R] [--id ID] put router entries back on the change stream
import { parseArgs } from 'node:util';
import { createDynamoClient, createKinesisClient, loadAwsConfig } from '../../lib/aws.js';
import { str } from '../../lib/config.js';
import { type DeadLetter, DynamoDeadLetterStore } from '../../lib/dlq.js';
import { readStackInfo, stackEnv, tableEnvVar } from '../../lib/stack-info.js';
import { redriveDeadLetters } from '../../router/redrive.js';
import type { Command } from '../command.js';

const usage = `usage:
  taskflow dlq list [--reason R] [--all]
  taskflow dlq show ID
  taskflow dlq redrive [--reason R] [--id ID]
Finds DynamoDB and Kinesis through the environment (DYNAMODB_ENDPOINT, DYNAMODB_TABLE_DLQ, KINESIS_ENDPOINT,
CHANGE_STREAM_NAME) or, when unset, the running local stack (.taskflow/stack.json).`;

function environment(): Record<string, string | undefined> {
  if (process.env.DYNAMODB_ENDPOINT || process.env.AWS_EXECUTION_ENV) return process.env;
  try {
    return { ...stackEnv(readStackInfo()), ...process.env };
  } catch {
    return process.env;
  }
}

function summary(d: DeadLetter): string {
  const origin = Object.entries(d.origin).map(([k, v]) => `${k}=${v}`).join(' ');
  return `${d.id}  ${d.source.padEnd(7)} ${d.reason.padEnd(17)} ${d.payload.length} B  ${origin}${d.redrivenAt ? `  redriven ${d.redrivenAt}` : ''}\n    ${d.message}`;
}

export const command: Command = {
  summary: 'dead letters: list | show ID | redrive [--reason R]',
  subcommands: ['list', 'show', 'redrive'],
  async run(argv) {
    const [sub, ...rest] = argv;
    const { values, positionals } = parseArgs({ args: rest, options: { reason: { type: 'string' }, id: { type: 'string' }, all: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } }, allowPositionals: true });
    if (sub === '--help' || sub === 'help' || values.help) {
      console.log(usage);
      return 0;
    }
    const env = environment();
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
      if (sub === 'show' && positionals[0]) {
        const d = await store.get(positionals[0]);
        if (!d) {
          console.error(`no dead letter ${positionals[0]}`);
          return 1;
        }
        console.log(summary(d));
        let text: string;
        try {
          text = new TextDecoder('utf-8', { fatal: true }).decode(d.payload);
        } catch {
          text = `(not UTF-8, base64) ${Buffer.from(d.payload).toString('base64')}`;
        }
        console.log(text);
        return 0;
      }
      if (sub === 'redrive') {
        const kinesis = createKinesisClient(aws);
        try {
          const done = await redriveDeadLetters({ store, kinesis, streamName: str(env, 'CHANGE_STREAM_NAME'), ...(values.reason ? { reason: values.reason } : {}), ...(values.id ? { id: values.id } : {}) });
          for (const d of done) console.log(`redriven ${d.id} (${d.reason})`);
          console.log(`${done.length} dead letter(s) redriven`);
        } finally {
          kinesis.destroy();
        }
        return 0;
      }
      console.error(usage);
      return 2;
    } finally {
      dynamo.destroy();
    }
  },
};
