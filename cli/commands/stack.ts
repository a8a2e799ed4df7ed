// `taskflow stack [--ephemeral] [--state-file PATH] [--data-dir DIR] [--shards N]`: the engines
// only, in the foreground until SIGINT/SIGTERM or until the parent process dies (the jest
// global setup spawns it), then a clean stop. The state file (StackInfo JSON) appears once every
// engine is ready, written atomically so a poller never reads half of it.
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { int } from '../../lib/config.js';
import { DEFAULT_STACK_FILE } from '../../lib/stack-info.js';
import { untilStopRequested, writeStateFile } from '../../infra/local/lifecycle.js';
import { DEFAULT_SHARD_COUNT, describeStack, startStack, type RunningStack } from '../../infra/local/stack.js';
import type { Command } from '../command.js';

const USAGE = `usage: taskflow stack (--ephemeral | --data-dir DIR) [--state-file PATH] [--shards N]
  Runs the local engines only (Postgres, Kinesis, DynamoDB, MQTT, S3 folder) until SIGINT/SIGTERM
  or until its parent process exits; writes their addresses to the state file (default ${DEFAULT_STACK_FILE}).
  --ephemeral   in-memory engines on free ports, everything deleted on stop (tests)`;

export const command: Command = {
  summary: 'run the local engines only (Postgres, Kinesis, DynamoDB, MQTT) until stopped',
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        ephemeral: { type: 'boolean', default: false },
        'state-file': { type: 'string', default: DEFAULT_STACK_FILE },
        'data-dir': { type: 'string' },
        shards: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const stateFile = resolve(values['state-file']);
    if (!values.ephemeral && !values['data-dir']) {
      throw new Error('taskflow stack needs --ephemeral or --data-dir DIR (taskflow dev picks the persistent data directory)');
    }
    const started = Date.now();
    console.log(`taskflow stack starting (pid ${process.pid})`);
    const stack: RunningStack = await startStack({
      ephemeral: values.ephemeral,
      ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}),
      ...(values.shards ? { shardCount: int({ '--shards': values.shards }, '--shards', DEFAULT_SHARD_COUNT, { min: 1, max: 64 }) } : {}),
    });
    writeStateFile(stateFile, stack.info);
    console.log(`taskflow stack ready in ${((Date.now() - started) / 1000).toFixed(1)} s (pid ${process.pid}, state ${stateFile})`);
    for (const line of describeStack(stack.info)) console.log(`  ${line}`);

    const reason = await untilStopRequested();
    console.log(`taskflow stack stopping (${reason})`);
    rmSync(stateFile, { force: true });
    await stack.stop();
    console.log('taskflow stack stopped');
    return 0;
  },
};
