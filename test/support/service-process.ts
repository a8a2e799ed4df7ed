// A service (`taskflow broker`, `taskflow capture`, `taskflow router`, `taskflow audit`, `taskflow notifications`, `taskflow search`, `taskflow analytics archive|load`) as its own process, the way it runs in
// production (one pod each): started from its environment, ready once its log has said the given
// messages, stopped with SIGTERM. Its warnings and errors go to stderr; the rest of its log is read
// for readiness and addresses only.
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ServiceProcess {
  child: ChildProcess;
  /** The log entry of each awaited message, by message. */
  entries: Record<string, Record<string, unknown>>;
  stop(): Promise<void>;
}

export interface ServiceProcessOptions {
  /** Node arguments, e.g. `--cpu-prof --cpu-prof-dir=DIR` to profile the service. */
  nodeArgs?: readonly string[];
  timeoutMs?: number;
  /** LOG_LEVEL of the service (default info). */
  logLevel?: string;
  /** Every line the service writes to stdout (its whole log), e.g. to scan it. */
  onLine?: (line: string) => void;
  /** Another checkout of the repository to run the service from (a bench's before/after comparison). */
  root?: string;
}

export async function startServiceProcess(command: 'broker' | 'capture' | 'router' | 'audit' | 'gdpr' | 'notifications' | 'search' | readonly ['analytics', 'archive' | 'load'], env: Record<string, string>, awaited: readonly string[], options: ServiceProcessOptions = {}): Promise<ServiceProcess> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const args = typeof command === 'string' ? [command] : [...command];
  const name = args.join(' ');
  const from = options.root ?? root;
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), join(from, 'bin', 'taskflow.js'), ...args], {
    cwd: from,
    env: { ...process.env, ...env, NODE_OPTIONS: '', LOG_LEVEL: options.logLevel ?? 'info' },
    stdio: ['ignore', 'pipe', options.onLine ? 'pipe' : 'inherit'],
  });
  // Scanned too (a crash's stack, console output), and still shown.
  child.stderr?.on('data', (chunk: Buffer) => {
    process.stderr.write(chunk);
    for (const line of chunk.toString().split('\n')) if (line) options.onLine?.(line);
  });
  const entries: Record<string, Record<string, unknown>> = {};
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} not ready after ${timeoutMs} ms (waiting for ${awaited.filter((m) => !entries[m]).join(', ')})`)), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready`));
    });
    let buffer = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        options.onLine?.(line);
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        if (typeof entry.level === 'number' && entry.level >= 40) process.stderr.write(`${name}: ${line.slice(0, 500)}\n`);
        if (typeof entry.msg === 'string' && awaited.includes(entry.msg)) entries[entry.msg] ??= entry;
        if (awaited.every((m) => entries[m])) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
  }).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  return {
    child,
    entries,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
