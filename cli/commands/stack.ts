// `taskflow stack [--ephemeral] [--state-file PATH] [--data-dir DIR] [--shards N]`: the engines
// only, in the foreground until SIGINT/SIGTERM or until the parent process dies (the jest
// global setup spawns it), then a clean stop. The state file (StackInfo JSON) appears once every
// engine is ready, written atomically so a poller never reads half of it.
import { renameSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_STACK_FILE, type StackInfo } from '../../lib/stack-info.js';
import { describeStack, startStack, type RunningStack } from '../../infra/local/stack.js';
import type { Command } from '../main.js';

export function writeStateFile(path: string, info: StackInfo): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(info, null, 2)}\n`);
  renameSync(tmp, path);
}

/**
 * Resolves on SIGINT/SIGTERM or when this process is orphaned (its parent died and it was
 * re-parented): whoever started us is gone, so nobody will ever stop us.
 */
export function untilStopRequested(): Promise<string> {
  const parent = process.ppid;
  return new Promise((resolveStop) => {
    const done = (reason: string): void => {
      clearInterval(watch);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolveStop(reason);
    };
    const onInt = (): void => done('SIGINT');
    const onTerm = (): void => done('SIGTERM');
    const watch = setInterval(() => {
      if (process.ppid !== parent) done(`parent process ${parent} exited`);
    }, 500);
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
  });
}

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
      },
    });
    const stateFile = resolve(values['state-file']);
    if (!values.ephemeral && !values['data-dir']) {
      throw new Error('taskflow stack needs --ephemeral or --data-dir DIR (taskflow dev picks the persistent data directory)');
    }
    const started = Date.now();
    const stack: RunningStack = await startStack({
      ephemeral: values.ephemeral,
      ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}),
      ...(values.shards ? { shardCount: Number(values.shards) } : {}),
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
