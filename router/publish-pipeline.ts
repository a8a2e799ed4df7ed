// The ChangeSink the router hands sequenced changes to: skip projects nobody listens to, batch
// per project over the window, publish each project's messages in order, and let `flush` wait
// until everything handed over before the call has been published (the shard then checkpoints).
//
// Revocation: `revoke` holds the workspace's changes committed after the revocation (pure rules
// in revocation-hold.ts) while the revoker disconnects the users, up to `holdTimeoutMs`; other
// workspaces go on. Held changes enter the batcher when released, so they keep their order.
//
// A failed publish is retried in place, with backoff, until it succeeds or the pipeline closes:
// the shard goes on sequencing later batches meanwhile (their messages queue behind it per
// topic), so a failure must not be left for a re-run of its batch to repair.
import { type BackoffPolicy, sleep } from '../lib/backoff.js';
import { retry } from '../lib/retry.js';
import type { ProjectRef } from './changelog.js';
import { ProjectBatcher, type BatcherOptions } from './batcher.js';
import { projectTopic, type OutboundMessage } from './messages.js';
import { noopPublishMetrics, type PublishMetrics } from './metrics.js';
import type { Logger } from '../lib/logger.js';
import type { ConnectionRevoker } from './connection-revoker.js';
import type { Publisher } from '../lib/publishers.js';
import { RevocationHolds } from './revocation-hold.js';
import type { SequencedChange } from './sequencer.js';
import type { ChangeSink } from './shard-router.js';

export interface PublishPipelineOptions {
  batcher: BatcherOptions;
  publisher: Publisher;
  /** null: publish to every project (no subscription tracking). */
  hasSubscriber: ((topic: string) => boolean) | null;
  metrics?: PublishMetrics;
  now?: () => number;
  /** Between attempts of a failed publish (default 100 ms doubling to 5 s, full jitter). */
  retry?: BackoffPolicy;
  /** How long a graceful close lets pending publishes finish (default 5 s). */
  closeGraceMs?: number;
  /** Disconnects revoked users; without it `revoke` holds nothing (no way to name their connections). */
  revocation?: { revoker: ConnectionRevoker; holdTimeoutMs: number; logger?: Logger };
}

interface Held {
  project: ProjectRef;
  change: SequencedChange;
}

const PUBLISH_RETRY: BackoffPolicy = { baseMs: 100, maxMs: 5000 };

export class PublishPipeline implements ChangeSink {
  private readonly batcher: ProjectBatcher;
  private readonly now: () => number;
  private readonly metrics: PublishMetrics;
  private timer: NodeJS.Timeout | undefined;
  /** Last publish per topic: the next one waits for it, keeping a project's order. */
  private readonly tails = new Map<string, Promise<void>>();
  private failure: unknown;
  private readonly holds: RevocationHolds<Held>;
  private holdTimer: NodeJS.Timeout | undefined;
  /** One per hold still disconnecting: aborted when the hold times out or the pipeline closes. */
  private readonly disconnecting = new Map<number, AbortController>();
  /** Resolves at the next release of held changes (flush waits on it). */
  private releasedSignal = signal();
  private readonly closing = new AbortController();
  /** Rejects when the pipeline closes: nothing waits on a publish that will never complete. */
  private readonly closed = new Promise<never>((_, reject) => {
    this.closing.signal.addEventListener('abort', () => reject(new Error('the publish pipeline closed')), { once: true });
  });

  constructor(private readonly opts: PublishPipelineOptions) {
    this.closed.catch(() => {}); // only ever raced
    this.batcher = new ProjectBatcher(opts.batcher);
    this.now = opts.now ?? Date.now;
    this.metrics = opts.metrics ?? noopPublishMetrics;
    this.holds = new RevocationHolds(opts.revocation?.holdTimeoutMs ?? 0);
  }

  enqueue(project: ProjectRef, changes: readonly SequencedChange[]): void {
    if (changes.length === 0) return;
    if (this.opts.hasSubscriber && !this.opts.hasSubscriber(projectTopic(project))) {
      this.metrics.withoutSubscriber(changes.length);
      return;
    }
    const free = changes.filter((change) => this.holds.offer(project.workspaceId, change.event.id, { project, change }));
    if (free.length === 0) return;
    this.batcher.add(project, free, this.now());
    this.schedule();
  }

  revoke(workspaceId: string, afterEventId: string, userIds: readonly string[]): void {
    const revocation = this.opts.revocation;
    if (!revocation || userIds.length === 0 || this.closing.signal.aborted) return;
    const holdId = this.holds.hold(workspaceId, afterEventId, this.now());
    const abort = new AbortController();
    this.disconnecting.set(holdId, abort);
    revocation.revoker.disconnect(userIds, abort.signal).then(
      () => {
        this.disconnecting.delete(holdId);
        this.holds.confirm(holdId);
        this.releaseHeld();
      },
      (err: unknown) => {
        // Aborted by the deadline (reported there) or by close; the revoker retries everything else.
        if (!abort.signal.aborted) revocation.logger?.warn({ err, workspaceId }, 'disconnecting revoked users failed');
      },
    );
    this.scheduleHoldDeadline();
  }

  /** Resolves once everything enqueued before the call is published (later enqueues may ride along). */
  async flush(): Promise<void> {
    // Held changes enter the batcher when released; wait for the last one held now.
    const held = this.holds.lastQueued();
    while (held.some((t) => !t.released)) await Promise.race([this.releasedSignal.promise, this.closed]);
    // Everything pending now is due by the latest window end; after that it is in a topic's chain.
    const due = this.batcher.latestDueAt();
    if (due !== undefined) {
      const wait = due - this.now();
      if (wait > 0) await sleep(wait);
      // Take by `due`, not by the clock: a timer may fire a millisecond before Date.now() says
      // `due` has come, and then nothing would be taken and the flush would not wait for it.
      this.pump(Math.max(due, this.now()));
    }
    await Promise.race([Promise.all([...this.tails.values()]), this.closed]);
    if (this.failure !== undefined) throw this.failure;
  }

  /**
   * Stops publishing. `graceful` first gives what is pending up to `graceMs` to go out;
   * `abandon` (the lease is gone) drops it. Either way, retries stop and waiting flushes reject.
   */
  async close(mode: 'graceful' | 'abandon' = 'graceful', graceMs = this.opts.closeGraceMs ?? 5000): Promise<void> {
    clearTimeout(this.timer);
    clearTimeout(this.holdTimer);
    for (const abort of this.disconnecting.values()) abort.abort();
    this.disconnecting.clear();
    if (mode === 'graceful') {
      this.pump('all');
      const grace = new AbortController();
      await Promise.race([Promise.all([...this.tails.values()]), sleep(graceMs, grace.signal)]);
      grace.abort();
    }
    this.closing.abort();
  }

  /** Moves released changes into the batcher, in order, and accounts for the holds that ended. */
  private releaseHeld(now = this.now()): void {
    if (this.closing.signal.aborted) return;
    const { items, confirmed, timedOut } = this.holds.release(now);
    for (const h of confirmed) this.metrics.revocationHold((now - h.startedAt) / 1000, 'confirmed');
    for (const h of timedOut) {
      this.metrics.revocationHold((now - h.startedAt) / 1000, 'timed_out');
      this.disconnecting.get(h.id)?.abort();
      this.disconnecting.delete(h.id);
      this.opts.revocation?.logger?.error({ workspaceId: h.workspaceId, afterEventId: h.afterEventId, holdMs: now - h.startedAt }, 'revocation hold timed out: publishing without confirmed disconnect (runbooks/revocation-hold-timeout.md)');
    }
    // Consecutive changes of one project go to the batcher together (a project's order is the
    // order they were held in).
    let run: Held[] = [];
    const flushRun = () => {
      const first = run[0];
      if (first) this.batcher.add(first.project, run.map((h) => h.change), now);
      run = [];
    };
    for (const item of items) {
      const first = run[0];
      if (first && projectTopic(first.project) !== projectTopic(item.project)) flushRun();
      run.push(item);
    }
    flushRun();
    if (items.length > 0) this.schedule();
    this.scheduleHoldDeadline();
    const released = this.releasedSignal;
    this.releasedSignal = signal();
    released.resolve();
  }

  private scheduleHoldDeadline(): void {
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    const deadline = this.holds.nextDeadline();
    if (deadline === undefined) return;
    this.holdTimer = setTimeout(() => {
      this.holdTimer = undefined;
      // Released by the deadline itself, not by Date.now() after the timer (it may fire early).
      this.releaseHeld(Math.max(deadline, this.now()));
    }, Math.max(0, deadline - this.now()));
  }

  private schedule(): void {
    const due = this.batcher.nextDueAt();
    if (due === undefined || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
      this.schedule();
    }, Math.max(0, due - this.now()));
  }

  /** Publishes what is due at `upTo` (default: now), or everything. */
  private pump(upTo: number | 'all' = this.now()): void {
    for (const message of upTo === 'all' ? this.batcher.takeAll() : this.batcher.takeDue(upTo)) this.send(message);
  }

  private send(message: OutboundMessage): void {
    const previous = this.tails.get(message.topic) ?? Promise.resolve();
    const sending = previous.then(async () => {
      const started = performance.now();
      await this.publishUntilDone(message);
      const at = this.now();
      this.metrics.published(1, message.count, (performance.now() - started) / 1000, message.commitTimes.map((t) => (at - t) / 1000));
    });
    const settled = sending.catch((err: unknown) => {
      this.failure ??= err;
    });
    this.tails.set(message.topic, settled);
    void settled.finally(() => {
      if (this.tails.get(message.topic) === settled) this.tails.delete(message.topic);
    });
  }

  private async publishUntilDone(message: OutboundMessage): Promise<void> {
    await retry(
      async () => {
        if (this.closing.signal.aborted) throw new Error(`publishing to ${message.topic} abandoned: the pipeline closed`);
        await this.opts.publisher.publish(message.topic, message.payload);
      },
      { policy: this.opts.retry ?? PUBLISH_RETRY, signal: this.closing.signal, shouldRetry: () => true, onRetry: () => this.metrics.publishRetried() },
    );
  }
}

function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
