import { describe, expect, it } from '@jest/globals';
import { RequestGate } from './request-gate.js';

describe('RequestGate', () => {
  it('keeps at most `limit` requests in flight and starts the waiting ones in arrival order', async () => {
    const gate = new RequestGate(4);
    const started: number[] = [];
    const pending = new Map<number, () => void>();
    let peak = 0;
    const all = Array.from({ length: 50 }, (_, i) =>
      gate.run(
        () =>
          new Promise<number>((resolve) => {
            started.push(i);
            peak = Math.max(peak, gate.inFlight);
            pending.set(i, () => resolve(i));
          }),
      ),
    );
    await Promise.resolve();
    expect(started).toEqual([0, 1, 2, 3]);
    expect(gate.queued).toBe(46);
    // Finish them out of order: each completion lets exactly one waiter in.
    while (pending.size > 0) {
      const ids = [...pending.keys()];
      const done = ids[ids.length - 1]!;
      pending.get(done)!();
      pending.delete(done);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await Promise.all(all)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(started).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(peak).toBe(4);
    expect(gate.inFlight).toBe(0);
  });

  it('frees the slot of a request that fails', async () => {
    const gate = new RequestGate(1);
    await expect(gate.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await gate.run(() => Promise.resolve('next'))).toBe('next');
    expect(gate.inFlight).toBe(0);
  });

  it('refuses a limit below 1', () => {
    expect(() => new RequestGate(0)).toThrow(RangeError);
  });
});
