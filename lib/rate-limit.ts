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

/** Takes one token if available; otherwise says how long until one is. Mutates the bucket. */
export function take(bucket: TokenBucket, now: number): { ok: true } | { ok: false; waitMs: number } {
  const elapsed = Math.max(0, now - bucket.updatedAt);
  bucket.tokens = Math.min(bucket.burst, bucket.tokens + (elapsed * bucket.ratePerSec) / 1000);
  bucket.updatedAt = now;
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return { ok: true };
  }
  return { ok: false, waitMs: Math.ceil(((1 - bucket.tokens) * 1000) / bucket.ratePerSec) };
}
