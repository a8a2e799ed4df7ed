// A changelog item's body (dynamo-changelog.ts): its entries as one JSON array, compressed. Written
// as zstd through the record codec's context kept for the process (a small body costs zlib more
// to set up a gzip stream than to compress it: ~20 instead of ~45 µs per item, about the same
// bytes); items written before hold gzip, and every reader takes both (by the frame's magic).
// A full entry's envelope is written as the record's own JSON text while it is the envelope
// parsed from it (envelopeText): the same bytes as JSON.stringify, without serializing it again.
import { gunzipSync } from 'node:zlib';
import { compressRecord, decompressZstd } from '@taskflow/stream/codec';
import { type ChangelogEntry, isThinEntry } from './changelog.js';
import { envelopeText } from './event.js';

/** The entries' JSON, byte for byte JSON.stringify(entries). */
export function entriesJson(entries: readonly ChangelogEntry[]): string {
  let json = '[';
  for (let i = 0; i < entries.length; i += 1) {
    const e = entries[i]!;
    if (i > 0) json += ',';
    json += isThinEntry(e) ? JSON.stringify(e) : `{"seq":${e.seq},"event":${envelopeText(e.event)}}`;
  }
  return `${json}]`;
}

export function encodeBody(entries: readonly ChangelogEntry[]): Buffer {
  return compressRecord(Buffer.from(entriesJson(entries)), 'zstd');
}

export function decodeBody(body: Uint8Array): ChangelogEntry[] {
  const json = body[0] === 0x1f && body[1] === 0x8b ? gunzipSync(body) : decompressZstd(body);
  return JSON.parse(json.toString('utf8')) as ChangelogEntry[];
}
