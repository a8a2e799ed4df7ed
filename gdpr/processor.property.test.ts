import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { identifierStrings, type ErasureSink, type SubjectIdentifiers } from '../lib/erasure.js';
import type { RetryOptions } from '../lib/retry.js';
import type { KeyDestruction } from '../lib/subject-keys.js';
import { ErasureProcessor, MemoryRequestStore, newRequest, STEPS, type ErasureRequest } from './processor.js';

const SUBJECT = '11111111-1111-4111-8111-000000000001';
const IDS: SubjectIdentifiers = {
  subject: SUBJECT,
  email: 'ada@example.com',
  displayName: 'Ada Lovelace',
  authored: [{ table: 'comments', id: 'c1', text: 'my private note' }],
};

class Crash extends Error {}

/** A sink holding strings; its purge removes one matching item per call step and may crash midway. */
class FakeSink implements ErasureSink {
  items: string[];
  purges = 0;
  constructor(readonly sink: string, items: string[], private readonly crashMidPurge: () => boolean, private readonly leavesResidueOnce: boolean) {
    this.items = [...items];
  }
  purge(ids: SubjectIdentifiers): Promise<{ changed: number }> {
    this.purges += 1;
    const needles = identifierStrings(ids);
    let changed = 0;
    for (const item of [...this.items]) {
      if (!needles.some((n) => item.includes(n))) continue;
      // A careless first purge misses the last item: only the scan can catch it.
      if (this.leavesResidueOnce && this.purges === 1 && this.items.filter((i) => needles.some((n) => i.includes(n))).length === 1) break;
      this.items.splice(this.items.indexOf(item), 1);
      changed += 1;
      if (this.crashMidPurge()) throw new Crash('killed mid-purge');
    }
    return Promise.resolve({ changed });
  }
  scan(ids: SubjectIdentifiers): Promise<{ scanned: number; found: number }> {
    const needles = identifierStrings(ids);
    return Promise.resolve({ scanned: this.items.length, found: this.items.filter((i) => needles.some((n) => i.includes(n))).length });
  }
}

class FakeKeys {
  destroyed: KeyDestruction | null = null;
  calls = 0;
  destroy(subject: string): Promise<KeyDestruction> {
    this.calls += 1;
    this.destroyed ??= { subject, kids: ['sk1.x'], destroyedAt: '2026-12-02T00:00:00.000Z', store: 'memory' };
    return Promise.resolve(this.destroyed);
  }
}

const NO_WAIT: RetryOptions = { policy: { baseMs: 0, maxMs: 0 } };

function setup(crashes: { afterSave: Set<number>; midPurge: Set<number> }, residue: boolean) {
  const store = new MemoryRequestStore();
  const keys = new FakeKeys();
  let purgeItem = 0;
  const mid = (): boolean => crashes.midPurge.has(purgeItem++);
  const sinks = [
    new FakeSink('search-index', ['other doc', `task by ${SUBJECT}`, 'my private note, edited', 'Ada Lovelace said hi'], mid, residue),
    new FakeSink('warehouse-raw', [`{"actor":"${SUBJECT}"}`, 'unrelated', 'mail ada@example.com'], mid, false),
  ];
  return { store, keys, sinks };
}

describe('ErasureProcessor', () => {
  it('killed after any save or in the middle of any purge, restarted, it completes with every sink verified empty of the subject', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.nat(14), { maxLength: 6 }), fc.uniqueArray(fc.nat(6), { maxLength: 3 }), fc.boolean(), async (afterSave, midPurge, residue) => {
        const crashes = { afterSave: new Set(afterSave), midPurge: new Set(midPurge) };
        const { store, keys, sinks } = setup(crashes, residue);
        const created = await store.create(newRequest({ requestId: 'r1', ids: IDS, ticket: 'T-1', requestedBy: 'dpo@example.com', now: new Date(0), sinks: sinks.map((s) => s.sink) }));
        let saves = 0;
        const seen: ErasureRequest[] = [];
        let result: ErasureRequest | undefined;
        for (let restart = 0; restart < 40 && !result; restart += 1) {
          const processor = new ErasureProcessor({
            store, keys, sinks, retry: { ...NO_WAIT, shouldRetry: (e) => !(e instanceof Crash) },
            afterSave: (r) => {
              seen.push(r);
              // What a saved state claims must already be true of the sinks.
              for (const s of sinks) if (r.sinks[s.sink]!.state === 'verified') expect(s.items.some((i) => identifierStrings(IDS).some((n) => i.includes(n)))).toBe(false);
              if (r.step !== 'requested') expect(keys.destroyed).not.toBeNull();
              if (crashes.afterSave.has(saves++)) throw new Crash('killed after save');
            },
          });
          try {
            result = await processor.run(created.requestId);
          } catch (e) {
            if (!(e instanceof Crash)) throw e;
          }
        }
        expect(result?.step).toBe('complete');
        expect(result!.identifiers).toBeUndefined();
        expect(result!.keyDestruction).toEqual(keys.destroyed);
        for (const s of sinks) {
          expect(result!.sinks[s.sink]).toMatchObject({ state: 'verified', found: 0 });
          expect(s.items.filter((i) => identifierStrings(IDS).some((n) => i.includes(n)))).toEqual([]);
        }
        expect(sinks[0]!.items).toEqual(['other doc']);
        // Steps only move forward, except a failed scan sending purging back one step.
        for (let i = 1; i < seen.length; i += 1) {
          const back = STEPS.indexOf(seen[i]!.step) < STEPS.indexOf(seen[i - 1]!.step);
          if (back) expect([seen[i - 1]!.step, seen[i]!.step]).toEqual(['sinks-purged', 'keys-destroyed']);
        }
        if (residue) expect(sinks[0]!.purges).toBeGreaterThanOrEqual(2);
      }),
    );
  });

  it('a second request for the same subject is the first one; a subject with no data completes with zero counts', async () => {
    const store = new MemoryRequestStore();
    const keys = new FakeKeys();
    const sinks = [new FakeSink('search-index', ['nothing of hers'], () => false, false)];
    const first = await store.create(newRequest({ requestId: 'r1', ids: IDS, ticket: 'T-1', requestedBy: 'a', now: new Date(0), sinks: ['search-index'] }));
    const again = await store.create(newRequest({ requestId: 'r2', ids: IDS, ticket: 'T-2', requestedBy: 'b', now: new Date(1000), sinks: ['search-index'] }));
    expect(again).toEqual(first);
    expect(first.deadline).toBe('1970-01-04T00:00:00.000Z');
    const done = await new ErasureProcessor({ store, keys, sinks, retry: NO_WAIT }).run('r1');
    expect(done.sinks['search-index']).toMatchObject({ state: 'verified', changed: 0, scanned: 1, found: 0 });
    expect(await store.get('r2')).toBeNull();
    expect(await store.open()).toEqual([]);
    expect(keys.calls).toBe(1);
  });
});

describe('a sink that never lets go', () => {
  it('is never marked verified: the run stops with GDPR_RESIDUAL_DATA and the request stays open at that sink', async () => {
    const store = new MemoryRequestStore();
    const stubborn: ErasureSink = { sink: 'search-index', purge: () => Promise.resolve({ changed: 0 }), scan: () => Promise.resolve({ scanned: 3, found: 1 }) };
    await store.create(newRequest({ requestId: 'r1', ids: IDS, ticket: 'T-1', requestedBy: 'a', now: new Date(0), sinks: ['search-index'] }));
    await expect(new ErasureProcessor({ store, keys: new FakeKeys(), sinks: [stubborn], retry: NO_WAIT }).run('r1')).rejects.toMatchObject({ code: 'GDPR_RESIDUAL_DATA' });
    expect(await store.get('r1')).toMatchObject({ step: 'keys-destroyed', sinks: { 'search-index': { state: 'pending', found: 1 } } });
  });
});
