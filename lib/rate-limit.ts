// Token bucket with time passed in: IoT Core allows 100 publishes/s per connection, so each
// publisher connection asks its bucket before sending and waits `waitMs` when it is empty.
export interface TokenBucket {
  readonly ratePerSec: number;
  readonly burst: number;
  tokens: number;
  updatedAt: number;
}

export function createBucket(ratePerSec: number, burst: number, now: number): TokenBucket {
  return { ratePerSec, burst, tokens: burst, updatedAt: now };
}

/** Adds what `now` has earned since the last update, up to the burst. Mutates the bucket. */
export function refill(bucket: TokenBucket, now: number): void {
  const elapsed = Math.max(0, now - bucket.updatedAt);
  bucket.tokens = Math.min(bucket.burst, bucket.tokens + (elapsed * bucket.ratePerSec) / 1000);
  bucket.updatedAt = Math.max(bucket.updatedAt, now);
}

/** Takes `n` tokens whether or not there are that many: the bucket may go into debt (negative). */
export function charge(bucket: TokenBucket, n: number, now: number): void {
  refill(bucket, now);
  bucket.tokens -= n;
}

/** Takes one token if available; otherwise says how long until one is. Mutates the bucket. */
export function take(bucket: TokenBucket, now: number): { ok: true } | { ok: false; waitMs: number } {
  refill(bucket, now);
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return { ok: true };
  }
  return { ok: false, waitMs: Math.ceil(((1 - bucket.tokens) * 1000) / bucket.ratePerSec) };
}
