// The ChangeSink the router hands sequenced changes to: skip projects nobody listens to, batch
// per project over the window, publish each project's messages in order, and let `flush` wait
// until everything handed over so far has been published (the shard then checkpoints).
import type { ProjectRef } from './changelog.js';
import { ProjectBatcher, type BatcherOptions } from './batcher.js';
import { projectTopic, type OutboundMessage } from './messages.js';
import { noopPublishMetrics, type PublishMetrics } from './metrics.js';
import type { Publisher } from './publishers.js';
import type { SequencedChange } from './sequencer.js';
import type { ChangeSink } from './shard-router.js';

export interface PublishPipelineOptions {
  batcher: BatcherOptions;
  publisher: Publisher;
  /** null: publish to every project (no subscription tracking). */
  hasSubscriber: ((topic: string) => boolean) | null;
  metrics?: PublishMetrics;
  now?: () => number;
}

export class PublishPipeline implements ChangeSink {
  private readonly batcher: ProjectBatcher;
  private readonly now: () => number;
  private readonly metrics: PublishMetrics;
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  /** Last publish per topic: the next one waits for it, keeping a project's order. */
  private readonly tails = new Map<string, Promise<void>>();
  private failure: unknown;

  constructor(private readonly opts: PublishPipelineOptions) {
    this.batcher = new ProjectBatcher(opts.batcher);
    this.now = opts.now ?? Date.now;
    this.metrics = opts.metrics ?? noopPublishMetrics;
  }

  enqueue(project: ProjectRef, changes: readonly SequencedChange[]): void {
    if (changes.length === 0) return;
    if (this.opts.hasSubscriber && !this.opts.hasSubscriber(projectTopic(project))) {
      this.metrics.withoutSubscriber(changes.length);
      return;
    }
    this.batcher.add(project, changes, this.now());
    this.schedule();
  }

  async flush(): Promise<void> {
    for (;;) {
      const due = this.batcher.nextDueAt();
      if (due === undefined) break;
      const wait = due - this.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      this.pump();
    }
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    if (this.failure !== undefined) {
      const err = this.failure;
      this.failure = undefined;
      throw err;
    }
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    await this.flush();
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

  private pump(): void {
    for (const message of this.batcher.takeDue(this.now())) this.send(message);
  }

  private send(message: OutboundMessage): void {
    const previous = this.tails.get(message.topic) ?? Promise.resolve();
    const sending = previous.then(async () => {
      const started = performance.now();
      await this.opts.publisher.publish(message.topic, message.payload);
      const at = this.now();
      this.metrics.published(1, message.count, (performance.now() - started) / 1000, message.commitTimes.map((t) => (at - t) / 1000));
    });
    const settled = sending.catch((err: unknown) => {
      this.failure ??= err;
    });
    this.tails.set(message.topic, settled);
    this.inFlight.add(settled);
    void settled.finally(() => {
      this.inFlight.delete(settled);
      if (this.tails.get(message.topic) === settled) this.tails.delete(message.topic);
    });
  }
}
