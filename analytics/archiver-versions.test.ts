// The archiver across a schema change: what it archives is what a replay or a warehouse rebuild
// reads later, so v1 events are archived upcast (as v2) and v2 events byte for byte.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { arbitraryEvent } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import { archiveLine } from './archiver.js';

const KINDS = ['task.created', 'task.updated', 'task.deleted', 'task.snapshot', 'comment.created', 'comment.updated'] as const;

describe('archiveLine across schema versions', () => {
  it('archives a v1 event as its v2 upcast and a v2 event as the bytes it came in', () => {
    fc.assert(
      fc.property(fc.constantFrom(1, 2), fc.nat(), (version, seed) => {
        const [event] = fc.sample(arbitraryEvent({ kinds: KINDS, schemaVersion: version }), { numRuns: 1, seed });
        const data = Buffer.from(JSON.stringify(event));
        const r = archiveLine({ data }, validateEvent);
        if (!r.ok) throw new Error(`${r.reason}: ${r.message}`);
        const line = Buffer.from(r.line).toString('utf8');
        expect(line.endsWith('\n')).toBe(true);
        const archived = JSON.parse(line) as { dataschema: string; data: { after: Record<string, unknown> | null } };
        expect(archived.dataschema).toMatch(/\/v2$/);
        if (version === 2) expect(line).toBe(`${data.toString('utf8')}\n`);
        else {
          const upcast = validateEvent(event);
          expect(upcast.ok && archived).toEqual(upcast.ok && JSON.parse(JSON.stringify(upcast.event)));
          // As live readers get it: due_at beside the due_date it came with (schemas/upcasters.ts).
          const after = (event!.data as { after: Record<string, unknown> | null }).after;
          if (after && 'due_date' in after && event!.type.startsWith('taskflow.task.')) {
            expect(archived.data.after).toHaveProperty('due_at');
            expect(archived.data.after).toHaveProperty('due_date', after.due_date);
          }
        }
      }),
      { numRuns: 100 },
    );
  });
});
