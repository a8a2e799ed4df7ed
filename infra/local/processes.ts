// Child processes that cannot outlive the process that started them, and port helpers.
// A SIGKILLed `taskflow stack` (a crashed jest run) must not leave Postgres or services behind:
// on Linux every child is started through util-linux `setpriv --pdeathsig`, so the kernel sends
// it a signal the moment its parent dies, however the parent died.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createServer, type Server } from 'node:net';

let setprivAvailable: boolean | undefined;

function hasSetpriv(): boolean {
  if (setprivAvailable === undefined) {
    setprivAvailable = process.platform === 'linux' && spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0;
  }
  return setprivAvailable;
}

export interface BoundSpawnOptions extends SpawnOptions {
  /** Signal the child gets when this process dies (SIGINT is a fast shutdown for Postgres). */
  deathSignal?: 'INT' | 'TERM' | 'KILL';
  /** OS user to run as (needs root; Postgres refuses to run as root). */
  runAs?: string;
}

export function spawnBound(command: string, args: readonly string[], options: BoundSpawnOptions = {}): ChildProcess {
  const { deathSignal = 'TERM', runAs, ...spawnOptions } = options;
  if (!hasSetpriv()) {
    if (runAs) throw new Error(`running ${command} as "${runAs}" needs util-linux setpriv, which is not installed`);
    return spawn(command, args, spawnOptions);
  }
  // setpriv changes ids first and sets the death signal last: a credential change would clear it.
  const identity = runAs ? ['--reuid', runAs, '--regid', runAs, '--init-groups'] : [];
  return spawn('setpriv', [...identity, '--pdeathsig', deathSignal, command, ...args], spawnOptions);
}

/** Resolves when the child has exited (immediately if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Sends `signal`, then SIGKILL if the child is still alive after `graceMs`. */
export async function terminate(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  const done = exited(child);
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    done.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), graceMs);
    }),
  ]);
  clearTimeout(timer);
  if (timedOut) {
    child.kill('SIGKILL');
    await done;
  }
}

export function listen(server: Server | import('node:http').Server, port: number, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}

/** A port that was free a moment ago, for engines that need a concrete port (Postgres). */
export async function freePort(): Promise<number> {
  const server = createServer();
  const port = await listen(server, 0);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function assertPortFree(port: number, what: string): Promise<void> {
  const server = createServer();
  try {
    await listen(server, port);
  } catch (err) {
    throw new Error(`port ${port} for ${what} is in use (${(err as Error).message}); is another taskflow stack running?`, { cause: err });
  }
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
