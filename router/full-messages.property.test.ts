// Full-mode messages reuse each record's JSON text (envelopeJson) instead of serializing the
// envelope again. Property: whatever subjects are erased, and whether decrypted text names one,
// every message is byte for byte JSON.stringify of the envelopes as blanked for publishing — a
// scrubbed envelope never goes out with its record's (pre-scrub) text, and no erased id goes out.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { scrubErased, subjectIdsOf } from '@taskflow/stream';
import { sampleEvent } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import { ProjectBatcher } from './batcher.js';
import { erasedEnvelope } from './changelog.js';
import { decodeEvent, envelopeJson, type Envelope, type RouterEvent } from './event.js';
import { MemoryChangelogStore } from './memory-changelog.js';
import type { OutboundMessage } from './messages.js';
import type { SequencedChange } from './sequencer.js';
import { type InputRecord, ShardRouter } from './shard-router.js';

const WS = 'a0000000-0000-4000-8000-000000000001';
const PROJECT = 'b0000000-0000-4000-8000-000000000001';
const USERS = ['d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002', 'd0000000-0000-4000-8000-000000000003'];
/** Decryption turns this description into text naming a user (the ciphertext hid the mention). */
const SEALED = 'sealed:';

const change = fc.record({
  kind: fc.constantFrom('task.updated' as const, 'comment.created' as const, 'membership.created' as const),
  user: fc.integer({ min: 0, max: USERS.length - 1 }),
  mentioned: fc.integer({ min: 0, max: USERS.length - 1 }),
  actor: fc.option(fc.integer({ min: 0, max: USERS.length - 1 }), { nil: undefined }),
  sealed: fc.boolean(),
});

type Change = typeof change extends fc.Arbitrary<infer T> ? T : never;

function record(c: Change, i: number): InputRecord {
  const mention = `see @${USERS[c.mentioned]} please`;
  const text = c.sealed && c.kind === 'task.updated' ? `${SEALED}${c.mentioned}` : mention;
  const row = c.kind === 'task.updated' ? { description: text } : c.kind === 'comment.created' ? { body: text } : {};
  const e = sampleEvent(c.kind, { workspaceId: WS, projectId: PROJECT, userId: USERS[c.user], commitLsn: 0x100n + BigInt(i) * 0x10n, entityId: `c0000000-0000-4000-8000-${String(i).padStart(12, '0')}`, row }) as Envelope;
  if (c.actor !== undefined) (e.data as unknown as { source: { actor?: { userId: string } } }).source.actor = { userId: USERS[c.actor]! };
  return { data: Buffer.from(JSON.stringify(e)), sequenceNumber: String(i + 1) };
}

/** What decryption does to a sealed description: a new envelope whose text names a user. */
function unseal(envelope: Envelope): Envelope {
  const after = (envelope.data as { after?: Record<string, unknown> | null }).after;
  const text = after?.description;
  if (typeof text !== 'string' || !text.startsWith(SEALED)) return envelope;
  const description = `see @${USERS[Number(text.slice(SEALED.length))]} please`;
  return { ...envelope, data: { ...envelope.data, after: { ...after, description } } } as Envelope;
}

describe('full-mode messages from the records’ own text', () => {
  it('are JSON.stringify of the published (blanked, decrypted) envelopes: no pre-scrub text, no erased id', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(change, { minLength: 1, maxLength: 12 }), fc.subarray(USERS), fc.boolean(), async (changes, erasedIds, decrypting) => {
        const erased = new Set(erasedIds);
        const records = changes.map(record);
        const messages: OutboundMessage[] = [];
        const batcher = new ProjectBatcher({ windowMs: 0, mode: 'full', gzip: false, maxBytes: 128 * 1024 });
        const router = new ShardRouter({
          shardId: 's',
          consumer: 'router',
          changelog: new MemoryChangelogStore(),
          deadLetters: { put: async () => {} },
          memberships: { apply: async () => {} },
          validate: validateEvent,
          sink: { enqueue: (p, c) => batcher.add(p, c, 0), flush: async () => void messages.push(...batcher.takeAll()), revoke: () => {} },
          erased: { erasedAmong: async (events) => new Set(events.flatMap((e) => subjectIdsOf(e.envelope)).filter((id) => erased.has(id))) },
          ...(decrypting ? { decrypt: async (c: SequencedChange) => ({ seq: c.seq, event: { ...c.event, envelope: unseal(c.event.envelope) } }) } : {}),
        });
        await router.process(records);

        const published = new Map<string, Envelope>();
        for (const r of records) {
          const decoded = decodeEvent(r.data, validateEvent);
          if (!decoded.ok) throw new Error(decoded.message);
          const blank = (e: Envelope) => scrubErased(e, (id) => erased.has(id)) ?? erasedEnvelope(e);
          published.set(decoded.event.id, decrypting ? blank(unseal(blank(decoded.event.envelope))) : blank(decoded.event.envelope));
        }
        expect(messages.reduce((n, m) => n + m.count, 0)).toBe(records.length);
        for (const m of messages) {
          const text = m.payload.toString('utf8');
          const body = JSON.parse(text) as { changes: { seq: number; event: { id: string } }[] };
          const expected = { v: 1, ws: WS, project: PROJECT, mode: 'full', fromSeq: m.fromSeq, toSeq: m.toSeq, changes: body.changes.map((c) => ({ seq: c.seq, event: published.get(c.event.id) })) };
          expect(text).toBe(JSON.stringify(expected));
          for (const id of erased) expect(text).not.toContain(id);
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('envelopeJson', () => {
  const e = sampleEvent('task.updated', { workspaceId: WS, projectId: PROJECT });
  // Spacing JSON.stringify would not write shows whose text comes out.
  const spaced = JSON.stringify(e).replace('"specversion":"1.0"', '"specversion": "1.0"');
  const decode = (text: string): RouterEvent => {
    const d = decodeEvent(Buffer.from(text), validateEvent);
    if (!d.ok) throw new Error(d.message);
    return d.event;
  };

  it('is the record’s text while the envelope is the one parsed from it', () => {
    expect(envelopeJson(decode(spaced))).toBe(spaced);
  });

  it('serializes anew once the envelope is replaced, even on a copy of the event', () => {
    const event = decode(spaced);
    expect(envelopeJson({ ...event, envelope: { ...event.envelope } })).toBe(JSON.stringify(e));
  });

  it('leaves no trace on the envelope: stringify, keys, spreads, clones and equality see the record\'s JSON only', () => {
    const envelope = decode(spaced).envelope;
    expect(JSON.stringify(envelope)).toBe(JSON.stringify(e));
    expect(Object.keys(envelope)).toEqual(Object.keys(e));
    expect(envelope).toStrictEqual(JSON.parse(spaced));
    expect(envelopeJson({ ...decode(spaced), envelope: Object.assign({}, envelope) })).toBe(JSON.stringify(e));
    expect(envelopeJson({ ...decode(spaced), envelope: structuredClone(envelope) })).toBe(JSON.stringify(e));
  });

  it('does not reuse text padded with whitespace', () => {
    expect(envelopeJson(decode(` ${JSON.stringify(e)}\n`))).toBe(JSON.stringify(e));
  });
});
