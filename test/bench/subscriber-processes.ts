// Driving the SDK subscriber processes (e2e-subscribers.ts) from a benchmark: shared by bench:e2e,
// bench:clients, bench:recovery and bench:routers.
import type { ChildProcess } from 'node:child_process';
import type { HistoryEvent } from '../support/history.js';
import { sleep } from '../support/wait.js';
import type { Assignment, SubscriberCommand, SubscriberReport } from './e2e-subscribers.js';
import { forkTsxProcess } from './fork.js';

/** One SDK subscriber process (e2e-subscribers.ts), taking structured commands. */
export function forkSubscriberProcess(): ChildProcess {
  return forkTsxProcess(new URL('./e2e-subscribers.ts', import.meta.url), { serialization: 'advanced' });
}

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

/**
 * Waits until every subscription has received as many changes as the database history holds for
 * its project, or `timeoutMs` passed (said, not thrown: the oracle then counts what is missing),
 * and one second more, in which a late duplicate would show.
 */
export async function awaitSubscriptionsCaughtUp(child: ChildProcess, truthByProject: ReadonlyMap<string, readonly HistoryEvent[]>, assignments: readonly Assignment[], label: string, timeoutMs: number): Promise<void> {
  const expected = assignments.map((a) => truthByProject.get(a.projectId)?.length ?? 0);
  const started = Date.now();
  for (;;) {
    const progress = await ask(child, { type: 'progress' }, 'progress');
    if (progress.counts.every((count, i) => count >= expected[i]!)) break;
    if (Date.now() - started > timeoutMs) {
      console.log(`${label}: subscriptions still short ${timeoutMs / 1000} s after the workload stopped`);
      break;
    }
    await sleep(250);
  }
  await sleep(1000);
}
