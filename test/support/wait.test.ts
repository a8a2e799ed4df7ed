import { describe, expect, it } from '@jest/globals';
import { waitFor } from './wait.js';

describe('waitFor', () => {
  it('returns the first value that is not undefined, null or false', async () => {
    const values = [undefined, null, false, 0, 5];
    expect(await waitFor(() => values.shift(), 'a value', 1_000, 1)).toBe(0);
  });

  it('fails after the timeout, describing the state at that moment', async () => {
    let polls = 0;
    await expect(waitFor(() => (polls++, false), () => `ready after ${polls} polls`, 30, 5)).rejects.toThrow(/timed out after 30 ms waiting for ready after \d+ polls/);
    expect(polls).toBeGreaterThan(1);
  });
});
