// `taskflow notifications redrive`: runs the service's dead letters through the pipeline once
// the cause is fixed (a new upcaster, a validator fix) — straight to the inbox, not back onto the
// stream (every other consumer would read them again). Safe at any time: the pipeline's steps are
// idempotent and a notification depends only on its event and on earlier watcher facts.
import { decodeEvent, type EventCheck, type StreamEvent } from '../lib/change-event.js';
import type { DeadLetter, DeadLetterStore } from '../lib/dlq.js';
import { notifyBatch, type PipelineDeps } from './pipeline.js';

export const NOTIFICATIONS_DLQ_SOURCE = 'notifications';

export interface NotificationRedriveOptions {
  store: DeadLetterStore;
  pipeline: PipelineDeps;
  validate: EventCheck;
  reason?: string;
  id?: string;
}

export interface NotificationRedriveResult {
  redriven: DeadLetter[];
  /** Still not a valid event: left in the store. */
  refused: { letter: DeadLetter; message: string }[];
}

export async function redriveNotificationDeadLetters(opts: NotificationRedriveOptions): Promise<NotificationRedriveResult> {
  const candidates = opts.id
    ? [await opts.store.get(opts.id)].filter((d): d is DeadLetter => d !== undefined && d.redrivenAt === undefined)
    : await opts.store.list({ source: NOTIFICATIONS_DLQ_SOURCE });
  const chosen = candidates.filter((d) => d.source === NOTIFICATIONS_DLQ_SOURCE && (opts.reason === undefined || d.reason === opts.reason));
  const events: StreamEvent[] = [];
  const redriven: DeadLetter[] = [];
  const refused: NotificationRedriveResult['refused'] = [];
  for (const d of chosen) {
    const decoded = decodeEvent(d.payload, opts.validate);
    if (decoded.ok) {
      events.push(decoded.event);
      redriven.push(d);
    } else refused.push({ letter: d, message: `${decoded.reason}: ${decoded.message}` });
  }
  // In commit order, as the stream would have had them.
  events.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (events.length > 0) await notifyBatch(events, opts.pipeline);
  // Marked only once done: a crash in between redrives them again, harmlessly.
  for (const d of redriven) await opts.store.markRedriven(d.id);
  return { redriven, refused };
}
