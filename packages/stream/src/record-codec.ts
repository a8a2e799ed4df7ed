// Kinesis record Data forms of the change stream (schemas/CONTRACTS.md "Kinesis record format"):
//   1. plain       — the UTF-8 JSON of one envelope (first byte `{`)
//   2. aggregated  — a KPL aggregated record (magic F3 89 9A C2, protobuf, MD5 trailer) holding
//                    several envelopes of one partition key, in order; built as `aws-kinesis-agg`
//                    builds it and read with it, so KCL/Lambda de-aggregation reads the same bytes
//   3. compressed  — gzip (magic 1F 8B) or zstd (magic 28 B5 2F FD) of form 1 or 2.
// Node 20's zlib has no zstd, so zstd comes from @bokuweb/zstd-wasm (the reference C library
// built to WebAssembly: no native addon, no install script), loaded when this module is.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { constants as zlib, gunzipSync, gzipSync } from 'node:zlib';
import { TaskflowError } from '../../../lib/errors.js';

/** Kinesis limit for one record: Data plus partition key. */
export const KINESIS_MAX_RECORD_BYTES = 1024 * 1024;
/** Upper bound for a decompressed record, so a corrupt or hostile frame cannot exhaust memory. */
export const MAX_DECOMPRESSED_BYTES = 16 * 1024 * 1024;

const KPL_MAGIC = [0xf3, 0x89, 0x9a, 0xc2] as const;
const GZIP_MAGIC = [0x1f, 0x8b] as const;
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd] as const;
const MD5_BYTES = 16;

export type Compression = 'none' | 'gzip' | 'zstd';
export const COMPRESSIONS: readonly Compression[] = ['none', 'gzip', 'zstd'];
export type RecordForm = 'plain' | 'aggregated' | 'gzip' | 'zstd';

// aws-kinesis-agg ships CommonJS with typings that import packages we do not install
// (aws-sdk v2, aws-lambda); this is the part of its API we use, typed here (the tests also build
// records with its RecordAggregator, to compare).
interface KplModule {
  deaggregateSync(
    record: { partitionKey: string; data: string; sequenceNumber?: string },
    computeChecksums: boolean,
    done: (err: Error | null | undefined, userRecords?: { data: string }[]) => void,
  ): void;
}
const require = createRequire(import.meta.url);
const kpl = require('aws-kinesis-agg') as KplModule;

// The part of @bokuweb/zstd-wasm's API we use (its typings describe the browser build).
interface ZstdModule {
  init(): Promise<void>;
  createCCtx(): number;
  compressUsingDict(cctx: number, data: Uint8Array, dict: Uint8Array, level: number): Uint8Array;
  createDCtx(): number;
  decompressUsingDict(dctx: number, data: Uint8Array, dict: Uint8Array): Uint8Array;
}
const zstd = require('@bokuweb/zstd-wasm') as ZstdModule;
await zstd.init();
/** Level 1: on envelope JSON, 13.6× for about the CPU of gzip level 1 (11.3×). */
const ZSTD_LEVEL = 1;
// One compression and one decompression context for the process, reused by every record:
// zstd's one-shot compress() and decompress() create and free one per call, which costs more
// than compressing a small record (a 3 KB record: 22 µs per call, 11 µs with the context kept;
// the frames are byte for byte the same). Single-threaded JavaScript uses one at a time.
const NO_DICTIONARY = new Uint8Array(0);
const zstdCompressor = zstd.createCCtx();
const zstdDecompressor = zstd.createDCtx();

function startsWith(data: Uint8Array, magic: readonly number[]): boolean {
  if (data.length < magic.length) return false;
  return magic.every((b, i) => data[i] === b);
}

function corrupt(message: string, cause?: unknown): TaskflowError {
  return new TaskflowError('RECORD_CORRUPT', message, cause === undefined ? {} : { cause });
}

export function detectForm(data: Uint8Array): RecordForm {
  if (startsWith(data, GZIP_MAGIC)) return 'gzip';
  if (startsWith(data, KPL_MAGIC)) return 'aggregated';
  if (data[0] === 0x7b /* { */) return 'plain';
  if (startsWith(data, ZSTD_MAGIC)) return 'zstd';
  const head = Buffer.from(data.subarray(0, 4)).toString('hex');
  throw corrupt(`unknown record form (first bytes ${head || 'none: empty record'})`);
}

/**
 * Form 3 from an already encoded form 1 or 2 record (identity for 'none'). Level 1: on envelope
 * JSON it compresses within 4% of the default level 6 (11.2× vs 11.6×) for half the CPU, and
 * capture compresses on its one hot thread.
 */
export function compressRecord(data: Uint8Array, compression: Compression): Buffer {
  const buf = asBuffer(data);
  if (compression === 'gzip') return gzipSync(buf, { level: zlib.Z_BEST_SPEED });
  if (compression === 'zstd') return asBuffer(zstd.compressUsingDict(zstdCompressor, buf, NO_DICTIONARY, ZSTD_LEVEL));
  return buf;
}

/** The same bytes as a Buffer, without copying them. */
function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** Form 1 (or 3 when compressed): one envelope's JSON bytes. */
export function encodePlain(userRecord: Uint8Array, compression: Compression = 'none'): Buffer {
  if (userRecord[0] !== 0x7b) throw new TaskflowError('RECORD_INVALID', 'a plain record must be a JSON object');
  return compressRecord(userRecord, compression);
}

/**
 * Form 2 (or 3 when compressed): several envelopes of one partition key, in order. Written here
 * into one buffer, byte for byte what aws-kinesis-agg's RecordAggregator builds (checked by the
 * tests): the library goes through protobufjs objects and copies every record twice more.
 */
export function encodeAggregated(partitionKey: string, userRecords: readonly Uint8Array[], compression: Compression = 'none'): Buffer {
  if (userRecords.length === 0) throw new TaskflowError('RECORD_INVALID', 'an aggregated record needs at least one user record');
  if (partitionKey === '') throw new TaskflowError('RECORD_INVALID', 'an aggregated record needs a partition key');
  const size = new AggregatedSize(partitionKey);
  for (const r of userRecords) size.add(r.length);
  const out = Buffer.allocUnsafe(size.total);
  let at = 0;
  for (const b of KPL_MAGIC) out[at++] = b;
  // AggregatedRecord: partition_key_table (field 1) holds the one key; records (field 3), each
  // Record {partition_key_index (1) = 0, data (3)}; no explicit hash keys, no tags.
  out[at++] = 0x0a;
  at = writeVarint(out, at, Buffer.byteLength(partitionKey));
  at += out.write(partitionKey, at);
  for (const r of userRecords) {
    out[at++] = 0x1a;
    at = writeVarint(out, at, 3 + varintSize(r.length) + r.length);
    out[at++] = 0x08;
    out[at++] = 0x00;
    out[at++] = 0x1a;
    at = writeVarint(out, at, r.length);
    out.set(r, at);
    at += r.length;
  }
  createHash('md5').update(out.subarray(KPL_MAGIC.length, at)).digest().copy(out, at);
  return compressRecord(out, compression);
}

function writeVarint(out: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 0x80);
  }
  out[at++] = n;
  return at;
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size += 1;
  }
  return size;
}

/**
 * Incremental size of an uncompressed aggregated record with a single partition key, matching
 * the protobuf layout aws-kinesis-agg writes (checked by the tests), so a producer can pack
 * user records up to the Kinesis limit without building the record each time.
 */
export class AggregatedSize {
  private bytes: number;
  constructor(partitionKey: string) {
    const pk = Buffer.byteLength(partitionKey);
    this.bytes = KPL_MAGIC.length + MD5_BYTES + 1 + varintSize(pk) + pk;
  }
  /** Bytes one more user record of `dataLength` bytes adds. */
  static recordCost(dataLength: number): number {
    const inner = 1 + 1 /* partition_key_index 0 */ + 1 + varintSize(dataLength) + dataLength;
    return 1 + varintSize(inner) + inner;
  }
  add(dataLength: number): void {
    this.bytes += AggregatedSize.recordCost(dataLength);
  }
  get total(): number {
    return this.bytes;
  }
}

function deaggregate(data: Buffer): Uint8Array[] {
  if (data.length < KPL_MAGIC.length + MD5_BYTES) throw corrupt('aggregated record is truncated');
  let failure: Error | undefined;
  let records: { data: string }[] = [];
  kpl.deaggregateSync({ partitionKey: '', data: data.toString('base64') }, true, (err, userRecords) => {
    // deaggregateSync may call back twice on a bad user record; keep the first error.
    if (err && !failure) failure = err;
    if (userRecords) records = userRecords;
  });
  if (failure) throw corrupt(`aggregated record is corrupt: ${failure.message}`, failure);
  return records.map((r) => Buffer.from(r.data, 'base64'));
}

/**
 * The user records (envelope JSON bytes) in a Kinesis record's Data, in order. Throws
 * TaskflowError RECORD_CORRUPT (not retriable) for anything that is not one of the forms.
 */
export function decodeRecord(data: Uint8Array): Uint8Array[] {
  const buf = asBuffer(data);
  const form = detectForm(buf);
  if (form === 'plain') return [buf];
  if (form === 'aggregated') return deaggregate(buf);
  const inner = form === 'gzip' ? gunzip(buf) : unzstd(buf);
  const innerForm = detectForm(inner);
  if (innerForm === 'gzip' || innerForm === 'zstd') throw corrupt(`${form} record contains another compressed frame (${innerForm})`);
  return innerForm === 'plain' ? [inner] : deaggregate(inner);
}

function gunzip(buf: Buffer): Buffer {
  try {
    return gunzipSync(buf, { maxOutputLength: MAX_DECOMPRESSED_BYTES });
  } catch (err) {
    throw corrupt(`gzip record does not decompress: ${(err as Error).message}`, err);
  }
}

/** A zstd frame's content, bounded as a record's (its header's content size checked first). */
export function decompressZstd(data: Uint8Array): Buffer {
  return unzstd(asBuffer(data));
}

function unzstd(buf: Buffer): Buffer {
  // The library allocates what the frame header claims: check the claim before believing it.
  const size = zstdContentSize(buf);
  if (size === undefined) throw corrupt('zstd record has no content size in its frame header (capture always writes one)');
  if (size > MAX_DECOMPRESSED_BYTES) throw corrupt(`zstd record claims ${size} bytes decompressed, more than the ${MAX_DECOMPRESSED_BYTES} allowed`);
  let out: Uint8Array;
  try {
    out = zstd.decompressUsingDict(zstdDecompressor, buf, NO_DICTIONARY);
  } catch (err) {
    throw corrupt(`zstd record does not decompress: ${(err as Error).message}`, err);
  }
  if (out.length !== size) throw corrupt(`zstd record decompressed to ${out.length} bytes, its header says ${size}`);
  return asBuffer(out);
}

/** Frame_Content_Size of a zstd frame (RFC 8878 §3.1.1.1), undefined when the frame omits it. */
export function zstdContentSize(frame: Uint8Array): number | undefined {
  const descriptor = frame[4];
  if (descriptor === undefined) throw corrupt('zstd record is truncated');
  const fcsFlag = descriptor >> 6;
  const singleSegment = (descriptor >> 5) & 1;
  const dictionaryIdBytes = [0, 1, 2, 4][descriptor & 3]!;
  const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag]!;
  if (fcsBytes === 0) return undefined;
  const at = 5 + (singleSegment ? 0 : 1) + dictionaryIdBytes;
  if (frame.length < at + fcsBytes) throw corrupt('zstd record is truncated');
  const view = asBuffer(frame);
  if (fcsBytes === 1) return view.readUInt8(at);
  if (fcsBytes === 2) return view.readUInt16LE(at) + 256;
  if (fcsBytes === 4) return view.readUInt32LE(at);
  return Number(view.readBigUInt64LE(at));
}
