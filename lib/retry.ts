// The one retry loop of the pipeline: full-jitter exponential backoff (lib/backoff.ts) between
// attempts, stopped by an AbortSignal, and by default retrying only what says it can help — an
// error whose `retriable` is true (lib/errors.ts). Callers that retry everything until they are
// stopped (a publish that must not be dropped) say so with `shouldRetry: () => true`.
import { type BackoffPolicy, DEFAULT_BACKOFF, backoffDelay, sleep } from './backoff.js';
import { isRetriable } from './errors.js';

export interface RetryOptions {
  policy?: BackoffPolicy;
  /** Aborting ends the wait at once; the last error is then thrown. */
  signal?: AbortSignal;
  /** Whether the error of attempt `attempt` (0-based) is worth another; default: its `retriable`. */
  shouldRetry?: (err: unknown, attempt: number) => boolean;
  /** Attempts in all, the first included (default: no limit). */
  maxAttempts?: number;
  /** Before each wait, e.g. to count retries or log. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** Uniform in [0, 1): injectable so tests are deterministic. */
  random?: () => number;
}

export async function retry<T>(attemptOnce: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const { policy = DEFAULT_BACKOFF, signal, shouldRetry = isRetriable, maxAttempts = Infinity, onRetry, random = Math.random } = options;
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await attemptOnce(attempt);
    } catch (err) {
      if (signal?.aborted || attempt + 1 >= maxAttempts || !shouldRetry(err, attempt)) throw err;
      const delayMs = backoffDelay(attempt, random(), policy);
      onRetry?.(err, attempt, delayMs);
      await sleep(delayMs, signal);
      if (signal?.aborted) throw err;
    }
  }
}
