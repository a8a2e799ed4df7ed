// The loader's screening of an archive object: whatever mix of good and bad lines an object
// holds, exactly its good lines are loaded (in order, bytes unchanged) and every bad one is
// quarantined with its line number and reason; an object that is not GZIP is quarantined whole.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { gunzipSync, gzipSync } from 'node:zlib';
import { sampleEvent } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import { quarantineLetter, screenObject } from './quarantine.js';

type Kind = 'good' | 'not_json' | 'schema' | 'blank';

function lineOf(kind: Kind, i: number): string {
  const event = sampleEvent('task.updated', { commitLsn: 0x1000n + BigInt(i), row: { status: 'done' } });
  if (kind === 'good') return JSON.stringify(event);
  if (kind === 'not_json') return `{"id": "${event.id}", truncated`;
  if (kind === 'schema') return JSON.stringify({ ...event, workspaceid: 42 });
  return '  ';
}

describe('screenObject', () => {
  it('loads exactly the good lines, in order, and quarantines each bad one with its line and reason', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom<Kind>('good', 'good', 'good', 'not_json', 'schema', 'blank'), { maxLength: 30 }), fc.boolean(), (kinds, trailingNewline) => {
        const lines = kinds.map(lineOf);
        const text = lines.join('\n') + (trailingNewline && lines.length > 0 ? '\n' : '');
        const body = gzipSync(text);
        const screened = screenObject('raw/k', body, validateEvent);
        const good = lines.filter((_, i) => kinds[i] === 'good');
        const loaded = gunzipSync(screened.body).toString('utf8').split('\n').filter((l) => l.trim() !== '');
        expect(loaded).toEqual(good);
        const bad = kinds.flatMap((k, i) => (k === 'not_json' ? [{ line: i + 1, reason: 'malformed_json' }] : k === 'schema' ? [{ line: i + 1, reason: 'schema_violation' }] : []));
        expect(screened.quarantined.map((q) => ({ line: q.line, reason: q.reason }))).toEqual(bad);
        for (const q of screened.quarantined) expect(Buffer.from(q.payload).toString('utf8')).toBe(lines[q.line! - 1]);
        // Nothing bad: the object goes to the warehouse as it is (no re-compression).
        if (bad.length === 0) expect(screened.body).toBe(body);
      }),
    );
  });

  it('quarantines an object that is not GZIP whole, and loads nothing of it', () => {
    const body = Buffer.from('{"not": "gzip"}\n');
    const screened = screenObject('raw/bad', body, validateEvent);
    expect(gunzipSync(screened.body).length).toBe(0);
    expect(screened.quarantined).toEqual([{ objectKey: 'raw/bad', reason: 'bad_gzip', message: expect.any(String), payload: body }]);
    expect(quarantineLetter(screened.quarantined[0]!)).toMatchObject({ source: 'analytics-loader', origin: { objectKey: 'raw/bad' }, dedupeKey: 'raw/bad#object' });
  });
});
