// How the archiver packs archive lines into Firehose records, free of I/O: consecutive lines, in
// order, each record one complete gzip member holding whole NDJSON lines. Firehose's S3
// destination is UNCOMPRESSED and concatenates the records as they are, so every object it
// writes is a multi-member gzip file (RFC 1952 §2.2), which gunzip, zlib and DuckDB read whole.
// Firehose bills the bytes it receives, in 5 KB units per record: gzipped, packed records cut
// both the bytes and the rounding.
//
// Packing is by uncompressed size, up to the most whose gzip can never pass Firehose's 1,000 KiB
// per record (zlib's deflate bound): one pass, no trial compression, no record ever refused for
// its size. Packing by compressed size would make records 4-11x larger (fewer calls), but needs
// compressing to know where to stop; at ~90-250 KB per record the 5 KB rounding is already < 3 %.
import { constants, gzipSync } from 'node:zlib';

/** gzip's header (10 bytes, no name or comment) and trailer (CRC-32, size: 8). */
const GZIP_WRAPPER_BYTES = 18;

/**
 * The most a gzip member of `n` bytes of input can take: zlib's deflateBound for its default
 * window and memory level (stored blocks when nothing compresses), with gzip's wrapper.
 */
export function gzipBound(n: number): number {
  return n + Math.floor(n / 4096) + Math.floor(n / 16384) + Math.floor(n / 2 ** 25) + 7 + GZIP_WRAPPER_BYTES;
}

/** The most uncompressed bytes a record may pack so that its gzip stays within `bytesPerRecord`. */
export function packBudget(bytesPerRecord: number): number {
  let n = Math.max(0, Math.floor(((bytesPerRecord - GZIP_WRAPPER_BYTES - 7) * 16384) / 16389));
  while (n > 0 && gzipBound(n) > bytesPerRecord) n--;
  while (gzipBound(n + 1) <= bytesPerRecord) n++;
  return n;
}

/**
 * Contiguous [start, end) ranges covering `sizes` in order, each as many lines as fit in
 * `budget` bytes (a line larger than the budget alone).
 */
export function packRanges(sizes: readonly number[], budget: number): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < sizes.length; i++) {
    if (i > start && bytes + sizes[i]! > budget) {
      ranges.push([start, i]);
      start = i;
      bytes = 0;
    }
    bytes += sizes[i]!;
  }
  if (start < sizes.length) ranges.push([start, sizes.length]);
  return ranges;
}

/** One Firehose record: the gzip member of its lines. */
export interface PackedRecord {
  data: Uint8Array;
  lines: readonly Uint8Array[];
}

/** Level 1: the archiver's CPU per change is the price of the saving (bench:analytics); higher levels gain little on JSON. */
export const ARCHIVE_GZIP_LEVEL = constants.Z_BEST_SPEED;

export function packRecord(lines: readonly Uint8Array[]): PackedRecord {
  return { data: gzipSync(Buffer.concat(lines), { level: ARCHIVE_GZIP_LEVEL }), lines };
}

/**
 * The lines (each newline-terminated) as gzipped records within `bytesPerRecord`. Only a record
 * of one line larger than the budget can be above it (an incompressible line near the limit).
 */
export function packLines(lines: readonly Uint8Array[], bytesPerRecord: number): PackedRecord[] {
  return packRanges(
    lines.map((l) => l.length),
    packBudget(bytesPerRecord),
  ).map(([start, end]) => packRecord(lines.slice(start, end)));
}
