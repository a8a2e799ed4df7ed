import { describe, expect, it } from '@jest/globals';
import { sampleEvent } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import { decodeEvent, type RouterEvent } from './event.js';
import { affectsMemberships, membershipWrites } from '../lib/membership-events.js';
import { revocations } from './revocations.js';

const WS = '11111111-1111-4111-8111-111111111111';
const P = '22222222-2222-4222-8222-222222222222';
const U = '66666666-6666-4666-8666-666666666666';
const M = '55555555-5555-4555-8555-555555555555';

function ev(e: object): RouterEvent {
  const d = decodeEvent(Buffer.from(JSON.stringify(e)), validateEvent);
  if (!d.ok) throw new Error(d.message);
  return d.event;
}

describe('membershipWrites', () => {
  it('turns creates, workspace-wide rows and deletes into projection writes, in order', () => {
    const writes = membershipWrites([
      ev(sampleEvent('membership.created', { workspaceId: WS, projectId: P, userId: U, entityId: M, commitLsn: 0x10n })),
      ev(sampleEvent('membership.snapshot', { workspaceId: WS, projectId: null, userId: U, entityId: M, commitLsn: 0x20n, row: { role: 'admin' } })),
      ev(sampleEvent('membership.deleted', { workspaceId: WS, projectId: P, userId: U, entityId: M, commitLsn: 0x30n })),
      ev(sampleEvent('task.created', { workspaceId: WS, projectId: P, commitLsn: 0x40n })),
    ]);
    expect(writes).toEqual([
      { userId: U, membershipId: M, eventId: '0000000000000010-00000000', membership: { workspaceId: WS, projectId: P, role: 'member' } },
      { userId: U, membershipId: M, eventId: '0000000000000020-00000000', membership: { workspaceId: WS, projectId: null, role: 'admin' } },
      { userId: U, membershipId: M, eventId: '0000000000000030-00000000', membership: null },
    ]);
  });

  it('turns a truncate that includes memberships into a cut-off at its id, and ignores other truncates', () => {
    const both = ev(sampleEvent('table.truncated', { tables: ['tasks', 'memberships'], commitLsn: 0x50n }));
    const tasksOnly = ev(sampleEvent('table.truncated', { tables: ['tasks'], commitLsn: 0x60n }));
    expect(affectsMemberships(both)).toBe(true);
    expect(affectsMemberships(tasksOnly)).toBe(false);
    expect(membershipWrites([both, tasksOnly])).toEqual([{ truncatedBefore: '0000000000000050-00000000' }]);
  });
});

describe('revocations', () => {
  it('names the user of every delete and update, never of a create or snapshot', () => {
    const out = revocations([
      ev(sampleEvent('membership.created', { workspaceId: WS, projectId: P, userId: U, entityId: M, commitLsn: 0x10n })),
      ev(sampleEvent('membership.snapshot', { workspaceId: WS, projectId: null, userId: U, entityId: M, commitLsn: 0x20n })),
      ev(sampleEvent('membership.updated', { workspaceId: WS, projectId: P, userId: U, entityId: M, commitLsn: 0x25n })),
      ev(sampleEvent('membership.deleted', { workspaceId: WS, projectId: P, userId: U, entityId: M, commitLsn: 0x30n })),
      ev(sampleEvent('task.created', { workspaceId: WS, projectId: P, commitLsn: 0x40n })),
    ]);
    expect(out).toEqual([
      { workspaceId: WS, userId: U, eventId: '0000000000000025-00000000' },
      { workspaceId: WS, userId: U, eventId: '0000000000000030-00000000' },
    ]);
  });
});
