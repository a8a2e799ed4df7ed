// A changelog item's body (dynamo-changelog.ts): its entries as one JSON array, compressed. Written
// as zstd through the record codec's context kept for the process (a small body costs zlib more
// to set up a gzip stream than to compress it: ~20 instead of ~45 µs per item, about the same
// bytes); items written before hold gzip, and every reader takes both (by the frame's magic).
// A full entry's envelope is written as the record's own JSON bytes while it is the envelope
// parsed from it (envelopeJsonOf): the same bytes as JSON.stringify, without serializing it again.
import { gunzipSync } from 'node:zlib';
import { compressRecord, decompressZstd } from '@taskflow/stream/codec';
import { type ChangelogEntry, isThinEntry } from './changelog.js';
import { type EnvelopeJson, envelopeJsonOf, jsonBytes, writeJson } from './event.js';

/** The entries' JSON as UTF-8, byte for byte JSON.stringify(entries), written into one buffer. */
export function entriesJson(entries: readonly ChangelogEntry[]): Buffer {
  // A full entry is {"seq":N,"event":<envelope>}: its prefix, the envelope's JSON, then "}".
  const prefixes: string[] = [];
  const parts: EnvelopeJson[] = [];
  let bytes = 2 + Math.max(0, entries.length - 1);
  for (const e of entries) {
    if (isThinEntry(e)) {
      prefixes.push('');
      parts.push(JSON.stringify(e));
    } else {
      prefixes.push(`{"seq":${e.seq},"event":`);
      parts.push(envelopeJsonOf(e.event));
      bytes += 1;
    }
    // Prefixes are ASCII: characters = bytes.
    bytes += prefixes[prefixes.length - 1]!.length + jsonBytes(parts[parts.length - 1]!);
  }
  const out = Buffer.allocUnsafe(bytes);
  let at = out.write('[', 0, 'latin1');
  for (let i = 0; i < parts.length; i += 1) {
    if (i > 0) at = out.writeUInt8(0x2c /* , */, at);
    const prefix = prefixes[i]!;
    if (prefix !== '') at += out.write(prefix, at, 'latin1');
    at = writeJson(out, parts[i]!, at);
    if (prefix !== '') at = out.writeUInt8(0x7d /* } */, at);
  }
  out.writeUInt8(0x5d /* ] */, at);
  return out;
}

export function encodeBody(entries: readonly ChangelogEntry[]): Buffer {
  return compressRecord(entriesJson(entries), 'zstd');
}

export function decodeBody(body: Uint8Array): ChangelogEntry[] {
  const json = body[0] === 0x1f && body[1] === 0x8b ? gunzipSync(body) : decompressZstd(body);
  return JSON.parse(json.toString('utf8')) as ChangelogEntry[];
}
