// A local stand-in for Kinesis enhanced fan-out (kinesalite has none): an HTTP/2 server that
// answers SubscribeToShard in the AWS event-stream framing (binary messages: prelude with total
// and headers length and its CRC32, string headers, JSON payload, message CRC32) — first an
// `initial-response`, then `SubscribeToShardEvent`s with Records, ContinuationSequenceNumber and
// MillisBehindLatest — reading the records from kinesalite underneath with GetRecords. A
// subscription ends after `subscriptionMs` (Kinesis: 5 minutes), and one consumer may hold one
// subscription per shard at a time (else ResourceInUseException), as Kinesis does.
import { GetRecordsCommand, GetShardIteratorCommand, type KinesisClient, type ShardIteratorType } from '@aws-sdk/client-kinesis';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { crc32 } from 'node:zlib';

/** One event-stream message with string headers (header value type 7). */
export function eventStreamMessage(headers: Record<string, string>, payload: Uint8Array): Buffer {
  const encodedHeaders = Buffer.concat(
    Object.entries(headers).map(([name, value]) => {
      const n = Buffer.from(name, 'utf8');
      const v = Buffer.from(value, 'utf8');
      const h = Buffer.alloc(1 + n.length + 1 + 2 + v.length);
      h.writeUInt8(n.length, 0);
      n.copy(h, 1);
      h.writeUInt8(7, 1 + n.length);
      h.writeUInt16BE(v.length, 2 + n.length);
      v.copy(h, 4 + n.length);
      return h;
    }),
  );
  const total = 12 + encodedHeaders.length + payload.length + 4;
  const prelude = Buffer.alloc(12);
  prelude.writeUInt32BE(total, 0);
  prelude.writeUInt32BE(encodedHeaders.length, 4);
  prelude.writeUInt32BE(crc32(prelude.subarray(0, 8)), 8);
  const body = Buffer.concat([prelude, encodedHeaders, Buffer.from(payload)]);
  const trailer = Buffer.alloc(4);
  trailer.writeUInt32BE(crc32(body), 0);
  return Buffer.concat([body, trailer]);
}

const event = (type: string, payload: unknown) => eventStreamMessage({ ':message-type': 'event', ':event-type': type, ':content-type': 'application/json' }, Buffer.from(JSON.stringify(payload)));

export interface FanOutStandIn {
  url: string;
  /** Subscriptions opened so far (renewals included). */
  subscriptions(): number;
  close(): Promise<void>;
}

export async function startFanOutStandIn(opts: { kinesis: KinesisClient; streamName: string; subscriptionMs?: number; pollMs?: number }): Promise<FanOutStandIn> {
  const subscriptionMs = opts.subscriptionMs ?? 300_000;
  const pollMs = opts.pollMs ?? 50;
  const open = new Set<string>();
  let count = 0;
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      if (headers['x-amz-target'] !== 'Kinesis_20131202.SubscribeToShard') return fail(stream, 400, 'InvalidArgumentException', `the stand-in answers SubscribeToShard only, not ${String(headers['x-amz-target'])}`);
      const req = JSON.parse(Buffer.concat(chunks).toString() || '{}') as { ConsumerARN: string; ShardId: string; StartingPosition: { Type: ShardIteratorType; SequenceNumber?: string } };
      const key = `${req.ConsumerARN} ${req.ShardId}`;
      if (open.has(key)) return fail(stream, 400, 'ResourceInUseException', `${req.ConsumerARN} already has a subscription to ${req.ShardId}`);
      open.add(key);
      count += 1;
      stream.once('close', () => open.delete(key));
      stream.respond({ ':status': 200, 'content-type': 'application/vnd.amazon.eventstream' });
      stream.write(event('initial-response', {}));
      void pump(stream, req, Date.now() + subscriptionMs).catch(() => stream.close());
    });
  });

  async function pump(stream: http2.ServerHttp2Stream, req: { ShardId: string; StartingPosition: { Type: ShardIteratorType; SequenceNumber?: string } }, until: number): Promise<void> {
    const first = await opts.kinesis.send(new GetShardIteratorCommand({ StreamName: opts.streamName, ShardId: req.ShardId, ShardIteratorType: req.StartingPosition.Type, ...(req.StartingPosition.SequenceNumber ? { StartingSequenceNumber: req.StartingPosition.SequenceNumber } : {}) }));
    let iterator = first.ShardIterator;
    let continuation = req.StartingPosition.Type === 'AFTER_SEQUENCE_NUMBER' ? req.StartingPosition.SequenceNumber : undefined;
    while (!stream.closed && Date.now() < until) {
      const out = await opts.kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
      const records = out.Records ?? [];
      if (records.length > 0) continuation = records.at(-1)!.SequenceNumber;
      iterator = out.NextShardIterator;
      if (!iterator) {
        // Closed and read to its end: no continuation, the children named.
        stream.end(event('SubscribeToShardEvent', { Records: wire(records), MillisBehindLatest: 0, ChildShards: [] }));
        return;
      }
      // An event only once there is a position to continue from (Kinesis always has one).
      if (continuation && !stream.closed) stream.write(event('SubscribeToShardEvent', { Records: wire(records), ContinuationSequenceNumber: continuation, MillisBehindLatest: out.MillisBehindLatest ?? 0 }));
      if (records.length === 0) await new Promise((r) => setTimeout(r, pollMs));
    }
    if (!stream.closed) stream.end();
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    subscriptions: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function wire(records: { SequenceNumber?: string; PartitionKey?: string; Data?: Uint8Array; ApproximateArrivalTimestamp?: Date }[]) {
  return records.map((r) => ({ SequenceNumber: r.SequenceNumber, PartitionKey: r.PartitionKey, Data: Buffer.from(r.Data ?? []).toString('base64'), ApproximateArrivalTimestamp: (r.ApproximateArrivalTimestamp?.getTime() ?? Date.now()) / 1000 }));
}

function fail(stream: http2.ServerHttp2Stream, status: number, type: string, message: string): void {
  stream.respond({ ':status': status, 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': type });
  stream.end(JSON.stringify({ __type: type, message }));
}
