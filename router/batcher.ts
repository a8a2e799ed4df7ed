// Batching per project over a short window (time passed in, so it is a pure state machine):
// the first change of a project opens its window; when the window has passed the project's
// pending changes become messages. Window 0 means every add is due at once.
//
// The window opens at the commit time of that first change, not when the router got it: a
// change already waited in Kinesis and in the shard's read spacing (≥ 200 ms under load), which
// batched it with its neighbours as much as the window would; holding it another full window
// only added latency. A commit time ahead of the router's clock counts as now.
import { projectKey, type ProjectRef } from './changelog.js';
import { encodeMessages, type MessageOptions, type OutboundMessage } from './messages.js';
import type { SequencedChange } from './sequencer.js';

export interface BatcherOptions extends MessageOptions {
  windowMs: number;
}

interface Pending {
  project: ProjectRef;
  dueAt: number;
  /** By seq: the change and its commit time (ms; NaN when it does not parse), parsed once for the window and for the messages' commit times. */
  changes: Map<number, { change: SequencedChange; committedAt: number }>;
}

export class ProjectBatcher {
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly opts: BatcherOptions) {}

  add(project: ProjectRef, changes: readonly SequencedChange[], now: number): void {
    if (changes.length === 0) return;
    const key = projectKey(project);
    const open = this.pending.get(key);
    const p = open ?? { project, dueAt: 0, changes: new Map() };
    let oldest = Infinity;
    for (const change of changes) {
      const committedAt = Date.parse(change.event.envelope.time);
      if (committedAt < oldest) oldest = committedAt;
      // Keyed by seq: a change re-published after a crash replaces itself instead of repeating.
      p.changes.set(change.seq, { change, committedAt });
    }
    if (!open) {
      // A commit time ahead of our clock (or none parsing: Infinity) counts as now.
      p.dueAt = Math.min(now, oldest) + this.opts.windowMs;
      this.pending.set(key, p);
    }
  }

  /** Messages of every project whose window has passed, each project's in seq order. */
  takeDue(now: number): OutboundMessage[] {
    const out: OutboundMessage[] = [];
    for (const [key, p] of this.pending) {
      if (p.dueAt > now) continue;
      this.pending.delete(key);
      out.push(...this.encode(p));
    }
    return out;
  }

  takeAll(): OutboundMessage[] {
    const out = [...this.pending.values()].flatMap((p) => this.encode(p));
    this.pending.clear();
    return out;
  }

  nextDueAt(): number | undefined {
    let next: number | undefined;
    for (const p of this.pending.values()) if (next === undefined || p.dueAt < next) next = p.dueAt;
    return next;
  }

  /** When the last of the projects pending now becomes due. */
  latestDueAt(): number | undefined {
    let latest: number | undefined;
    for (const p of this.pending.values()) if (latest === undefined || p.dueAt > latest) latest = p.dueAt;
    return latest;
  }

  get size(): number {
    return this.pending.size;
  }

  private encode(p: Pending): OutboundMessage[] {
    const pending = [...p.changes.values()].sort((a, b) => a.change.seq - b.change.seq);
    return encodeMessages(
      p.project,
      pending.map((c) => c.change),
      this.opts,
      pending.map((c) => c.committedAt),
    );
  }
}
