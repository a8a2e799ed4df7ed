// One batch of decoded events through the notifications service, behind ports so that the order
// of its durable steps — the part that makes it exactly-once — is testable without engines
// (pipeline.property.test.ts crashes it between any two writes):
//   1. the membership projection takes the batch's membership events (delivery reads it);
//   2. the inbox stores the batch's notifications, each once (an existing one is left as it is,
//      read or not);
//   3. the watcher store takes the batch's watcher facts (merged by earliest `since`);
//   4. the notifications go out live to those who may still read their task;
// and only then the caller checkpoints. A crash anywhere re-reads the batch: steps 1-3 are
// idempotent and the plan is the same (rules.ts), so nothing is lost or doubled in the inbox; a
// live message may go out twice, which the SDK drops by id.
import type { StreamEvent } from '@taskflow/stream/events';
import { commentedTask, type Notification, planBatch, type Watch, type Watchers } from './rules.js';

export interface Inbox {
  /** Stores each notification unless the user's inbox already holds its id. */
  add(notifications: readonly Notification[]): Promise<void>;
}

export interface WatcherStore {
  watchers(taskIds: readonly string[]): Promise<Map<string, Watchers>>;
  /** Merges facts: a user's `since` for a task only ever moves earlier. */
  record(watches: readonly Watch[]): Promise<void>;
}

export interface MembershipSink {
  apply(events: readonly StreamEvent[]): Promise<void>;
}

export interface Delivery {
  /** Publishes to each recipient's topic; returns how many went out (the rest: no longer readable). */
  deliver(notifications: readonly Notification[]): Promise<number>;
}

export interface PipelineDeps {
  inbox: Inbox;
  watchers: WatcherStore;
  memberships: MembershipSink;
  delivery: Delivery;
}

export interface BatchOutcome {
  notifications: Notification[];
  delivered: number;
}

export async function notifyBatch(events: readonly StreamEvent[], deps: PipelineDeps): Promise<BatchOutcome> {
  await deps.memberships.apply(events);
  const tasks = [...new Set(events.map(commentedTask).filter((t): t is string => t !== undefined))];
  const stored = tasks.length > 0 ? await deps.watchers.watchers(tasks) : new Map<string, Watchers>();
  const plan = planBatch(events, stored);
  if (plan.notifications.length > 0) await deps.inbox.add(plan.notifications);
  if (plan.watches.length > 0) await deps.watchers.record(plan.watches);
  const delivered = plan.notifications.length > 0 ? await deps.delivery.deliver(plan.notifications) : 0;
  return { notifications: plan.notifications, delivered };
}
