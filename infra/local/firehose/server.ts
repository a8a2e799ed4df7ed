// A local Firehose: the part of the Firehose JSON API (1.1, target prefix Firehose_20150804) that
// @aws-sdk/client-firehose uses for Direct PUT streams with an S3 destination — PutRecordBatch,
// PutRecord, DescribeDeliveryStream, CreateDeliveryStream, DeleteDeliveryStream, ListDeliveryStreams
// — delivering like Firehose (delivery.ts: buffering hints, GZIP or UNCOMPRESSED, FileExtension,
// key layout) into an ObjectStore
// per bucket. Acknowledged records are held in memory until delivered (Firehose keeps them
// durably): stop() delivers what is buffered, a killed stand-in loses it.
//
// Faults for tests: `faults.throttleCall` fails a whole call with ServiceUnavailableException
// (Firehose's throttling), `faults.failRecord` fails single records of a PutRecordBatch with the
// error code it returns (FailedPutCount > 0). An object that cannot be written is retried with
// backoff for `retryDurationMs`, then written under the error prefix (`S3.PutObject/…`).
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import type { ObjectStore } from '../../../lib/object-store.js';
import { retry } from '../../../lib/retry.js';
import { listen } from '../processes.js';
import { type BufferingHints, DeliveryBuffer, type DueObject, errorObjectKey, FIREHOSE_LIMITS, type FirehoseLimits, fileExtension, limitViolation, maxRequestBytes, objectKey, type Refusal, tooLargeCall } from './delivery.js';

export interface DeliveryStreamConfig {
  name: string;
  bucket: string;
  /** Key prefix of delivered objects, e.g. 'raw/'. */
  prefix: string;
  errorPrefix: string;
  hints: BufferingHints;
  compression: 'GZIP' | 'UNCOMPRESSED';
  /** Firehose's FileExtension (e.g. '.gz' for records the producer gzipped); default `.gz` with GZIP, none otherwise. */
  fileExtension?: string;
}

export interface FirehoseFaults {
  /** True fails the whole call with ServiceUnavailableException ("Slow down."). */
  throttleCall?(operation: string, streamName: string): boolean;
  /** An error code (e.g. 'ServiceUnavailableException') fails this record of a PutRecordBatch. */
  failRecord?(streamName: string, data: Uint8Array, index: number): string | undefined;
}

export interface FirehoseOptions {
  /** The object store of a bucket (a folder of the local S3, an S3 bucket …). */
  store(bucket: string): ObjectStore;
  streams?: readonly DeliveryStreamConfig[];
  faults?: FirehoseFaults;
  /** How long a failing object write is retried before it goes to the error prefix (Firehose: up to 24 h). */
  retryDurationMs?: number;
  now?: () => number;
  region?: string;
  /** Firehose's limits unless set: a stricter stand-in shows how a producer takes a refusal. */
  limits?: Partial<FirehoseLimits>;
}

export interface LocalFirehose {
  endpoint: string;
  server: Server;
  /** Delivers everything buffered now (due or not); resolves once written. */
  flush(streamName?: string): Promise<void>;
  /** Objects delivered so far, per stream (counts the error prefix too). */
  delivered(streamName: string): number;
  stop(): Promise<void>;
}

const TARGET_PREFIX = 'Firehose_20150804.';
const ACCOUNT = '000000000000';

class ApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

class DeliveryStream {
  readonly buffer: DeliveryBuffer;
  readonly createdAt = new Date();
  delivered = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Objects are written one after another, so they land in arrival order. */
  private writing: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    readonly config: DeliveryStreamConfig,
    private readonly store: ObjectStore,
    private readonly now: () => number,
    private readonly retryDurationMs: number,
  ) {
    this.buffer = new DeliveryBuffer(config.hints);
  }

  add(records: readonly Uint8Array[]): void {
    const now = this.now();
    for (const r of records) this.buffer.add(r, now);
    this.schedule();
  }

  flush(): Promise<void> {
    const all = this.buffer.takeAll();
    if (all) this.enqueue(all);
    return this.writing;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.flush();
  }

  private schedule(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (let due = this.buffer.takeDue(this.now()); due; due = this.buffer.takeDue(this.now())) this.enqueue(due);
    const at = this.buffer.dueAt();
    if (at !== undefined) this.timer = setTimeout(() => this.schedule(), Math.max(0, at - this.now()));
  }

  private enqueue(due: DueObject): void {
    this.writing = this.writing.then(() => this.write(due));
  }

  private async write(due: DueObject): Promise<void> {
    const body = Buffer.concat(due.records.map((r) => r.data));
    const gzip = this.config.compression === 'GZIP';
    const keyParts = { streamName: this.config.name, version: 1, oldestArrivedAtMs: due.oldestArrivedAtMs, uuid: randomUUID(), extension: fileExtension(this.config.compression, this.config.fileExtension) };
    const bytes = gzip ? gzipSync(body, { level: 1 }) : body;
    const started = this.now();
    try {
      await retry(() => this.store.put(objectKey({ ...keyParts, prefix: this.config.prefix }), bytes), {
        policy: { baseMs: 50, maxMs: 2_000 },
        shouldRetry: () => this.now() - started < this.retryDurationMs,
      });
    } catch (err) {
      console.error(`firehose ${this.config.name}: delivery failed for ${this.retryDurationMs} ms, writing to the error prefix:`, (err as Error).message);
      await this.writeError(keyParts, bytes);
    }
    this.delivered++;
  }

  /** Like Firehose, an undeliverable object is kept under the error prefix; if even that fails, keep trying. */
  private async writeError(keyParts: Omit<Parameters<typeof objectKey>[0], 'prefix'>, bytes: Uint8Array): Promise<void> {
    await retry(() => this.store.put(errorObjectKey({ ...keyParts, prefix: '', errorPrefix: this.config.errorPrefix, errorType: 'S3.PutObject' }), bytes), {
      policy: { baseMs: 100, maxMs: 5_000 },
      shouldRetry: () => true,
    });
  }

  describe(region: string): Record<string, unknown> {
    const c = this.config;
    return {
      DeliveryStreamName: c.name,
      DeliveryStreamARN: `arn:aws:firehose:${region}:${ACCOUNT}:deliverystream/${c.name}`,
      DeliveryStreamStatus: 'ACTIVE',
      DeliveryStreamType: 'DirectPut',
      VersionId: '1',
      CreateTimestamp: this.createdAt.getTime() / 1000,
      Destinations: [
        {
          DestinationId: 'destinationId-000000000001',
          ExtendedS3DestinationDescription: {
            BucketARN: `arn:aws:s3:::${c.bucket}`,
            RoleARN: `arn:aws:iam::${ACCOUNT}:role/firehose-local`,
            Prefix: c.prefix,
            ErrorOutputPrefix: c.errorPrefix,
            BufferingHints: { SizeInMBs: c.hints.sizeInMBs, IntervalInSeconds: c.hints.intervalInSeconds },
            CompressionFormat: c.compression,
            ...(c.fileExtension !== undefined ? { FileExtension: c.fileExtension } : {}),
            EncryptionConfiguration: { NoEncryptionConfig: 'NoEncryption' },
          },
        },
      ],
      HasMoreDestinations: false,
    };
  }
}

/**
 * The request body, or — once it outgrows the largest legal call — the refusal, decided while it
 * streams: nothing more is buffered, the rest is read and dropped so the client gets the answer
 * (Firehose's) rather than a reset connection.
 */
function readBody(req: IncomingMessage, maxBytes: number, refusal: Refusal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      if (bytes <= maxBytes) chunks.push(c);
      else chunks.length = 0;
    });
    req.on('end', () => (bytes <= maxBytes ? resolve(Buffer.concat(chunks)) : reject(new ApiError(refusal.type, refusal.message))));
    req.on('error', reject);
  });
}

function decodeData(data: unknown, where: string): Uint8Array {
  if (typeof data !== 'string') throw new ApiError('InvalidArgumentException', `${where}.Data must be a base64 string`);
  return Buffer.from(data, 'base64');
}

function recordId(): string {
  return randomUUID().replace(/-/g, '') + randomUUID().replace(/-/g, '');
}

export async function startFirehose(options: FirehoseOptions, port = 0): Promise<LocalFirehose> {
  const now = options.now ?? Date.now;
  const region = options.region ?? 'us-east-1';
  const retryDurationMs = options.retryDurationMs ?? 300_000;
  const limits: FirehoseLimits = { ...FIREHOSE_LIMITS, ...options.limits };
  const refuseBeyondLimits = (refusal: Refusal | undefined): void => {
    if (refusal) throw new ApiError(refusal.type, refusal.message);
  };
  const streams = new Map<string, DeliveryStream>();
  const create = (config: DeliveryStreamConfig): void => {
    if (streams.has(config.name)) throw new ApiError('ResourceInUseException', `Firehose ${config.name} under account ${ACCOUNT} already exists.`);
    streams.set(config.name, new DeliveryStream(config, options.store(config.bucket), now, retryDurationMs));
  };
  for (const s of options.streams ?? []) create(s);

  const streamOf = (body: Record<string, unknown>): DeliveryStream => {
    const name = body.DeliveryStreamName;
    const stream = typeof name === 'string' ? streams.get(name) : undefined;
    if (!stream) throw new ApiError('ResourceNotFoundException', `Firehose ${String(name)} under account ${ACCOUNT} not found.`);
    return stream;
  };
  const throttle = (op: string, stream: DeliveryStream): void => {
    if (options.faults?.throttleCall?.(op, stream.config.name)) throw new ApiError('ServiceUnavailableException', 'Slow down.', 503);
  };

  const operations: Record<string, (body: Record<string, unknown>) => unknown> = {
    PutRecordBatch(body) {
      const stream = streamOf(body);
      if (!Array.isArray(body.Records)) throw new ApiError('InvalidArgumentException', 'Records is required');
      const records = body.Records.map((r: { Data?: unknown }, i) => decodeData(r?.Data, `Records.${i}`));
      refuseBeyondLimits(limitViolation(records.map((r) => r.length), 'records', limits));
      throttle('PutRecordBatch', stream);
      const accepted: Uint8Array[] = [];
      const responses = records.map((data, i) => {
        const code = options.faults?.failRecord?.(stream.config.name, data, i);
        if (code) return { ErrorCode: code, ErrorMessage: code === 'ServiceUnavailableException' ? 'Slow down.' : 'Injected failure.' };
        accepted.push(data);
        return { RecordId: recordId() };
      });
      stream.add(accepted);
      return { FailedPutCount: records.length - accepted.length, Encrypted: false, RequestResponses: responses };
    },
    PutRecord(body) {
      const stream = streamOf(body);
      const data = decodeData((body.Record as { Data?: unknown } | undefined)?.Data, 'Record');
      refuseBeyondLimits(limitViolation([data.length], 'record', limits));
      throttle('PutRecord', stream);
      stream.add([data]);
      return { RecordId: recordId(), Encrypted: false };
    },
    DescribeDeliveryStream(body) {
      return { DeliveryStreamDescription: streamOf(body).describe(region) };
    },
    ListDeliveryStreams() {
      return { DeliveryStreamNames: [...streams.keys()].sort(), HasMoreDeliveryStreams: false };
    },
    CreateDeliveryStream(body) {
      const name = body.DeliveryStreamName;
      const s3 = body.ExtendedS3DestinationConfiguration as
        | { BucketARN?: string; Prefix?: string; ErrorOutputPrefix?: string; BufferingHints?: { SizeInMBs?: number; IntervalInSeconds?: number }; CompressionFormat?: string; FileExtension?: string }
        | undefined;
      if (typeof name !== 'string' || !/^[a-zA-Z0-9._-]{1,64}$/.test(name)) throw new ApiError('InvalidArgumentException', 'DeliveryStreamName must match [a-zA-Z0-9._-]{1,64}');
      const bucket = /^arn:aws:s3:::([^/]+)$/.exec(s3?.BucketARN ?? '')?.[1];
      if (!s3 || !bucket) throw new ApiError('InvalidArgumentException', 'ExtendedS3DestinationConfiguration with a BucketARN (arn:aws:s3:::bucket) is required');
      if (s3.CompressionFormat !== undefined && s3.CompressionFormat !== 'GZIP' && s3.CompressionFormat !== 'UNCOMPRESSED') {
        throw new ApiError('InvalidArgumentException', `CompressionFormat ${s3.CompressionFormat} is not supported by the local Firehose (GZIP, UNCOMPRESSED)`);
      }
      // Firehose's FileExtension pattern: empty, or a dot and then [0-9a-z!-_.*'()].
      if (s3.FileExtension !== undefined && !/^$|^\.[0-9a-z!\-_.*'()]+$/.test(s3.FileExtension)) throw new ApiError('InvalidArgumentException', `FileExtension ${s3.FileExtension} must match ^$|\\.[0-9a-z!\\-_.*'()]+`);
      create({
        name,
        bucket,
        prefix: s3.Prefix ?? '',
        errorPrefix: s3.ErrorOutputPrefix ?? 'errors/',
        hints: { sizeInMBs: s3.BufferingHints?.SizeInMBs ?? 5, intervalInSeconds: s3.BufferingHints?.IntervalInSeconds ?? 300 },
        compression: s3.CompressionFormat ?? 'UNCOMPRESSED',
        ...(s3.FileExtension !== undefined ? { fileExtension: s3.FileExtension } : {}),
      });
      return { DeliveryStreamARN: `arn:aws:firehose:${region}:${ACCOUNT}:deliverystream/${name}` };
    },
    async DeleteDeliveryStream(body) {
      const stream = streamOf(body);
      streams.delete(stream.config.name);
      await stream.stop();
      return {};
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const reply = (status: number, payload: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify(payload));
    };
    try {
      const target = req.headers['x-amz-target'];
      const op = typeof target === 'string' && target.startsWith(TARGET_PREFIX) ? operations[target.slice(TARGET_PREFIX.length)] : undefined;
      if (req.method !== 'POST' || !op) throw new ApiError('UnknownOperationException', `unsupported operation ${String(target)}`);
      let body: unknown;
      try {
        body = JSON.parse((await readBody(req, maxRequestBytes(limits), tooLargeCall(limits))).toString('utf8'));
      } catch (err) {
        throw err instanceof ApiError ? err : new ApiError('SerializationException', 'request body is not JSON');
      }
      if (typeof body !== 'object' || body === null) throw new ApiError('SerializationException', 'request body is not a JSON object');
      reply(200, await op(body as Record<string, unknown>));
    } catch (err) {
      if (err instanceof ApiError) reply(err.status, { __type: err.type, message: err.message });
      else reply(500, { __type: 'InternalFailure', message: (err as Error).message });
    }
  };

  const server = createServer((req, res) => void handle(req, res));
  const bound = await listen(server, port);
  return {
    endpoint: `http://127.0.0.1:${bound}`,
    server,
    async flush(streamName) {
      await Promise.all([...streams.values()].filter((s) => streamName === undefined || s.config.name === streamName).map((s) => s.flush()));
    },
    delivered: (name) => streams.get(name)?.delivered ?? 0,
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await Promise.all([...streams.values()].map((s) => s.stop()));
    },
  };
}
