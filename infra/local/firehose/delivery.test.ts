import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { DeliveryBuffer, FIREHOSE_LIMITS, errorObjectKey, fileExtension, hourPrefix, limitViolation, maxRequestBytes, objectKey } from './delivery.js';

const bytes = (n: number, fill = 1): Uint8Array => new Uint8Array(n).fill(fill);

describe('object keys', () => {
  it('follow Firehose layout in UTC from the oldest record, with .gz for GZIP or the FileExtension', () => {
    const ms = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
    expect(objectKey({ prefix: 'raw/', streamName: 'changes', version: 1, oldestArrivedAtMs: ms, uuid: 'u-1', extension: fileExtension('GZIP') })).toBe('raw/2026/01/02/03/changes-1-2026-01-02-03-04-05-u-1.gz');
    expect(hourPrefix(ms)).toBe('2026/01/02/03/');
    expect(errorObjectKey({ prefix: '', errorPrefix: 'errors/', errorType: 'S3.PutObject', streamName: 's', version: 1, oldestArrivedAtMs: ms, uuid: 'x', extension: fileExtension('UNCOMPRESSED') })).toBe(
      'errors/S3.PutObject/2026/01/02/03/s-1-2026-01-02-03-04-05-x',
    );
    // FileExtension: an uncompressed stream of records the producer gzipped says so.
    expect(objectKey({ prefix: 'raw/', streamName: 'c', version: 1, oldestArrivedAtMs: ms, uuid: 'u', extension: fileExtension('UNCOMPRESSED', '.gz') })).toBe('raw/2026/01/02/03/c-1-2026-01-02-03-04-05-u.gz');
  });
});

describe('limitViolation', () => {
  const sizes = (n: number, size: number) => Array.from({ length: n }, () => size);
  it('allows 500 records, 1,000 KiB per record and 4 MiB per call, and no more, answering as Firehose does', () => {
    expect(limitViolation(sizes(500, 10))).toBeUndefined();
    expect(limitViolation(sizes(501, 10))).toEqual({ type: 'ValidationException', message: "1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length less than or equal to 500" });
    expect(limitViolation([FIREHOSE_LIMITS.bytesPerRecord])).toBeUndefined();
    expect(limitViolation([10, FIREHOSE_LIMITS.bytesPerRecord + 1])).toEqual({
      type: 'ValidationException',
      message: "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=1024001 cap=1024001]' at 'records.2.member.data' failed to satisfy constraint: Member must have length less than or equal to 1024000",
    });
    expect(limitViolation([FIREHOSE_LIMITS.bytesPerRecord + 1], 'record')?.message).toMatch(/^1 validation error detected: .* at 'record\.data' /);
    expect(limitViolation(sizes(2, FIREHOSE_LIMITS.bytesPerRecord + 1))?.message).toMatch(/^2 validation errors detected: .*records\.1\.member.*; .*records\.2\.member/);
    expect(limitViolation(sizes(4, FIREHOSE_LIMITS.bytesPerRecord))).toBeUndefined();
    expect(limitViolation([...sizes(4, FIREHOSE_LIMITS.bytesPerRecord), 4 * 1024 * 1024 - 4 * FIREHOSE_LIMITS.bytesPerRecord])).toBeUndefined();
    expect(limitViolation([...sizes(4, FIREHOSE_LIMITS.bytesPerRecord), 4 * 1024 * 1024 - 4 * FIREHOSE_LIMITS.bytesPerRecord + 1])).toEqual({ type: 'InvalidArgumentException', message: 'Records size exceeds 4 MB limit' });
    expect(limitViolation([])?.message).toMatch(/greater than or equal to 1/);
  });

  it('bounds the request body by the largest legal call, base64 included', () => {
    const largest = JSON.stringify({ DeliveryStreamName: 'x'.repeat(64), Records: sizes(4, FIREHOSE_LIMITS.bytesPerRecord).map((n) => ({ Data: Buffer.alloc(n).toString('base64') })) });
    expect(largest.length).toBeLessThanOrEqual(maxRequestBytes());
    const many = JSON.stringify({ DeliveryStreamName: 'x'.repeat(64), Records: sizes(500, Math.floor((4 * 1024 * 1024) / 500)).map((n) => ({ Data: Buffer.alloc(n).toString('base64') })) });
    expect(many.length).toBeLessThanOrEqual(maxRequestBytes());
    expect(maxRequestBytes()).toBeLessThan(6 * 1024 * 1024);
  });
});

describe('DeliveryBuffer', () => {
  it('is due by age or by size, whichever comes first', () => {
    const b = new DeliveryBuffer({ sizeInMBs: 1, intervalInSeconds: 2 });
    expect(b.takeDue(0)).toBeUndefined();
    b.add(bytes(100), 1000);
    expect(b.dueAt()).toBe(3000);
    expect(b.takeDue(2999)).toBeUndefined();
    expect(b.takeDue(3000)?.records).toHaveLength(1);
    b.add(bytes(600 * 1024), 5000);
    expect(b.isDue(5000)).toBe(false);
    b.add(bytes(600 * 1024), 5001);
    const due = b.takeDue(5001);
    // Only what fits the size hint goes into the object; the rest keeps its own arrival time.
    expect(due?.records).toHaveLength(1);
    expect(due?.oldestArrivedAtMs).toBe(5000);
    expect(b.dueAt()).toBe(7001);
  });

  it('for any arrivals and clock, delivers every record once, in order, objects within the size hint, none overdue', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 700 * 1024 }), fc.integer({ min: 0, max: 3000 })), { maxLength: 60 }),
        fc.integer({ min: 0, max: 3 }),
        (arrivals, intervalInSeconds) => {
          const hints = { sizeInMBs: 1, intervalInSeconds };
          const b = new DeliveryBuffer(hints);
          const out: { data: Uint8Array; arrivedAtMs: number; tookAt: number }[][] = [];
          let now = 0;
          let seq = 0;
          const drain = (): void => {
            for (let d = b.takeDue(now); d; d = b.takeDue(now)) out.push(d.records.map((r) => ({ ...r, tookAt: now })));
          };
          for (const [size, wait] of arrivals) {
            // Time passes in steps no larger than the interval: a timer fires at dueAt().
            const at = b.dueAt();
            if (at !== undefined && at < now + wait) {
              now = Math.max(now, at);
              drain();
            }
            now += wait;
            drain();
            b.add(bytes(size, seq++ % 256), now);
            drain();
          }
          const rest = b.takeAll();
          if (rest) out.push(rest.records.map((r) => ({ ...r, tookAt: Infinity })));
          const flat = out.flat();
          expect(flat.map((r) => r.data[0])).toEqual(arrivals.map((_, i) => i % 256));
          for (const object of out) {
            const total = object.reduce((n, r) => n + r.data.length, 0);
            if (object.length > 1) expect(total).toBeLessThanOrEqual(hints.sizeInMBs * 1024 * 1024);
            // Never delivered later than its oldest record's interval (the timer's promise).
            if (object[0]!.tookAt !== Infinity) expect(object[0]!.tookAt).toBeLessThanOrEqual(Math.max(object[0]!.arrivedAtMs + intervalInSeconds * 1000, object.at(-1)!.arrivedAtMs));
          }
        },
      ),
    );
  });
});
