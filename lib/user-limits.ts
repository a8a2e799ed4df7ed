// Per-user limits of the browser-facing APIs (replay, search, notifications): a token bucket (rate, burst) and a cap on requests in flight,
// so one abusive or buggy client cannot take the changelog store's capacity from everyone else.
// Time is passed in; at most `maxUsers` idle users are remembered (memory stays bounded — a
// forgotten user starts again with a full bucket, which the burst bounds).
import { createBucket, take, type TokenBucket } from '../lib/rate-limit.js';

export interface UserLimits {
  ratePerSec: number;
  burst: number;
  maxConcurrent: number;
  maxUsers: number;
}

export type Admission = { ok: true; release(): void } | { ok: false; reason: 'rate' | 'concurrency'; retryAfterMs: number };

export class PerUserLimiter {
  private readonly users = new Map<string, { bucket: TokenBucket; active: number }>();

  constructor(
    private readonly limits: UserLimits,
    private readonly now: () => number = Date.now,
  ) {}

  admit(userId: string): Admission {
    const t = this.now();
    let user = this.users.get(userId);
    if (!user) {
      this.forgetIdle();
      user = { bucket: createBucket(this.limits.ratePerSec, this.limits.burst, t), active: 0 };
      this.users.set(userId, user);
    }
    if (user.active >= this.limits.maxConcurrent) return { ok: false, reason: 'concurrency', retryAfterMs: 1000 };
    const token = take(user.bucket, t);
    if (!token.ok) return { ok: false, reason: 'rate', retryAfterMs: token.waitMs };
    user.active += 1;
    const held = user;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        held.active -= 1;
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
