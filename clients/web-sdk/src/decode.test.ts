import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { DecodeError, decodeBatch, parseReplay } from './decode.js';

const fixture = (name: string): Uint8Array => readFileSync(new URL(`../test/fixtures/${name}`, import.meta.url));
const json = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

describe('decodeBatch', () => {
  it('decodes a full batch', async () => {
    const batch = await decodeBatch(fixture('batch-full.json'));
    expect(batch).toMatchObject({ mode: 'full', fromSeq: 41, toSeq: 42 });
    expect(batch.changes.map((c) => c.seq)).toEqual([41, 42]);
    const first = batch.changes[0]!;
    expect(first.mode === 'full' && first.event.data.changed).toEqual(['status']);
  });

  it('decodes the same batch gzipped, detected by its magic bytes', async () => {
    const gz = fixture('batch-full.json.gz');
    expect([gz[0], gz[1]]).toEqual([0x1f, 0x8b]);
    expect(await decodeBatch(gz)).toEqual(await decodeBatch(fixture('batch-full.json')));
  });

  it('decodes a thin batch', async () => {
    const batch = await decodeBatch(fixture('batch-thin.json'));
    expect(batch.changes).toEqual([
      {
        seq: 43,
        mode: 'thin',
        id: '0000000016B37A10-00000000',
        type: 'taskflow.task.updated',
        time: '2026-11-26T12:00:01.000001Z',
        key: { id: '5b0c9f4e-7a7d-4a4c-8f55-0e2d9b1c3a77' },
        changed: ['title'],
      },
    ]);
  });

  it.each([
    ['not JSON', new TextEncoder().encode('{nope')],
    ['truncated gzip', fixture('batch-full.json.gz').subarray(0, 40)],
    ['unknown version', json({ v: 2, ws: 'w', project: 'p', mode: 'full', fromSeq: 1, toSeq: 1, changes: [] })],
    ['seq outside the range', json({ v: 1, ws: 'w', project: 'p', mode: 'thin', fromSeq: 1, toSeq: 1, changes: [{ seq: 2, id: 'i', type: 't', time: 't', key: {} }] })],
    ['full change without event', json({ v: 1, ws: 'w', project: 'p', mode: 'full', fromSeq: 1, toSeq: 1, changes: [{ seq: 1 }] })],
  ])('rejects %s', async (_name, payload) => {
    await expect(decodeBatch(payload)).rejects.toBeInstanceOf(DecodeError);
  });
});

describe('parseReplay', () => {
  it('reads 200 and 410 bodies', () => {
    const batch = JSON.parse(readFileSync(new URL('../test/fixtures/batch-full.json', import.meta.url), 'utf8')) as { changes: unknown[] };
    const ok = parseReplay(200, { changes: batch.changes, latestSeq: 57 });
    expect(ok.kind === 'ok' && ok.changes.map((c) => c.seq)).toEqual([41, 42]);
    expect(parseReplay(410, { error: 'resync_required', oldestSeq: 120, latestSeq: 300 })).toEqual({ kind: 'tooOld', oldestSeq: 120, latestSeq: 300 });
    expect(() => parseReplay(200, { latestSeq: 1 })).toThrow(DecodeError);
  });
});
