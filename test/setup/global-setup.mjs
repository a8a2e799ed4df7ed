/* global setInterval, clearInterval */
// Jest global setup: ONE local stack per jest run, as a child process
// (`taskflow stack --ephemeral`), so its engines never share the test workers' event loops.
// Workers find it through TASKFLOW_STACK_FILE (they inherit this process's environment).
// The child stops itself if this process dies; global-teardown stops it otherwise.
// To reuse a stack across runs: `node bin/taskflow.js stack --ephemeral --state-file /tmp/s.json`,
// then `TASKFLOW_STACK_FILE=/tmp/s.json npx jest …`.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const START_TIMEOUT_MS = 60_000;
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function tail(file, lines = 30) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no output)';
  }
}

/** The stack a developer already runs (`taskflow stack --ephemeral --state-file F`), if alive. */
function runningStack(stateFile) {
  if (!stateFile || !existsSync(stateFile)) return false;
  try {
    process.kill(JSON.parse(readFileSync(stateFile, 'utf8')).pid, 0);
    return true;
  } catch {
    return false;
  }
}

export default async function globalSetup() {
  // TASKFLOW_STACK_FILE pointing at a live stack: reuse it (fast iteration; it is not stopped after).
  if (runningStack(process.env.TASKFLOW_STACK_FILE)) {
    console.log(`\nusing the running local stack of ${process.env.TASKFLOW_STACK_FILE}`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'taskflow-jest-'));
  const stateFile = join(dir, 'stack.json');
  const logFile = join(dir, 'stack.log');
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, [join(root, 'bin', 'taskflow.js'), 'stack', '--ephemeral', '--state-file', stateFile], {
    cwd: root,
    stdio: ['ignore', log, log],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  closeSync(log);
  globalThis.__TASKFLOW_STACK__ = { child, stateFile, logFile };

  const started = Date.now();
  try {
    await new Promise((resolve, reject) => {
      const onExit = (code, signal) =>
        reject(new Error(`local stack exited during start-up (${code ?? signal}); output (${logFile}):\n${tail(logFile)}`));
      child.once('exit', onExit);
      child.once('error', (err) => reject(new Error(`cannot start the local stack: ${err.message}`)));
      const poll = setInterval(() => {
        if (existsSync(stateFile)) {
          clearInterval(poll);
          child.off('exit', onExit);
          resolve();
        } else if (Date.now() - started > START_TIMEOUT_MS) {
          clearInterval(poll);
          child.off('exit', onExit);
          reject(new Error(`local stack not ready after ${START_TIMEOUT_MS / 1000} s; output (${logFile}):\n${tail(logFile)}`));
        }
      }, 50);
    });
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  process.env.TASKFLOW_STACK_FILE = stateFile;
  // Jest would otherwise wait for the child's handle; teardown stops it explicitly.
  child.unref();
}
