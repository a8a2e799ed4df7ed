// Waiting in tests: on a condition, never on a fixed sleep. One helper for every test and bench.

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** What waitFor treats as "not yet". */
type NotYet = undefined | null | false;

/**
 * Polls `probe` every `everyMs` until it returns something other than undefined, null or false,
 * and returns that; after `timeoutMs` it fails naming what it waited for (`what` may be a
 * function, to describe the state at the time of failure).
 */
export async function waitFor<T>(probe: () => T | Promise<T>, what: string | (() => string), timeoutMs = 30_000, everyMs = 50): Promise<Exclude<T, NotYet>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value as Exclude<T, NotYet>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(everyMs);
  }
}
