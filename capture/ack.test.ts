import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { AckTracker, type InFlightTransaction } from './ack.js';

type Step = { kind: 'tx'; events: number; gap: number } | { kind: 'keepalive'; gap: number } | { kind: 'deliver'; pick: number } | { kind: 'tick'; ms: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('tx' as const), events: fc.integer({ min: 0, max: 4 }), gap: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ kind: fc.constant('keepalive' as const), gap: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ kind: fc.constant('deliver' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 3000 }) }),
);

describe('AckTracker', () => {
  it('never confirms past a transaction with unacknowledged events, never goes back, and catches up when idle', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
        const start = 1000n;
        const t = new AckTracker(start, { keepaliveMs: 1000 });
        // The server's WAL position: every commit starts at or after it; keepalives report it.
        let wal = start;
        let now = 0;
        let confirmed = start;
        const open: { commitLsn: bigint; tx: InFlightTransaction }[] = [];
        const check = (lsn: bigint) => {
          expect(lsn).toBeGreaterThanOrEqual(confirmed);
          confirmed = lsn;
          // A restart from `lsn` skips commits that start before it: none may be unacknowledged.
          for (const o of open) if (o.tx.pending > 0) expect(lsn).toBeLessThanOrEqual(o.commitLsn);
        };
        for (const s of steps) {
          if (s.kind === 'tx') {
            const commitLsn = wal + BigInt(s.gap);
            wal = commitLsn + 40n;
            open.push({ commitLsn, tx: t.transaction(wal, s.events) });
          } else if (s.kind === 'keepalive') {
            wal += BigInt(s.gap);
            t.position(wal);
          } else if (s.kind === 'deliver') {
            const pending = open.filter((o) => o.tx.pending > 0);
            const o = pending[s.pick % Math.max(1, pending.length)];
            if (o) t.delivered(o.tx);
          } else {
            now += s.ms;
            const u = t.tick(now);
            if (u) check(u.lsn);
          }
        }
        // Deliver everything, a keepalive arrives: the next tick confirms the server's position.
        for (const o of open) while (o.tx.pending > 0) t.delivered(o.tx);
        t.position(wal);
        const u = t.tick(now);
        expect(u).toEqual({ lsn: wal, ping: true });
        check(u!.lsn);
        expect(t.inFlight).toBe(0);
      }),
      { numRuns: 500 },
    );
  });

  it('holds at the first unacknowledged transaction even when later ones are done', () => {
    const t = new AckTracker(100n);
    const a = t.transaction(200n, 2);
    const b = t.transaction(300n, 1);
    t.delivered(b);
    expect(t.tick(0)).toEqual({ lsn: 100n, ping: false });
    t.delivered(a);
    expect(t.confirmable()).toBe(100n);
    t.delivered(a);
    expect(t.confirmable()).toBe(300n); // a done, and b behind it was already done
    expect(t.tick(1)).toEqual({ lsn: 300n, ping: true });
  });

  it('sends nothing while busy and unchanged, and a keepalive status after keepaliveMs', () => {
    const t = new AckTracker(100n, { keepaliveMs: 1000 });
    t.transaction(200n, 1);
    expect(t.tick(0)).toEqual({ lsn: 100n, ping: false });
    expect(t.tick(500)).toBeUndefined();
    expect(t.tick(1000)).toEqual({ lsn: 100n, ping: false });
    expect(() => t.delivered({ lsn: 1n, pending: 0 })).toThrow(/pending/);
  });
});
