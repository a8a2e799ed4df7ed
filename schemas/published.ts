// Published schema versions are immutable. `taskflow schemas publish` records each version it
// publishes in schemas/published.lock.json — the SHA-256 of the file's canonical JSON, and a short
// hash of every object and array in it — and `taskflow schemas check` compares every published
// file with its record, naming the file and the innermost parts that differ. A change, even a
// compatible one, goes into a new version (schemas/<name>/v<N+1>.json).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SchemaError } from './errors.js';
import type { SchemaFile } from './catalog.js';

export const LOCK_FILE = 'published.lock.json';

export interface PublishedVersion {
  /** SHA-256 (hex) of the canonical JSON of the whole file. */
  sha256: string;
  /** JSON Pointer of the document and of every member of its objects → kind (o object, a array, v other) and the first 12 hex digits of its canonical JSON's SHA-256. */
  nodes: Record<string, string>;
}

export interface PublishedLock {
  $comment: string;
  /** "<name>/v<version>.json" → what was published. */
  published: Record<string, PublishedVersion>;
}

const COMMENT = 'Written by `taskflow schemas publish`, never by hand: `taskflow schemas check` fails when a published schema file differs from its record here. Hashes are SHA-256 of canonical JSON (keys sorted, no whitespace).';

/** JSON with object keys sorted at every level and no whitespace: formatting and key order do not count as changes. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const pointerToken = (key: string | number) => String(key).replace(/~/g, '~0').replace(/\//g, '~1');

/** "o" object, "a" array, "v" any other value: an object's members are compared one by one, the rest as a whole. */
type Kind = 'o' | 'a' | 'v';
const kindOf = (value: unknown): Kind => (Array.isArray(value) ? 'a' : typeof value === 'object' && value !== null ? 'o' : 'v');

function nodeHashes(value: unknown, pointer: string, out: Record<string, string>): void {
  const kind = kindOf(value);
  out[pointer] = `${kind}:${sha256(canonicalJson(value)).slice(0, 12)}`;
  if (kind === 'o') for (const [k, v] of Object.entries(value as object)) nodeHashes(v, `${pointer}/${pointerToken(k)}`, out);
}

export function lockKey(file: Pick<SchemaFile, 'name' | 'version'>): string {
  return `${file.name}/v${file.version}.json`;
}

export function publishedVersion(schema: unknown): PublishedVersion {
  const nodes: Record<string, string> = {};
  nodeHashes(schema, '', nodes);
  return { sha256: sha256(canonicalJson(schema)), nodes };
}

/**
 * Where `schema` differs from what was published, as JSON Pointers: each member added to or removed
 * from an object, and each other value that changed (e.g. /properties/title/type, /required).
 */
export function changedParts(published: PublishedVersion, schema: unknown): string[] {
  const before = published.nodes;
  const now = publishedVersion(schema).nodes;
  const members = new Map<string, Set<string>>();
  for (const p of [...Object.keys(before), ...Object.keys(now)]) {
    if (p === '') continue;
    const parent = p.slice(0, p.lastIndexOf('/'));
    members.set(parent, (members.get(parent) ?? new Set()).add(p));
  }
  const parts: string[] = [];
  const walk = (p: string): void => {
    const [a, b] = [before[p], now[p]];
    if (a === b) return;
    if (a === undefined || b === undefined) {
      parts.push(`${p} (${a === undefined ? 'added' : 'removed'})`);
    } else if (a.startsWith('o:') && b.startsWith('o:')) {
      for (const member of [...(members.get(p) ?? [])].sort()) walk(member);
    } else {
      parts.push(p === '' ? '(the whole document)' : p);
    }
  };
  walk('');
  return parts;
}

export interface PublishedCheck {
  /** One line per published file that changed or disappeared. */
  errors: string[];
  /** Files not published yet (a version in the making). */
  unpublished: string[];
}

export function checkPublished(lock: PublishedLock, files: readonly SchemaFile[]): PublishedCheck {
  const byKey = new Map(files.map((f) => [lockKey(f), f]));
  const errors: string[] = [];
  for (const [key, record] of Object.entries(lock.published).sort(([a], [b]) => a.localeCompare(b))) {
    const file = byKey.get(key);
    if (!file) {
      errors.push(`${key}: published, but the file is gone (a published version stays: readers may still meet its events)`);
      continue;
    }
    if (publishedVersion(file.schema).sha256 === record.sha256) continue;
    const next = `${file.name}/v${Math.max(...files.filter((f) => f.name === file.name).map((f) => f.version)) + 1}.json`;
    errors.push(`${file.path}: published version changed at ${changedParts(record, file.schema).join(', ')}; a published schema is immutable: revert it and put the change in a new version (${next})`);
  }
  return { errors, unpublished: files.map(lockKey).filter((k) => lock.published[k] === undefined) };
}

export function readLock(dir: string): PublishedLock {
  const path = join(dir, LOCK_FILE);
  if (!existsSync(path)) return { $comment: COMMENT, published: {} };
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as PublishedLock;
  } catch (err) {
    throw new SchemaError('SCHEMA_LOCK_UNREADABLE', `${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Adds the given files to the lock; a version already published is never rewritten. */
export function publish(lock: PublishedLock, files: readonly SchemaFile[]): { lock: PublishedLock; added: string[] } {
  const published = { ...lock.published };
  const added: string[] = [];
  for (const f of files) {
    const key = lockKey(f);
    if (published[key] !== undefined) continue;
    published[key] = publishedVersion(f.schema);
    added.push(key);
  }
  const sorted = Object.fromEntries(Object.entries(published).sort(([a], [b]) => a.localeCompare(b)));
  return { lock: { $comment: COMMENT, published: sorted }, added };
}

export function writeLock(dir: string, lock: PublishedLock): void {
  const path = join(dir, LOCK_FILE);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(lock, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
}
