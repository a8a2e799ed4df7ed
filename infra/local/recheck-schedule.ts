// When a broker node reads a connection's memberships again (pure, time passed in): every
// connection once per interval, each at its own phase drawn when it connects. A full scan of
// every connection at once would make a node's reads come in bursts (and a reconnect storm's
// connections would all fall due together); phases spread them evenly over the interval, so a
// node makes connections / interval reads per second and no more.
//
// The bound, for `due` called at least every `tickMs` (tickMs <= intervalMs): a connection is
// returned within intervalMs + tickMs of being added and of its previous return, and, after its
// first return, not again within intervalMs - tickMs unless its check failed and it was retried
// (recheck-schedule.test.ts).

export class RecheckSchedule<K> {
  private readonly next = new Map<K, number>();

  constructor(
    private readonly intervalMs: number,
    private readonly random: () => number = Math.random,
  ) {
    if (!(intervalMs > 0)) throw new Error(`the re-check interval must be positive, got ${intervalMs}`);
  }

  /** Starts checking `key`: first due within one interval from `now`, at a random phase. */
  add(key: K, now: number): void {
    if (!this.next.has(key)) this.next.set(key, now + Math.floor(this.random() * this.intervalMs));
  }

  delete(key: K): void {
    this.next.delete(key);
  }

  /** Due again at the next `due` (its check could not be made: a failed read must not wait an interval). */
  retry(key: K, now: number): void {
    if (this.next.has(key)) this.next.set(key, now);
  }

  /**
   * The keys due at `now`; each is due again one interval after its slot. One that fell more than
   * an interval behind (a stalled node) is due an interval from now instead: it keeps the bound
   * and does not come back in a burst with the others that fell behind.
   */
  due(now: number): K[] {
    const out: K[] = [];
    for (const [key, at] of this.next) {
      if (at > now) continue;
      out.push(key);
      this.next.set(key, at + this.intervalMs > now ? at + this.intervalMs : now + this.intervalMs);
    }
    return out;
  }

  get size(): number {
    return this.next.size;
  }
}
