import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
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

  it('reads a changelog holding both forms (a router switched to thin): each change as the live message of its mode gives it', async () => {
    const full = await decodeBatch(fixture('batch-full.json'));
    const thin = await decodeBatch(fixture('batch-thin.json'));
    const fullBody = JSON.parse(readFileSync(new URL('../test/fixtures/batch-full.json', import.meta.url), 'utf8')) as { changes: unknown[] };
    const thinBody = JSON.parse(readFileSync(new URL('../test/fixtures/batch-thin.json', import.meta.url), 'utf8')) as { changes: Record<string, unknown>[] };
    // The replay API marks thin entries `mode: "thin"`; full ones are `{ seq, event }` as ever.
    const ok = parseReplay(200, { changes: [...fullBody.changes, ...thinBody.changes.map((c) => ({ ...c, mode: 'thin' }))], latestSeq: 43 });
    expect(ok).toEqual({ kind: 'ok', changes: [...full.changes, ...thin.changes], latestSeq: 43 });
    expect(() => parseReplay(200, { changes: [{ seq: 1, mode: 'thin', id: 'i', type: 't', time: 't' }], latestSeq: 1 })).toThrow(DecodeError); // no key
    expect(() => parseReplay(200, { changes: [{ seq: 1, mode: 'thin', id: 'i', type: 't', time: 't', key: null, changed: [1] }], latestSeq: 1 })).toThrow(DecodeError);
  });
});

describe('decoding properties', () => {
  const thinArb = fc.record({
    id: fc.string(),
    type: fc.string(),
    time: fc.string(),
    key: fc.oneof(fc.constant(null), fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer()))),
    changed: fc.option(fc.array(fc.string()), { nil: undefined }),
  });
  const batchArb = fc
    .record({ from: fc.nat(1_000_000), thin: fc.array(thinArb, { maxLength: 8 }), mode: fc.constantFrom('full' as const, 'thin' as const), gzip: fc.boolean() })
    .map(({ from, thin, mode, gzip }) => ({
      gzip,
      ids: thin.map((t) => t.id),
      body: {
        v: 1,
        ws: 'w',
        project: 'p',
        mode,
        fromSeq: from,
        toSeq: from + Math.max(0, thin.length - 1),
        changes: thin.map((t, i) =>
          mode === 'thin' ? { seq: from + i, ...t } : { seq: from + i, event: { id: t.id, type: t.type, data: { op: 'u', table: 'tasks', note: t.time } } },
        ),
      },
    }));

  it('decodes any well-formed batch, plain or gzipped, to the same changes', async () => {
    await fc.assert(
      fc.asyncProperty(batchArb, async ({ body, gzip, ids }) => {
        const json = Buffer.from(JSON.stringify(body));
        const batch = await decodeBatch(gzip ? gzipSync(json) : json);
        expect(batch.changes.map((c) => c.seq)).toEqual(body.changes.map((c) => c.seq));
        expect(batch.changes.map((c) => (c.mode === 'full' ? c.event.id : c.id))).toEqual(ids);
      }),
      { numRuns: 200 },
    );
  });

  it('rejects anything else with a DecodeError and nothing worse', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array(), fc.json().map((j) => new TextEncoder().encode(j)), fc.uint8Array().map((b) => gzipSync(b))), async (bytes) => {
        await decodeBatch(bytes).then(
          (batch) => expect(batch.changes).toBeInstanceOf(Array),
          (err: unknown) => expect(err).toBeInstanceOf(DecodeError),
        );
      }),
      { numRuns: 300 },
    );
  });
});
