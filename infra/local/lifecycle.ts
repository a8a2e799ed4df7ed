// Lifecycle of the foreground commands (`taskflow stack`, `taskflow dev`): the state file that
// tools and tests poll, and the wait for a stop request.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { StackInfo } from '../../lib/stack-info.js';

/** Written atomically (rename), so a poller never reads half of it. */
export function writeStateFile(path: string, info: StackInfo): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(info, null, 2)}\n`);
  renameSync(tmp, path);
}

// Read when the command starts, not when it begins to wait: a parent that dies while the engines
// start would otherwise be missed, because by then ppid already names the process that adopted us.
const LAUNCHING_PARENT = process.ppid;

/**
 * Resolves with the reason on SIGINT/SIGTERM, or when this process is orphaned (its parent died
 * and it was re-parented): whoever started us is gone, so nobody else would ever stop us.
 * Only the first signal is handled; a second one gets Node's default (immediate exit), and the
 * bound children (pdeathsig) follow.
 */
export function untilStopRequested(parent = LAUNCHING_PARENT): Promise<string> {
  return new Promise((resolveStop) => {
    const done = (reason: string): void => {
      clearInterval(watch);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolveStop(reason);
    };
    const onInt = (): void => done('SIGINT');
    const onTerm = (): void => done('SIGTERM');
    const checkParent = (): void => {
      if (process.ppid !== parent) done(`parent process ${parent} exited`);
    };
    const watch = setInterval(checkParent, 500);
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
    checkParent();
  });
}
