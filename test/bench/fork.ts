// How a bench forks a child process (a TypeScript module of its own): every bench that forks
// goes through forkTsxProcess, so the children run alike.
import { fork, type ChildProcess, type ForkOptions } from 'node:child_process';

/**
 * Forks `script` (a .ts module, e.g. `new URL('./e2e-subscribers.ts', import.meta.url)`) on tsx,
 * writing to the bench's own stdout and stderr. The bench's execArgv is not passed on, so a bench
 * run under `node --cpu-prof` profiles itself, not its children. `serialization` is the IPC
 * channel's, the one the child's messages were written for.
 */
export function forkTsxProcess(script: URL, options: { serialization: NonNullable<ForkOptions['serialization']> }): ChildProcess {
  return fork(script, { execArgv: ['--import', 'tsx'], serialization: options.serialization, stdio: 'inherit' });
}
