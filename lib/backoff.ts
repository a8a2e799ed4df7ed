// Full-jitter exponential backoff (AWS Architecture Blog "Exponential Backoff And Jitter";
// centrifuge-js utils.ts): delay = random(0, min(cap, base * 2^attempt)). Pure: the caller
// passes the random number, so tests and state machines stay deterministic.
export interface BackoffPolicy {
  /** Delay ceiling for the first retry (attempt 0), in ms. */
  baseMs: number;
  /** Largest delay ever returned, in ms. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 100, maxMs: 10_000 };

/** Delay before retry number `attempt` (0-based); `random` is uniform in [0, 1). */
export function backoffDelay(attempt: number, random: number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  const exp = Math.min(Math.max(0, Math.floor(attempt)), 52); // 2^52 keeps the product finite
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** exp);
  const r = Math.min(Math.max(random, 0), 1);
  return Math.floor(ceiling * r);
}

/** Resolves after `ms`; the one impure helper, for adapters. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
