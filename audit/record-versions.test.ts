// The audit trail across a schema change: a task or comment event written as v1 is recorded
// exactly as the same change written as its v2 upcast (the writer reads through the upcasting
// validator, so the record — its row digests included — does not depend on the version).
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { sampleEvent } from '../schemas/fixtures.js';
import { schemaId } from '../schemas/schema-id.js';
import { UPCASTERS } from '../schemas/upcasters.js';
import { validateEvent } from '../schemas/validate.js';
import { auditRecordOf, Pseudonymizer } from './record.js';

const pseudonyms = new Pseudonymizer(Buffer.from('audit-versions-test-key-0123456789'));

function recordOf(event: unknown) {
  const v = validateEvent(event);
  if (!v.ok) throw new Error(`${v.reason}: ${v.message}`);
  return auditRecordOf(v.event, pseudonyms).record;
}

describe('audit records across task/comment v1 and v2', () => {
  it('records a v1 event exactly as its v2 upcast', () => {
    const kinds = ['task.created', 'task.updated', 'task.deleted', 'comment.created', 'comment.updated'] as const;
    fc.assert(
      fc.property(
        fc.constantFrom(...kinds),
        fc.record({ title: fc.string({ maxLength: 20 }), due: fc.option(fc.date({ min: new Date('2020-01-01'), max: new Date('2030-12-31'), noInvalidDate: true })), lsn: fc.bigInt({ min: 0x1000n, max: 0xffffffn }) }),
        (kind, { title, due, lsn }) => {
          const row = kind.startsWith('task') ? { title, due_date: due ? due.toISOString().slice(0, 10) : null } : { body: title };
          const v1 = sampleEvent(kind, { commitLsn: lsn, schemaVersion: 1, row: row as never });
          const upcaster = UPCASTERS.find((u) => u.schema === kind.split('.')[0] && u.fromVersion === 1)!;
          // the same change as a v2 writer puts it on the stream
          const v2 = { ...upcaster.upcast(v1 as unknown as Record<string, unknown>), dataschema: schemaId({ name: upcaster.schema, version: 2 }) };
          expect(recordOf(v1)).toEqual(recordOf(v2));
        },
      ),
    );
  });
});
