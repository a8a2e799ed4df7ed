// Stops the stack started by global-setup: SIGTERM (clean stop, ephemeral data deleted), then
// SIGKILL if it has not exited in time (its Postgres dies with it: bound by pdeathsig).
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';

const STOP_TIMEOUT_MS = 20_000;

export default async function globalTeardown() {
  const stack = globalThis.__TASKFLOW_STACK__;
  if (!stack) return;
  globalThis.__TASKFLOW_STACK__ = undefined;
  const { child, stateFile } = stack;
  if (child.exitCode === null && child.signalCode === null) {
    child.ref();
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      console.error(`local stack did not stop within ${STOP_TIMEOUT_MS / 1000} s; killing it`);
      child.kill('SIGKILL');
    }, STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }
  rmSync(dirname(stateFile), { recursive: true, force: true });
}
