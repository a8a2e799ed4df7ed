// Driving the SDK subscriber processes (e2e-subscribers.ts) from a benchmark: shared by bench:e2e
// and bench:recovery.
import type { ChildProcess } from 'node:child_process';
import type { SubscriberCommand, SubscriberReport } from './e2e-subscribers.js';

export function send(child: ChildProcess, command: SubscriberCommand): void {
  child.send(command);
}

export function nextReport<T extends SubscriberReport['type']>(child: ChildProcess, type: T, timeoutMs: number): Promise<Extract<SubscriberReport, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`subscriber process ${child.pid}: no '${type}' within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (report: SubscriberReport) => {
      if (report.type === type) done(undefined, report as Extract<SubscriberReport, { type: T }>);
    };
    const onExit = (code: number | null) => done(new Error(`subscriber process ${child.pid} exited (${code}) while waiting for '${type}'`));
    const done = (err?: Error, report?: Extract<SubscriberReport, { type: T }>) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(report!);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

export function ask<T extends SubscriberReport['type']>(child: ChildProcess, command: SubscriberCommand, type: T): Promise<Extract<SubscriberReport, { type: T }>> {
  const answer = nextReport(child, type, 30_000);
  send(child, command);
  return answer;
}
