// The router and the SDK are held to the same bytes: the SDK's wire fixtures (the batches its
// decoder is tested on) are what the router's encoder produces for those events.
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { sampleEvent } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import { decodeEvent } from './event.js';
import { encodeMessages, IOT_CORE_MAX_MESSAGE_BYTES } from './messages.js';
import type { SequencedChange } from './sequencer.js';

const fixture = (name: string) => readFileSync(new URL(`../clients/web-sdk/test/fixtures/${name}`, import.meta.url));

interface FullBatch {
  ws: string;
  project: string;
  changes: { seq: number; event: unknown }[];
}

/** The fixture's events as the router has them after reading the stream: decoded and validated. */
function sequenced(batch: FullBatch): SequencedChange[] {
  return batch.changes.map((c) => {
    const decoded = decodeEvent(Buffer.from(JSON.stringify(c.event)), validateEvent);
    if (!decoded.ok) throw new Error(`fixture event ${c.seq} is not a valid event: ${decoded.reason}: ${decoded.message}`);
    return { seq: c.seq, event: decoded.event };
  });
}

describe('the SDK wire fixtures', () => {
  const full = JSON.parse(fixture('batch-full.json').toString()) as FullBatch;
  const project = { workspaceId: full.ws, projectId: full.project };

  it('batch-full.json is what the router encodes for its events, byte for byte, plain and gzipped', () => {
    const changes = sequenced(full);
    const [plain, ...rest] = encodeMessages(project, changes, { mode: 'full', gzip: false, maxBytes: IOT_CORE_MAX_MESSAGE_BYTES });
    expect(rest).toEqual([]);
    expect(plain!.topic).toBe(`taskflow/v1/ws/${full.ws}/projects/${full.project}`);
    expect(plain!.payload.toString()).toBe(JSON.stringify(full));
    const [gzipped] = encodeMessages(project, changes, { mode: 'full', gzip: true, maxBytes: IOT_CORE_MAX_MESSAGE_BYTES });
    expect(gunzipSync(gzipped!.payload).toString()).toBe(JSON.stringify(full));
    expect(gunzipSync(fixture('batch-full.json.gz')).toString()).toBe(JSON.stringify(full));
  });

  it('batch-thin.json is what the router encodes for its change in thin mode', () => {
    const thin = JSON.parse(fixture('batch-thin.json').toString()) as { changes: { seq: number; id: string; time: string; key: { id: string }; changed: string[] }[] };
    const [c] = thin.changes;
    const event = sampleEvent('task.updated', { commitLsn: 0x16b37a10n, time: c!.time, workspaceId: full.ws, projectId: full.project, entityId: c!.key.id, changed: c!.changed });
    const changes = sequenced({ ...full, changes: [{ seq: c!.seq, event }] });
    const [message] = encodeMessages(project, changes, { mode: 'thin', gzip: false, maxBytes: IOT_CORE_MAX_MESSAGE_BYTES });
    expect(message!.payload.toString()).toBe(JSON.stringify(thin));
  });

  it('publishes a v1 event read from the stream as its v2 upcast, and a v2 event as it came (mixed versions in one batch)', () => {
    const at = { workspaceId: full.ws, projectId: full.project };
    const v1 = sampleEvent('task.updated', { ...at, commitLsn: 0x100n, schemaVersion: 1, row: { due_date: '2027-03-04' } as never, changed: ['due_date'] });
    const v2 = sampleEvent('task.updated', { ...at, commitLsn: 0x200n, changed: ['labels'] });
    const [message] = encodeMessages(project, sequenced({ ...full, changes: [{ seq: 1, event: v1 }, { seq: 2, event: v2 }] }), { mode: 'full', gzip: false, maxBytes: IOT_CORE_MAX_MESSAGE_BYTES });
    const sent = JSON.parse(message!.payload.toString()) as { changes: { event: { dataschema: string; data: { after: Record<string, unknown>; changed: string[] } } }[] };
    const [first, second] = sent.changes.map((c) => c.event);
    expect(first!.dataschema).toBe('taskflow://schemas/task/v2');
    // due_date stays beside due_at, as on the window's events: browsers on an SDK before v2 keep their due dates.
    expect(first!.data.after).toMatchObject({ due_date: '2027-03-04', due_at: '2027-03-04T00:00:00Z', labels: [] });
    expect(first!.data.changed).toEqual(['due_date', 'due_at']);
    expect(second).toEqual(v2);
  });
});
