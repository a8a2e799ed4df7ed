import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { TaskflowError } from './errors.js';
import { retry } from './retry.js';

const transient = () => new TaskflowError('TRANSIENT', 'try again', { retriable: true });
const fatal = () => new TaskflowError('FATAL', 'give up');
const quick = { policy: { baseMs: 1, maxMs: 2 } };

describe('retry', () => {
  it('retries retriable errors until an attempt succeeds, and returns its value', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 5 }), async (failures) => {
        const attempts: number[] = [];
        const value = await retry(async (attempt) => {
          attempts.push(attempt);
          if (attempt < failures) throw transient();
          return 'done';
        }, quick);
        expect(value).toBe('done');
        expect(attempts).toEqual(Array.from({ length: failures + 1 }, (_, i) => i));
      }),
      { numRuns: 20 },
    );
  });

  it('does not retry an error that is not retriable', async () => {
    let attempts = 0;
    await expect(retry(async () => { attempts += 1; throw fatal(); }, quick)).rejects.toThrow('give up');
    expect(attempts).toBe(1);
  });

  it('stops after maxAttempts with the last error', async () => {
    let attempts = 0;
    await expect(retry(async () => { attempts += 1; throw new TaskflowError('T', `attempt ${attempts}`, { retriable: true }); }, { ...quick, maxAttempts: 3 })).rejects.toThrow('attempt 3');
    expect(attempts).toBe(3);
  });

  it('waits the full-jitter delay of each attempt and reports it', async () => {
    const delays: number[] = [];
    await retry(async (attempt) => { if (attempt < 4) throw transient(); }, { policy: { baseMs: 2, maxMs: 8 }, random: () => 0.99, onRetry: (_e, _a, d) => delays.push(d) });
    expect(delays).toEqual([1, 3, 7, 7]);
  });

  it('an abort ends the wait at once and throws the last error', async () => {
    const abort = new AbortController();
    const started = Date.now();
    setTimeout(() => abort.abort(), 20);
    await expect(retry(async () => { throw new Error('still down'); }, { policy: { baseMs: 60_000, maxMs: 60_000 }, random: () => 0.99, signal: abort.signal, shouldRetry: () => true })).rejects.toThrow('still down');
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});
