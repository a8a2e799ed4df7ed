// Holding a workspace's changes while a revoked member is disconnected (pure, time passed in).
// The router sees a membership delete in workspace order before any later change of that
// workspace: it registers a hold at the revocation's event id, and nothing of that workspace with
// a later id is released until the revoked users' connections are confirmed gone, or the hold's
// deadline passes (then it is reported as timed out). Other workspaces never wait. Within a
// workspace, items leave in the order they were offered: once one is held, everything after it
// queues behind it.

export interface HoldInfo {
  id: number;
  workspaceId: string;
  /** Items with a greater event id are held. */
  afterEventId: string;
  startedAt: number;
  deadline: number;
}

interface Queued<T> {
  eventId: string;
  item: T;
  released: boolean;
}

export interface Released<T> {
  items: T[];
  confirmed: HoldInfo[];
  timedOut: HoldInfo[];
}

/** A queued item, for waiting until it has been released (`released` turns true). */
export interface HeldTicket {
  readonly released: boolean;
}

export class RevocationHolds<T> {
  private nextId = 1;
  private readonly active = new Map<number, HoldInfo & { confirmed: boolean }>();
  private readonly queues = new Map<string, Queued<T>[]>();

  constructor(private readonly timeoutMs: number) {}

  /** Starts holding `workspaceId`'s items after `afterEventId`; returns the hold's id. */
  hold(workspaceId: string, afterEventId: string, now: number): number {
    const id = this.nextId++;
    this.active.set(id, { id, workspaceId, afterEventId, startedAt: now, deadline: now + this.timeoutMs, confirmed: false });
    return id;
  }

  /** The revoked users' connections are gone: the hold ends at the next `release`. */
  confirm(holdId: number): void {
    const h = this.active.get(holdId);
    if (h) h.confirmed = true;
  }

  /** Whether the item may go now; if not, it is queued (in order) and released by a later `release`. */
  offer(workspaceId: string, eventId: string, item: T): boolean {
    const queue = this.queues.get(workspaceId);
    if (!queue && !this.blocks(workspaceId, eventId)) return true;
    const entry = { eventId, item, released: false };
    if (queue) queue.push(entry);
    else this.queues.set(workspaceId, [entry]);
    return false;
  }

  /** Ends confirmed holds and those past their deadline, and returns the items now free, in order. */
  release(now: number): Released<T> {
    const confirmed: HoldInfo[] = [];
    const timedOut: HoldInfo[] = [];
    for (const [id, h] of this.active) {
      if (!h.confirmed && h.deadline > now) continue;
      this.active.delete(id);
      const { confirmed: wasConfirmed, ...info } = h;
      (wasConfirmed ? confirmed : timedOut).push(info);
    }
    const items: T[] = [];
    for (const [workspaceId, queue] of this.queues) {
      let n = 0;
      while (n < queue.length && !this.blocks(workspaceId, queue[n]!.eventId)) n += 1;
      for (const entry of queue.splice(0, n)) {
        entry.released = true;
        items.push(entry.item);
      }
      if (queue.length === 0) this.queues.delete(workspaceId);
    }
    return { items, confirmed, timedOut };
  }

  /** The earliest deadline of an unconfirmed hold (when `release` must run next at the latest). */
  nextDeadline(): number | undefined {
    let next: number | undefined;
    for (const h of this.active.values()) if (!h.confirmed && (next === undefined || h.deadline < next)) next = h.deadline;
    return next;
  }

  /** The last queued item of every held workspace: once each is released, everything queued now is. */
  lastQueued(): HeldTicket[] {
    return [...this.queues.values()].flatMap((q) => (q.length > 0 ? [q[q.length - 1]!] : []));
  }

  get queuedCount(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  private blocks(workspaceId: string, eventId: string): boolean {
    for (const h of this.active.values()) if (h.workspaceId === workspaceId && !h.confirmed && eventId > h.afterEventId) return true;
    return false;
  }
}
