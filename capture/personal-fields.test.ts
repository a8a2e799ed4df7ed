import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { decryptEvent, isEncryptedField } from '../lib/field-crypto.js';
import { silentLogger } from '../lib/logger.js';
import { LocalKeyWrapper, MemoryKeyTable, type SubjectKeyStore, WrappedSubjectKeyStore } from '../lib/subject-keys.js';
import { sampleEvent } from '../schemas/fixtures.js';
import type { ChangeEvent } from '../schemas/types.js';
import { OrderedEncryptor, SubjectKeyCache, subjectsOf } from './personal-fields.js';

const USERS = ['00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-0000000000a2', '00000000-0000-4000-8000-0000000000a3'];
const store = () => new WrappedSubjectKeyStore(new MemoryKeyTable(), new LocalKeyWrapper(randomBytes(32)));

/** Event n: a comment by USERS[u] (body `c<n>`), a task created by USERS[u] (description `d<n>`), or one with no creator. */
function event(n: number, kind: 'comment' | 'task' | 'anonymous', u: number): ChangeEvent {
  const user = USERS[u % USERS.length]!;
  if (kind === 'comment') return sampleEvent('comment.created', { txIndex: n, row: { author_id: user, body: `c${n}` } });
  return sampleEvent('task.created', { txIndex: n, row: { created_by: kind === 'task' ? user : null, description: `d${n}` } });
}

describe('personal fields at capture', () => {
  it('names the subject of each personal field; a task without a creator has none', () => {
    expect(subjectsOf(event(0, 'comment', 0))).toEqual([USERS[0]]);
    expect(subjectsOf(event(0, 'task', 1))).toEqual([USERS[1]]);
    expect(subjectsOf(event(0, 'anonymous', 1))).toEqual([]);
    expect(subjectsOf(sampleEvent('membership.created'))).toEqual([]);
  });

  it('sends every event once, in order, encrypted (or plain without a subject, or erased), whatever the key reads do', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom<'comment' | 'task' | 'anonymous'>('comment', 'task', 'anonymous'), fc.nat(2)), { minLength: 1, maxLength: 25 }),
        fc.array(fc.boolean(), { maxLength: 10 }),
        fc.scheduler(),
        async (specs, failures, sched) => {
          const inner = store();
          await inner.destroy(USERS[2]!); // one author is erased
          let reads = 0;
          // Each key read is a scheduling point and may fail (DynamoDB throttling).
          const flaky: SubjectKeyStore = {
            ...inner,
            keyFor: sched.scheduleFunction(async (s: string) => {
              if (failures[reads++] === true) throw new Error('throttled');
              return inner.keyFor(s);
            }),
            keyById: (k) => inner.keyById(k),
            destroy: (s) => inner.destroy(s),
            isDestroyed: (s) => inner.isDestroyed(s),
          };
          const ending = new AbortController();
          const enc = new OrderedEncryptor(new SubjectKeyCache(flaky, { ttlMs: 60_000, maxEntries: 100 }), { signal: ending.signal, backoff: { baseMs: 0, maxMs: 0 }, logger: silentLogger, random: () => 0 });
          const sent: ChangeEvent[] = [];
          const events = specs.map(([kind, u], n) => event(n, kind, u));
          for (const e of events) enc.submit(e, (x) => sent.push(x));
          await sched.waitFor(enc.idle());
          expect(sent.map((e) => e.id)).toEqual(events.map((e) => e.id));
          for (const [i, e] of sent.entries()) {
            const [kind, u] = specs[i]!;
            const after = (e.data as unknown as { after: Record<string, unknown> }).after;
            const field = kind === 'comment' ? after.body : after.description;
            if (kind === 'anonymous') expect(field).toBe(`d${i}`);
            else expect(isEncryptedField(field)).toBe(true);
            const plain = ((await decryptEvent(e, inner)).data as unknown as { after: Record<string, unknown> }).after;
            const expected = kind === 'comment' ? `c${i}` : `d${i}`;
            expect(kind === 'comment' ? plain.body : plain.description).toBe(u === 2 && kind !== 'anonymous' ? null : expected);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('reads a subject key once while cached, and stops (sending nothing more) when the session ends', async () => {
    const inner = store();
    let reads = 0;
    const counting: SubjectKeyStore = { ...inner, keyFor: (s) => (reads++, inner.keyFor(s)), keyById: (k) => inner.keyById(k), destroy: (s) => inner.destroy(s), isDestroyed: (s) => inner.isDestroyed(s) };
    const cache = new SubjectKeyCache(counting, { ttlMs: 60_000, maxEntries: 100 });
    const ending = new AbortController();
    const enc = new OrderedEncryptor(cache, { signal: ending.signal, backoff: { baseMs: 0, maxMs: 0 }, logger: silentLogger, random: () => 0 });
    const sent: string[] = [];
    for (let n = 0; n < 5; n++) enc.submit(event(n, 'comment', 0), (e) => sent.push(e.id));
    await enc.idle();
    expect(reads).toBe(1);
    enc.submit(event(5, 'comment', 0), (e) => sent.push(e.id)); // cached: sent at once
    expect(sent).toHaveLength(6);

    const down: SubjectKeyStore = { ...counting, keyFor: () => Promise.reject(new Error('dynamodb down')) };
    const stuck = new OrderedEncryptor(new SubjectKeyCache(down, { ttlMs: 60_000, maxEntries: 100 }), { signal: ending.signal, backoff: { baseMs: 1, maxMs: 1 }, logger: silentLogger, random: () => 0 });
    stuck.submit(event(6, 'comment', 1), (e) => sent.push(e.id));
    expect(stuck.waiting).toBe(1);
    ending.abort();
    await stuck.idle();
    expect(sent).toHaveLength(6);
  });
});
