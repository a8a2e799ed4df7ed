// `taskflow notifications redrive`: runs the service's dead letters through the pipeline once
// the cause is fixed (a new upcaster, a validator fix) — straight to the inbox, not back onto the
// stream (every other consumer would read them again). Safe at any time: the pipeline's steps are
// idempotent and a notification depends only on its event and on earlier watcher facts. A letter is
// prepared as the live path prepares an event (shard-processor.ts): its comment body decrypted
// for @mentions and an erased subject's data blanked.
import type { EventCheck } from '@taskflow/stream/events';
import { type EventPreparation, prepareEvents, redriveConsumerDeadLetters, type RedriveResult } from '@taskflow/stream';
import type { DeadLetterStore } from '../lib/dlq.js';
import { notifyBatch, type PipelineDeps } from './pipeline.js';

export const NOTIFICATIONS_DLQ_SOURCE = 'notifications';

export interface NotificationRedriveOptions {
  store: DeadLetterStore;
  pipeline: PipelineDeps;
  validate: EventCheck;
  reason?: string;
  id?: string;
  /** Decrypt and erased-subjects check, the service's own (lib/consumer-reading.ts); absent: applied as stored. */
  prepare?: EventPreparation;
}

export function redriveNotificationDeadLetters(opts: NotificationRedriveOptions): Promise<RedriveResult> {
  const { pipeline, prepare = {}, ...rest } = opts;
  return redriveConsumerDeadLetters({ ...rest, source: NOTIFICATIONS_DLQ_SOURCE, apply: async (events) => void (await notifyBatch(await prepareEvents(events, prepare), pipeline)) });
}
