// At most `limit` requests of one client in flight; the others wait their turn in arrival order.
// A client with 50 subscriptions that (re)connects asks the replay API for every one of them
// after its SUBACKs; the API admits a few requests per user at a time (REPLAY_CONCURRENCY_PER_USER,
// default 4, 429 beyond): sending all at once turns most of them into 429s and retries.
export class RequestGate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`a request gate needs a limit >= 1, got ${limit}`);
  }

  get inFlight(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Runs `request` once fewer than `limit` others are in flight (its own timeout should start then). */
  async run<T>(request: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active += 1;
    try {
      return await request();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter: `active` stays counted for it.
      if (next) next();
      else this.active -= 1;
    }
  }
}
