// The SDK decodes what arrives over MQTT: a hostile or broken publisher must not be able to hang
// or exhaust the browser — a gzip bomb, deep nesting or huge arrays end in a DecodeError (the
// batch then counts as lost and the gap is replayed), within bounded memory.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { gzipSync } from 'node:zlib';
import { DecodeError, MAX_BATCH_BYTES, decodeBatch, parseReplay } from './decode.js';

async function rejection(payload: Uint8Array): Promise<unknown> {
  return decodeBatch(payload).then(() => undefined, (err: unknown) => err);
}

describe('decodeBatch on hostile payloads', () => {
  it('cuts a gzip bomb off at MAX_BATCH_BYTES instead of inflating it', async () => {
    const bomb = gzipSync(Buffer.alloc(256 * 1024 * 1024, 0x20)); // 256 MiB of spaces, ~250 KB
    const before = process.memoryUsage().arrayBuffers;
    const err = await rejection(bomb);
    expect(err).toBeInstanceOf(DecodeError);
    expect((err as Error).message).toMatch(/inflates beyond 8388608 bytes/);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(4 * MAX_BATCH_BYTES);
  });

  it('refuses an uncompressed payload above the bound', async () => {
    expect(await rejection(Buffer.alloc(MAX_BATCH_BYTES + 1, 0x20))).toBeInstanceOf(DecodeError);
  });

  it('answers deep nesting and malformed shapes with a DecodeError', async () => {
    const deep = `{"v":1,"mode":"full","ws":"w","project":"p","fromSeq":1,"toSeq":1,"changes":[{"seq":1,"event":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}]}`;
    expect(await rejection(Buffer.from(deep))).toBeInstanceOf(DecodeError);
    expect(await rejection(gzipSync(Buffer.from(`${'['.repeat(200_000)}${']'.repeat(200_000)}`)))).toBeInstanceOf(DecodeError);
    await fc.assert(
      fc.asyncProperty(fc.record({ v: fc.constantFrom(1, 2), mode: fc.constantFrom('full', 'thin', 'x'), ws: fc.jsonValue(), project: fc.jsonValue(), fromSeq: fc.jsonValue(), toSeq: fc.jsonValue(), changes: fc.jsonValue() }), async (body) => {
        const err = await rejection(Buffer.from(JSON.stringify(body)));
        if (err !== undefined) expect(err).toBeInstanceOf(DecodeError);
      }),
      { numRuns: 300 },
    );
  });

  it('parseReplay gives any body a verdict or a DecodeError', () => {
    fc.assert(
      fc.property(fc.constantFrom<200 | 410>(200, 410), fc.jsonValue({ maxDepth: 5 }), (status, body) => {
        try {
          parseReplay(status, body);
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 300 },
    );
  });
});
