// Per-user limits of the browser-facing APIs (replay, search, notifications): a token bucket (rate, burst) and a cap on requests in flight,
// so one abusive or buggy client cannot take the changelog store's capacity from everyone else.
// A request count alone does not bound what a user costs when answers differ in size (a full
// replay returns up to REPLAY_MAX_LIMIT changes, a gap fill one): with `served`, what each answer
// served (the replay API: changes returned) is charged to a second bucket after the read, which
// may go into debt; a user in debt is refused until the debt is paid back at the bucket's rate.
// So over any window of t seconds a user is served at most
//   served.burst + served.perSec × t + maxConcurrent × (most one answer serves)
// (requests admitted while the bucket was not in debt may still be in flight).
// Time is passed in; at most `maxUsers` idle users are remembered (memory stays bounded — a
// forgotten user starts again with full buckets, which the bursts bound).
import { charge, createBucket, refill, take, type TokenBucket } from '../lib/rate-limit.js';

export interface UserLimits {
  ratePerSec: number;
  burst: number;
  maxConcurrent: number;
  maxUsers: number;
  /** Units answers serve per second and at once (charged by `release(served)`); without it, only requests count. */
  served?: { perSec: number; burst: number };
}

export type Admission =
  | { ok: true; /** Ends the request; `served` (≥ 0) is charged to the user's served budget. */ release(served?: number): void }
  | { ok: false; reason: 'rate' | 'concurrency' | 'served'; retryAfterMs: number };

interface User {
  bucket: TokenBucket;
  served: TokenBucket | undefined;
  active: number;
}

/** A debt smaller than this is the float rounding of refills (0.1 + … − 300), not a debt. */
const ROUNDING = 1e-6;

export class PerUserLimiter {
  private readonly users = new Map<string, User>();

  constructor(
    private readonly limits: UserLimits,
    private readonly now: () => number = Date.now,
  ) {}

  admit(userId: string): Admission {
    const t = this.now();
    let user = this.users.get(userId);
    if (!user) {
      this.forgetIdle();
      const served = this.limits.served;
      user = { bucket: createBucket(this.limits.ratePerSec, this.limits.burst, t), served: served && createBucket(served.perSec, served.burst, t), active: 0 };
      this.users.set(userId, user);
    }
    if (user.active >= this.limits.maxConcurrent) return { ok: false, reason: 'concurrency', retryAfterMs: 1000 };
    if (user.served) {
      refill(user.served, t);
      if (user.served.tokens < -ROUNDING) return { ok: false, reason: 'served', retryAfterMs: Math.ceil((-user.served.tokens * 1000) / user.served.ratePerSec) };
    }
    const token = take(user.bucket, t);
    if (!token.ok) return { ok: false, reason: 'rate', retryAfterMs: token.waitMs };
    user.active += 1;
    const held = user;
    let released = false;
    return {
      ok: true,
      release: (served = 0) => {
        if (released) return;
        released = true;
        held.active -= 1;
        if (held.served && served > 0) charge(held.served, served, this.now());
      },
    };
  }

  get trackedUsers(): number {
    return this.users.size;
  }

  /** Oldest idle users first (Map keeps insertion order). */
  private forgetIdle(): void {
    for (const [id, u] of this.users) {
      if (this.users.size < this.limits.maxUsers) return;
      if (u.active === 0) this.users.delete(id);
    }
  }
}
