import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { printable } from '../lib/dlq.js';
import { encodeAggregated, encodePlain } from '@taskflow/stream/codec';
import { sampleEvent } from '../schemas/fixtures.js';
import { hashKeyOf } from '../lib/partition-key.js';
import { recheck } from './redrive.js';

const WS = '11111111-1111-4111-8111-0000000000aa';
const event = (lsn: bigint) => Buffer.from(JSON.stringify(sampleEvent('task.updated', { workspaceId: WS, commitLsn: lsn })));

describe('redrive recheck: what the router would do with the bytes now', () => {
  it('accepts a valid envelope in any record form the router reads', () => {
    expect(recheck(event(1n))).toBeUndefined();
    expect(recheck(encodePlain(event(2n), 'gzip'))).toBeUndefined();
    expect(recheck(encodeAggregated(WS, [event(3n), event(4n)], 'zstd'))).toBeUndefined();
  });

  it('names the reason it would be dead-lettered again', () => {
    expect(recheck(Buffer.from('{"id": '))).toMatchObject({ reason: 'malformed_json' });
    expect(recheck(Buffer.from(JSON.stringify({ ...sampleEvent('task.updated', { workspaceId: WS }), type: 'taskflow.task.renamed' })))).toMatchObject({ reason: 'unknown_type' });
    expect(recheck(Buffer.from([0x1f, 0x8b, 0, 1]))).toMatchObject({ reason: 'undecodable_record' });
    const oneBad = encodeAggregated(WS, [event(5n), Buffer.from('not json')]);
    expect(recheck(oneBad)).toMatchObject({ reason: 'malformed_json' });
  });

  it("keeps a workspace's redriven records on its shard: the hash key Kinesis gives the workspace id", () => {
    // MD5("a") = 0cc175b9c0f1b6a831c399e269772661
    expect(hashKeyOf('a')).toBe(BigInt('0x0cc175b9c0f1b6a831c399e269772661').toString(10));
  });
});

describe('printable: dead-letter text for a terminal', () => {
  it('escapes C0, DEL, C1 and bidi controls, keeps newline and tab', () => {
    expect(printable('a\x1b[2Jb\r\x00\x7f\u009b\u202e\u2066c\n\td\\x1b')).toBe('a\\x1b[2Jb\\x0d\\x00\\x7f\\x9b\\u202e\\u2066c\n\td\\x1b');
  });

  it('leaves no control character, and changes nothing in text without one', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        // eslint-disable-next-line no-control-regex -- asserting none remain
        expect(printable(text)).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
        // eslint-disable-next-line no-control-regex -- the same class
        if (!/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/.test(text)) expect(printable(text)).toBe(text);
      }),
    );
  });
});
