import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { decideSlot, replicationApplicationName, slotHolderAction, type SlotRecord } from './slot-guard.js';

const record = (confirmedLsn: bigint): SlotRecord => ({ key: 'k', confirmedLsn, createdLsn: 1n, updatedAt: '' });

describe('decideSlot', () => {
  it('creates on a first start and resumes a healthy slot', () => {
    expect(decideSlot({ exists: false }, undefined, false)).toMatchObject({ action: 'create', firstStart: true });
    expect(decideSlot({ exists: true, confirmedLsn: 90n }, record(100n), false)).toMatchObject({ action: 'resume' });
    expect(decideSlot({ exists: true, confirmedLsn: 100n }, record(100n), false)).toMatchObject({ action: 'resume' });
    expect(decideSlot({ exists: true, confirmedLsn: 5n }, undefined, false)).toMatchObject({ action: 'resume', message: expect.stringMatching(/adopting/) });
  });

  it('refuses to start over silently when the slot was dropped or recreated', () => {
    expect(decideSlot({ exists: false }, record(100n), false)).toMatchObject({ action: 'refuse', message: expect.stringMatching(/no longer exists.*CAPTURE_ACCEPT_SLOT_GAP/) });
    expect(decideSlot({ exists: true, confirmedLsn: 200n }, record(100n), false)).toMatchObject({ action: 'refuse', message: expect.stringMatching(/recreated/) });
    expect(decideSlot({ exists: false }, record(100n), true)).toMatchObject({ action: 'create', firstStart: false });
    expect(decideSlot({ exists: true, confirmedLsn: 200n }, record(100n), true)).toMatchObject({ action: 'resume' });
  });
});

describe('slotHolderAction', () => {
  it('terminates only a walsender carrying its own name, waits for any other holder, starts on a free slot', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9._-]{1,46}$/), fc.stringMatching(/^[A-Za-z0-9._-]{1,46}$/), fc.integer({ min: 1, max: 2 ** 22 }), (own, other, pid) => {
        const mine = replicationApplicationName(own);
        expect(slotHolderAction(undefined, mine)).toEqual({ action: 'start' });
        expect(slotHolderAction({ pid, applicationName: mine }, mine)).toEqual({ action: 'terminate', pid });
        // A live peer (an active/standby pair) is never terminated, whatever its name.
        const theirs = replicationApplicationName(other);
        if (theirs !== mine) expect(slotHolderAction({ pid, applicationName: theirs }, mine)).toMatchObject({ action: 'wait' });
        expect(slotHolderAction({ pid, applicationName: '' }, mine)).toMatchObject({ action: 'wait' });
      }),
    );
  });
});
