// The rule for snapshots aimed at one consumer (isForConsumer, through readBatch as search and
// notifications read): over random valid streams where some snapshot events carry a `target`,
// each consumer gets exactly the untargeted events and those aimed at it, in stream order; an
// aimed event reaches exactly one consumer; and the validator refuses `target` anywhere but on a
// snapshot (`r`) event, since every other reader would skip a real change.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { arbitraryEvent, SAMPLE_KINDS, sampleEvent } from '../../../schemas/fixtures.js';
import { validateEvent } from '../../../schemas/validate.js';
import { isForConsumer } from './change-event.js';
import { readBatch } from './dead-letters.js';
import type { ProcessBatch } from './consumer/processor.js';

const CONSUMERS = ['router', 'search', 'notifications', 'audit', 'analytics-archiver'] as const;
const noMetrics = { eventsIn: () => {}, deadLettered: () => {} };

/** A valid event; a snapshot one aimed at `target` when it is given. */
const streamEvent = fc.tuple(arbitraryEvent(), fc.option(fc.constantFrom(...CONSUMERS, 'someone-else'), { nil: undefined })).map(([e, target]) => (target && 'op' in e.data && e.data.op === 'r' ? { ...e, target } : e));

function batchOf(events: readonly object[]): ProcessBatch {
  return { records: events.map((e, i) => ({ shardId: 's-1', sequenceNumber: String(i + 1), subSequenceNumber: 0, partitionKey: 'p', data: Buffer.from(JSON.stringify(e)) })), millisBehindLatest: 0 };
}

describe('snapshots aimed at one consumer', () => {
  it('each consumer reads the untargeted events and those aimed at it, in order; an aimed event reaches exactly one', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(streamEvent, { maxLength: 30, selector: (e) => e.id }), async (events) => {
        const seenBy = new Map<string, string[]>();
        for (const consumer of CONSUMERS) {
          const read = await readBatch(batchOf(events), 's-1', { consumer, validate: validateEvent, deadLetters: { put: () => Promise.reject(new Error('no dead letters expected')) }, metrics: noMetrics });
          const ids = read.map((e) => e.id);
          expect(ids).toEqual(events.filter((e) => !('target' in e) || e.target === consumer).map((e) => e.id));
          for (const id of ids) seenBy.set(id, [...(seenBy.get(id) ?? []), consumer]);
        }
        for (const e of events) {
          const readers = seenBy.get(e.id) ?? [];
          if (!('target' in e)) expect(readers).toEqual([...CONSUMERS]);
          else expect(readers).toEqual(e.target === 'someone-else' ? [] : [e.target]);
        }
      }),
    );
  });

  it('isForConsumer: no target is for everyone, a target for that name only', () => {
    fc.assert(
      fc.property(fc.string(), fc.option(fc.string(), { nil: undefined }), (consumer, target) => {
        expect(isForConsumer(target === undefined ? {} : { target }, consumer)).toBe(target === undefined || target === consumer);
      }),
    );
  });

  it('the validator accepts a target on snapshot events only, and only a consumer name', () => {
    for (const kind of SAMPLE_KINDS) {
      const result = validateEvent({ ...sampleEvent(kind), target: 'search' });
      if (kind.endsWith('.snapshot')) expect(result.ok).toBe(true);
      else expect(result).toMatchObject({ ok: false, reason: 'inconsistent', message: expect.stringContaining('target is only for snapshot') });
    }
    for (const bad of ['', 42, 'with space', '-leading', 'x'.repeat(129)]) {
      expect(validateEvent({ ...sampleEvent('task.snapshot'), target: bad })).toMatchObject({ ok: false, reason: 'inconsistent' });
    }
    // older events (no target) stay valid, and keep no target
    const plain = validateEvent(sampleEvent('task.snapshot'));
    expect(plain.ok && 'target' in plain.event).toBe(false);
  });
});
