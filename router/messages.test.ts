// The message encoder builds its JSON from each change serialized once: the bytes must be exactly
// those of JSON.stringify of the message body the contract describes, whatever the events hold.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { gunzipSync } from 'node:zlib';
import { arbitraryEvent, sampleEvent } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import { decodeEvent } from './event.js';
import { encodeMessages, type PayloadMode } from './messages.js';
import type { SequencedChange } from './sequencer.js';

const project = { workspaceId: 'ws-"quoted"', projectId: 'p\u00e9-1' };

function sequenced(events: unknown[]): SequencedChange[] {
  return events.map((e, i) => {
    const decoded = decodeEvent(Buffer.from(JSON.stringify(e)), validateEvent);
    if (!decoded.ok) throw new Error(decoded.message);
    return { seq: i + 1, event: decoded.event };
  });
}

function expectedBody(changes: SequencedChange[], mode: PayloadMode): string {
  const thin = (c: SequencedChange) => {
    const e = c.event.envelope;
    const data = e.data as { key?: unknown; changed?: unknown }; // truncates and erasures have neither
    return { seq: c.seq, id: e.id, type: e.type, time: e.time, key: data.key ?? null, ...(Array.isArray(data.changed) ? { changed: data.changed } : {}) };
  };
  const body = { v: 1, ws: project.workspaceId, project: project.projectId, mode, fromSeq: changes[0]!.seq, toSeq: changes.at(-1)!.seq, changes: changes.map((c) => (mode === 'full' ? { seq: c.seq, event: c.event.envelope } : thin(c))) };
  return JSON.stringify(body);
}

describe('encodeMessages', () => {
  it('writes the same bytes as JSON.stringify of the body, split into dense seq ranges within the size limit', () => {
    fc.assert(
      fc.property(fc.array(arbitraryEvent(), { minLength: 1, maxLength: 30 }), fc.constantFrom<PayloadMode>('full', 'thin'), fc.boolean(), fc.integer({ min: 2_000, max: 64_000 }), (events, mode, gzip, maxBytes) => {
        const changes = sequenced(events);
        const messages = encodeMessages(project, changes, { mode, gzip, maxBytes });
        let next = 1;
        for (const m of messages) {
          const text = (gzip ? gunzipSync(m.payload) : m.payload).toString('utf8');
          const part = changes.filter((c) => c.seq >= m.fromSeq && c.seq <= m.toSeq);
          expect(m.fromSeq).toBe(next);
          // A change too large for a full message alone goes out thin.
          expect([expectedBody(part, mode), expectedBody(part, 'thin')]).toContain(text);
          if (part.length > 1) expect(m.payload.length).toBeLessThanOrEqual(maxBytes);
          next = m.toSeq + 1;
        }
        expect(next).toBe(changes.length + 1);
      }),
      { numRuns: 100 },
    );
  });

  it('cuts the same messages whether an envelope is written as its record\'s bytes or serialized anew (any text, UTF-8 or not)', () => {
    const text = fc.string({ maxLength: 300, unit: 'binary' });
    fc.assert(
      fc.property(fc.array(fc.tuple(text, fc.boolean()), { minLength: 1, maxLength: 20 }), fc.boolean(), fc.integer({ min: 1_500, max: 8_000 }), (specs, gzip, maxBytes) => {
        const records = specs.map(([title, broken], i) => {
          const e = sampleEvent('task.updated', { commitLsn: 0x100n + BigInt(i) * 0x10n, row: { title } });
          const bytes = Buffer.from(JSON.stringify(e));
          if (!broken) return bytes;
          // A record that is not valid UTF-8: a byte no decoder reads, at the start of the title's string.
          const at = bytes.indexOf('"title":"') + 9;
          return Buffer.concat([bytes.subarray(0, at), Buffer.from([0xff]), bytes.subarray(at)]);
        });
        const decoded = records.map((bytes, i) => {
          const d = decodeEvent(bytes, validateEvent);
          if (!d.ok) throw new Error(d.message);
          return { seq: i + 1, event: d.event };
        });
        const copied = decoded.map((c) => ({ seq: c.seq, event: { ...c.event, envelope: { ...c.event.envelope } } }));
        const fromRecords = encodeMessages(project, decoded, { mode: 'full', gzip, maxBytes });
        const fromCopies = encodeMessages(project, copied, { mode: 'full', gzip, maxBytes });
        expect(fromRecords.map((m) => [m.fromSeq, m.toSeq])).toEqual(fromCopies.map((m) => [m.fromSeq, m.toSeq]));
        fromRecords.forEach((m, i) => expect(m.payload.equals(fromCopies[i]!.payload)).toBe(true));
      }),
      { numRuns: 100 },
    );
  });
});
