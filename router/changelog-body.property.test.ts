// A changelog item's body (changelog-body.ts). Property: whatever the entries — full ones whose
// envelope is the one decoded from its record (its text reused), a changed copy of it (a scrub,
// an erased form: serialized anew), thin ones — the body's JSON is byte for byte
// JSON.stringify(entries), it decodes to the entries, and a body written as gzip (items from
// before) decodes the same.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { gzipSync } from 'node:zlib';
import { sampleEvent } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import { type ChangelogEntry, changelogEntry, erasedEnvelope } from './changelog.js';
import { decodeBody, encodeBody, entriesJson } from './changelog-body.js';
import { decodeEvent, type Envelope } from './event.js';

const WS = 'a0000000-0000-4000-8000-000000000001';
const PROJECT = 'b0000000-0000-4000-8000-000000000001';

const entry = fc.record({
  kind: fc.constantFrom('task.created' as const, 'task.updated' as const, 'comment.created' as const),
  form: fc.constantFrom('decoded' as const, 'copy' as const, 'erased' as const, 'thin' as const),
  title: fc.string({ maxLength: 40, unit: 'binary' }),
});

function envelopeOf(i: number, kind: 'task.created' | 'task.updated' | 'comment.created', title: string): Envelope {
  const e = sampleEvent(kind, { workspaceId: WS, projectId: PROJECT, commitLsn: 0x1000n + BigInt(i) * 0x40n, entityId: `c0000000-0000-4000-8000-${String(i).padStart(12, '0')}` }) as unknown as { data: { after?: Record<string, unknown> | null } };
  if (e.data.after && 'title' in e.data.after) e.data.after.title = title;
  // As capture writes it (JSON.stringify), decoded as the router decodes a record.
  const decoded = decodeEvent(Buffer.from(JSON.stringify(e)), validateEvent);
  if (!decoded.ok) throw new Error(decoded.message);
  return decoded.event.envelope;
}

describe('changelog item body', () => {
  it('is JSON.stringify of the entries, compressed, and decodes to them (zstd, and gzip from older items)', () => {
    fc.assert(
      fc.property(fc.array(entry, { minLength: 1, maxLength: 12 }), (specs) => {
        const entries: ChangelogEntry[] = specs.map((s, i) => {
          const envelope = envelopeOf(i, s.kind, s.title);
          if (s.form === 'thin') return changelogEntry(i + 1, envelope, 'thin');
          if (s.form === 'copy') return { seq: i + 1, event: { ...envelope, data: { ...envelope.data } } as Envelope };
          if (s.form === 'erased') return { seq: i + 1, event: erasedEnvelope(envelope) };
          return changelogEntry(i + 1, envelope, 'full');
        });
        const json = JSON.stringify(entries);
        expect(entriesJson(entries).equals(Buffer.from(json))).toBe(true);
        const body = encodeBody(entries);
        expect([...body.subarray(0, 4)]).toEqual([0x28, 0xb5, 0x2f, 0xfd]);
        expect(decodeBody(body)).toEqual(JSON.parse(json));
        expect(decodeBody(gzipSync(json))).toEqual(JSON.parse(json));
      }),
    );
  });
});
