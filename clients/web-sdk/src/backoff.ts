// Full-jitter exponential backoff (AWS architecture blog "Exponential Backoff and Jitter";
// centrifuge-js src/utils.ts): the delay is uniform in [0, min(max, base * 2^attempt)), so a
// fleet of browsers cut off by the same broker restart spreads its reconnects instead of
// stampeding back in lockstep. `random` is passed in to keep this pure.
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

export const defaultBackoff: BackoffOptions = { baseMs: 500, maxMs: 30_000 };

export function fullJitterDelay(attempt: number, random: number, options: BackoffOptions = defaultBackoff): number {
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(Math.min(Math.max(random, 0), 0.999_999) * ceiling);
}
