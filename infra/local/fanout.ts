// The local stand-in for Kinesis enhanced fan-out (kinesalite has none): an HTTP/2 server that
// answers SubscribeToShard in the AWS event-stream framing (binary messages: prelude with total
// and headers length and its CRC32, string headers, JSON payload, message CRC32) — first an
// `initial-response`, then `SubscribeToShardEvent`s with Records, ContinuationSequenceNumber and
// MillisBehindLatest — reading the records from kinesalite underneath with GetRecords, and the
// consumer registry (RegisterStreamConsumer, DescribeStreamConsumer, ListStreamConsumers,
// DeregisterStreamConsumer) that production's stream stack fills (efo_consumers).
// Where it matters to a reader it behaves as Kinesis does (test/integration/fanout-standin.test.ts):
// - only a registered consumer may subscribe (else ResourceNotFoundException); the stream is the ARN's;
// - a subscription ends after `subscriptionMs` (Kinesis: 5 minutes) and the reader renews it;
// - a second subscription of one consumer to one shard within 5 s of the last is refused
//   (ResourceInUseException); a later one takes over, and the earlier one ends with that exception;
// - a closed shard read to its end gets a last event without continuation, naming its child shards;
// - MillisBehindLatest is kinesalite's; a reader that does not read stops the pushing (HTTP/2 flow control).
// Records: in the stack (`wake`, called when kinesalite answered a put) a subscription reads as soon
// as there is something new, as Kinesis pushes; without it, it looks every `pollMs`.
import { GetRecordsCommand, GetShardIteratorCommand, KinesisClient, ListShardsCommand, ResourceInUseException, RegisterStreamConsumerCommand, DescribeStreamConsumerCommand, type ShardIteratorType, type Shard } from '@aws-sdk/client-kinesis';
import { NodeHttp2Handler } from '@smithy/node-http-handler';
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
/** Still ours to write to (a takeover ends it while its pump may be waiting). */
const live = (s: http2.ServerHttp2Stream) => !s.closed && !s.writableEnded;
const exception = (type: string, message: string) => eventStreamMessage({ ':message-type': 'exception', ':exception-type': type, ':content-type': 'application/json' }, Buffer.from(JSON.stringify({ message })));

/** Kinesis refuses a consumer's second subscription to a shard this soon after the last one; later, the new one takes over. */
export const TAKEOVER_AFTER_MS = 5_000;
const ACCOUNT = '000000000000'; // kinesalite's default account
const STREAM_ARN = /^arn:aws:kinesis:([^:]+):(\d+):stream\/([^/]+)$/;

export function streamArn(region: string, streamName: string): string {
  return `arn:aws:kinesis:${region}:${ACCOUNT}:stream/${streamName}`;
}

export interface FanOutStandIn {
  url: string;
  /** Subscriptions opened so far (renewals included). */
  subscriptions(): number;
  /** Subscriptions waiting for their reader to take what was pushed (HTTP/2 flow control). */
  backlogged(): number;
  /** New records may be on the stream: subscriptions waiting for some read now. */
  wake(): void;
  close(): Promise<void>;
}

interface Consumer {
  ConsumerName: string;
  ConsumerARN: string;
  ConsumerStatus: 'ACTIVE';
  ConsumerCreationTimestamp: number;
  StreamARN: string;
}

interface Subscription {
  stream: http2.ServerHttp2Stream;
  startedAt: number;
}

export interface FanOutOptions {
  /** A client of kinesalite, where the records are read. */
  kinesis: KinesisClient;
  /** How long a subscription lasts (Kinesis: 5 minutes); takeovers are allowed after min(5 s, this). */
  subscriptionMs?: number;
  /** With nothing new: how long until a subscription looks again (without `wake`, the push latency). */
  pollMs?: number;
}

export async function startFanOutStandIn(opts: FanOutOptions, port = 0): Promise<FanOutStandIn> {
  const subscriptionMs = opts.subscriptionMs ?? 300_000;
  const pollMs = opts.pollMs ?? 50;
  const takeoverAfterMs = Math.min(TAKEOVER_AFTER_MS, subscriptionMs);
  const consumers = new Map<string, Consumer>();
  const open = new Map<string, Subscription>();
  let subscriptions = 0;
  let backlogged = 0;
  // Subscriptions waiting for new records; a generation so that a wake during a read is not missed.
  let generation = 0;
  const waiting = new Set<() => void>();
  const wake = () => {
    generation += 1;
    for (const w of waiting) w();
    waiting.clear();
  };
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
      const target = String(headers['x-amz-target']).replace(/^Kinesis_20131202\./, '');
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, unknown>;
      } catch {
        return fail(stream, 400, 'SerializationException', 'the body is not JSON');
      }
      if (target === 'SubscribeToShard') return subscribe(stream, body as unknown as SubscribeRequest);
      const answer = control(target, body);
      if ('error' in answer) return fail(stream, 400, answer.error, answer.message);
      stream.respond({ ':status': 200, 'content-type': 'application/x-amz-json-1.1' });
      stream.end(JSON.stringify(answer.ok));
    });
  });

  /** The consumer registry, as the stream's control plane answers it (consumers are ACTIVE at once, as kinesalite's streams). */
  function control(target: string, body: Record<string, unknown>): { ok: unknown } | { error: string; message: string } {
    const byName = (s: unknown, name: unknown) => [...consumers.values()].find((c) => c.StreamARN === s && c.ConsumerName === name);
    const found = (c: Consumer | undefined) => (c ? { ok: { ConsumerDescription: c } } : { error: 'ResourceNotFoundException', message: `consumer ${String(body.ConsumerARN ?? body.ConsumerName)} not found` });
    switch (target) {
      case 'RegisterStreamConsumer': {
        const s = String(body.StreamARN);
        if (!STREAM_ARN.test(s) || typeof body.ConsumerName !== 'string') return { error: 'InvalidArgumentException', message: 'StreamARN and ConsumerName are required' };
        if (byName(s, body.ConsumerName)) return { error: 'ResourceInUseException', message: `consumer ${body.ConsumerName} of ${s} already exists` };
        const created = Math.floor(Date.now() / 1000);
        const c: Consumer = { ConsumerName: body.ConsumerName, ConsumerARN: `${s}/consumer/${body.ConsumerName}:${created}`, ConsumerStatus: 'ACTIVE', ConsumerCreationTimestamp: created, StreamARN: s };
        consumers.set(c.ConsumerARN, c);
        return { ok: { Consumer: c } };
      }
      case 'DescribeStreamConsumer':
        return found(body.ConsumerARN ? consumers.get(String(body.ConsumerARN)) : byName(body.StreamARN, body.ConsumerName));
      case 'ListStreamConsumers':
        return { ok: { Consumers: [...consumers.values()].filter((c) => c.StreamARN === body.StreamARN) } };
      case 'DeregisterStreamConsumer': {
        const c = body.ConsumerARN ? consumers.get(String(body.ConsumerARN)) : byName(body.StreamARN, body.ConsumerName);
        if (!c) return found(c);
        consumers.delete(c.ConsumerARN);
        return { ok: {} };
      }
      default:
        return { error: 'InvalidArgumentException', message: `the stand-in answers SubscribeToShard and the stream consumer calls only, not ${target}` };
    }
  }

  function subscribe(stream: http2.ServerHttp2Stream, req: SubscribeRequest): void {
    const consumer = consumers.get(req.ConsumerARN);
    if (!consumer) return fail(stream, 400, 'ResourceNotFoundException', `consumer ${req.ConsumerARN} is not registered (RegisterStreamConsumer)`);
    const key = `${req.ConsumerARN} ${req.ShardId}`;
    const previous = open.get(key);
    if (previous && Date.now() - previous.startedAt < takeoverAfterMs) return fail(stream, 400, 'ResourceInUseException', `${req.ConsumerARN} subscribed to ${req.ShardId} less than ${takeoverAfterMs / 1000} s ago`);
    if (previous) {
      open.delete(key);
      if (live(previous.stream)) previous.stream.end(exception('ResourceInUseException', `another subscription of ${consumer.ConsumerName} to ${req.ShardId} took over`));
    }
    const mine: Subscription = { stream, startedAt: Date.now() };
    open.set(key, mine);
    subscriptions += 1;
    stream.once('close', () => {
      if (open.get(key) === mine) open.delete(key);
    });
    stream.respond({ ':status': 200, 'content-type': 'application/vnd.amazon.eventstream' });
    stream.write(event('initial-response', {}));
    const streamName = STREAM_ARN.exec(consumer.StreamARN)![3]!;
    void pump(stream, streamName, req, Date.now() + subscriptionMs).catch((err: unknown) => {
      if (live(stream)) stream.end(exception((err as { name?: string }).name ?? 'InternalFailure', (err as Error).message));
    });
  }

  /** Writes one message, waiting while the reader's HTTP/2 window is full: a reader that does not read is not pushed to. */
  async function send(stream: http2.ServerHttp2Stream, message: Buffer): Promise<void> {
    if (stream.write(message)) return;
    backlogged += 1;
    await new Promise<void>((resolve) => {
      const done = () => {
        backlogged -= 1;
        stream.off('drain', done);
        stream.off('close', done);
        resolve();
      };
      stream.on('drain', done);
      stream.on('close', done);
    });
  }

  async function pump(stream: http2.ServerHttp2Stream, streamName: string, req: SubscribeRequest, until: number): Promise<void> {
    const first = await opts.kinesis.send(new GetShardIteratorCommand({ StreamName: streamName, ShardId: req.ShardId, ShardIteratorType: req.StartingPosition.Type, ...(req.StartingPosition.SequenceNumber ? { StartingSequenceNumber: req.StartingPosition.SequenceNumber } : {}) }));
    let iterator = first.ShardIterator;
    let continuation = req.StartingPosition.Type === 'AFTER_SEQUENCE_NUMBER' ? req.StartingPosition.SequenceNumber : undefined;
    while (live(stream) && Date.now() < until) {
      const seen = generation;
      const out = await opts.kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
      const records = out.Records ?? [];
      if (records.length > 0) continuation = records.at(-1)!.SequenceNumber;
      iterator = out.NextShardIterator;
      if (!iterator) {
        // Closed and read to its end: no continuation, the children named.
        if (live(stream)) stream.end(event('SubscribeToShardEvent', { Records: wire(records), MillisBehindLatest: 0, ChildShards: await childShards(streamName, req.ShardId) }));
        return;
      }
      // An event only once there is a position to continue from (Kinesis always has one).
      if (continuation && live(stream)) await send(stream, event('SubscribeToShardEvent', { Records: wire(records), ContinuationSequenceNumber: continuation, MillisBehindLatest: out.MillisBehindLatest ?? 0 }));
      // More is waiting (a full read, or behind): read on; otherwise until something new arrives.
      if (records.length < 1000 && !out.MillisBehindLatest && generation === seen) await idle(Math.min(pollMs, until - Date.now()));
    }
    if (live(stream)) stream.end();
  }

  function idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      waiting.add(done);
    });
  }

  async function childShards(streamName: string, shardId: string): Promise<{ ShardId: string; ParentShards: string[]; HashKeyRange: Shard['HashKeyRange'] }[]> {
    const shards: Shard[] = [];
    let token: string | undefined;
    do {
      const page = await opts.kinesis.send(new ListShardsCommand(token ? { NextToken: token } : { StreamName: streamName }));
      shards.push(...(page.Shards ?? []));
      token = page.NextToken;
    } while (token);
    return shards
      .filter((s) => s.ParentShardId === shardId || s.AdjacentParentShardId === shardId)
      .map((s) => ({ ShardId: s.ShardId!, ParentShards: [s.ParentShardId, s.AdjacentParentShardId].filter((p): p is string => !!p), HashKeyRange: s.HashKeyRange }));
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    subscriptions: () => subscriptions,
    backlogged: () => backlogged,
    wake,
    close: () =>
      new Promise<void>((resolve) => {
        wake();
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}

interface SubscribeRequest {
  ConsumerARN: string;
  ShardId: string;
  StartingPosition: { Type: ShardIteratorType; SequenceNumber?: string };
}

function wire(records: { SequenceNumber?: string; PartitionKey?: string; Data?: Uint8Array; ApproximateArrivalTimestamp?: Date }[]) {
  return records.map((r) => ({ SequenceNumber: r.SequenceNumber, PartitionKey: r.PartitionKey, Data: Buffer.from(r.Data ?? []).toString('base64'), ApproximateArrivalTimestamp: (r.ApproximateArrivalTimestamp?.getTime() ?? Date.now()) / 1000 }));
}

function fail(stream: http2.ServerHttp2Stream, status: number, type: string, message: string): void {
  stream.respond({ ':status': status, 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': type });
  stream.end(JSON.stringify({ __type: type, message }));
}

/**
 * Registers `consumerName` as a stream consumer with the stand-in at `endpoint`, or finds it
 * registered already (as production's stream stack does for efo_consumers); returns its ARN.
 */
export async function registerStreamConsumer(endpoint: string, region: string, streamName: string, consumerName: string): Promise<string> {
  const client = new KinesisClient({ region, endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, requestHandler: new NodeHttp2Handler() });
  const StreamARN = streamArn(region, streamName);
  try {
    const out = await client.send(new RegisterStreamConsumerCommand({ StreamARN, ConsumerName: consumerName }));
    return out.Consumer!.ConsumerARN!;
  } catch (err) {
    if (!(err instanceof ResourceInUseException)) throw err;
    const out = await client.send(new DescribeStreamConsumerCommand({ StreamARN, ConsumerName: consumerName }));
    return out.ConsumerDescription!.ConsumerARN!;
  } finally {
    client.destroy();
  }
}
