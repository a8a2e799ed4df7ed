// Personal fields encrypted with their subject's data key (crypto-shredding, lib/subject-keys.ts):
// `{ enc: 'v1', kid, iv, ct }` as in the task and comment schemas' $defs/encrypted — AES-256-GCM,
// a 12-byte random iv, ct = ciphertext ‖ 16-byte tag, both base64url, the subject id as
// additional data (a ciphertext moved under another subject's key id fails to decrypt).
// Decrypting a field whose key is destroyed gives null: the field is shredded.
import { createCipheriv, createDecipheriv, randomBytes, randomFillSync } from 'node:crypto';
import { TaskflowError } from './errors.js';
import { PERSONAL_FIELDS } from '../schemas/personal-fields.js';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { KMSClient } from '@aws-sdk/client-kms';
import type { StreamEvent } from '@taskflow/stream/events';
import { type KeyDestruction, type SubjectKey, type SubjectKeyConfig, SubjectErasedError, type SubjectKeyStore, createSubjectKeyStore, kidFor } from './subject-keys.js';

export interface EncryptedField {
  enc: 'v1';
  kid: string;
  iv: string;
  ct: string;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;

export function isEncryptedField(v: unknown): v is EncryptedField {
  if (typeof v !== 'object' || v === null) return false;
  const f = v as Record<string, unknown>;
  return f.enc === 'v1' && typeof f.kid === 'string' && typeof f.iv === 'string' && typeof f.ct === 'string';
}

// Random ivs drawn 4,096 at a time: a randomBytes call per field cost about as much as the
// encryption itself (bench:capture-core). Each slice is used once, before the pool is refilled.
const ivPool = Buffer.allocUnsafe(IV_BYTES * 4096);
let ivAt = ivPool.length;

function nextIv(): Buffer {
  if (ivAt + IV_BYTES > ivPool.length) {
    randomFillSync(ivPool);
    ivAt = 0;
  }
  ivAt += IV_BYTES;
  return ivPool.subarray(ivAt - IV_BYTES, ivAt);
}

export function encryptField(plaintext: string, key: SubjectKey): EncryptedField {
  const iv = nextIv();
  const c = createCipheriv('aes-256-gcm', key.key, iv).setAAD(Buffer.from(key.subject));
  const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final(), c.getAuthTag()]);
  return { enc: 'v1', kid: key.kid, iv: iv.toString('base64url'), ct: ct.toString('base64url') };
}

/**
 * What capture writes for a field of an erased subject (CONTRACTS.md): the schema's encrypted
 * shape under the subject's destroyed key id with an empty ct, so every reader already treats it
 * as shredded (its key is gone) and no schema changes.
 */
export function erasedField(kid: string): EncryptedField {
  return { enc: 'v1', kid, iv: randomBytes(IV_BYTES).toString('base64url'), ct: '' };
}

/** A field that is not what its key says: tampered, moved, or of another subject. Not retriable. */
export class FieldDecryptError extends TaskflowError {
  constructor(kid: string, cause?: unknown) {
    super('FIELD_DECRYPT_FAILED', `field under key ${kid} does not decrypt (tampered or under the wrong subject)`, { cause, details: { kid } });
    this.name = 'FieldDecryptError';
  }
}

export type KeyResolver = Pick<SubjectKeyStore, 'keyById'> | ((kid: string) => Promise<SubjectKey | null>);

/**
 * The plaintext of a personal field: a string stays as it is (it travelled in clear), null stays
 * null, an encrypted field is decrypted — null when its key is destroyed (shredded). Throws
 * FieldDecryptError on a tampered or mismatched ciphertext.
 */
export async function decryptField(value: unknown, keys: KeyResolver): Promise<string | null> {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (!isEncryptedField(value)) throw new TaskflowError('FIELD_NOT_ENCRYPTED', 'a personal field is neither a string nor { enc: "v1", kid, iv, ct }');
  const key = typeof keys === 'function' ? await keys(value.kid) : await keys.keyById(value.kid);
  if (!key) return null;
  return decryptWith(value, key);
}

export function decryptWith(value: EncryptedField, key: SubjectKey): string {
  try {
    const iv = Buffer.from(value.iv, 'base64url');
    const ct = Buffer.from(value.ct, 'base64url');
    if (iv.length !== IV_BYTES || ct.length < TAG_BYTES) throw new Error('bad iv or ct length');
    const d = createDecipheriv('aes-256-gcm', key.key, iv).setAAD(Buffer.from(key.subject));
    d.setAuthTag(ct.subarray(ct.length - TAG_BYTES));
    return Buffer.concat([d.update(ct.subarray(0, ct.length - TAG_BYTES)), d.final()]).toString('utf8');
  } catch (err) {
    throw new FieldDecryptError(value.kid, err);
  }
}

// ---- the consumers' key cache -----------------------------------------------------------------

export interface KeyCacheOptions {
  /** How long a key (or its absence) is trusted: a key destroyed in another process stops decrypting here within this time. */
  ttlMs?: number;
  /** At most this many entries; the least recently used goes first. */
  maxEntries?: number;
  now?: () => number;
}

export const DEFAULT_KEY_CACHE_TTL_MS = 30_000;
export const DEFAULT_KEY_CACHE_ENTRIES = 10_000;

interface Entry<T> {
  value: T;
  expiresAt: number;
}

/** A bounded LRU map whose entries expire (Map keeps insertion order: re-inserting on a hit moves an entry to the end). */
export class ExpiringLru<T> {
  private readonly entries = new Map<string, Entry<T>>();
  constructor(
    private readonly ttlMs: number,
    private readonly max: number,
    private readonly now: () => number,
  ) {}

  get(k: string): Entry<T> | undefined {
    const e = this.entries.get(k);
    if (!e) return undefined;
    this.entries.delete(k);
    if (e.expiresAt <= this.now()) return undefined;
    this.entries.set(k, e);
    return e;
  }

  set(k: string, value: T): void {
    this.entries.delete(k);
    this.entries.set(k, { value, expiresAt: this.now() + this.ttlMs });
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value as string);
  }

  delete(k: string): void {
    this.entries.delete(k);
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * A SubjectKeyStore with a short-lived, bounded cache in front of keyFor and keyById (one table
 * read and one unwrap per key per TTL instead of per field). A destroy through this store evicts
 * at once; one made by another process takes effect here within `ttlMs`.
 */
export class CachedKeyStore implements SubjectKeyStore {
  readonly ttlMs: number;
  private readonly byKid: ExpiringLru<Promise<SubjectKey | null>>;
  private readonly bySubject: ExpiringLru<Promise<SubjectKey>>;

  constructor(
    private readonly inner: SubjectKeyStore,
    opts: KeyCacheOptions = {},
  ) {
    this.ttlMs = opts.ttlMs ?? DEFAULT_KEY_CACHE_TTL_MS;
    const max = opts.maxEntries ?? DEFAULT_KEY_CACHE_ENTRIES;
    const now = opts.now ?? Date.now;
    this.byKid = new ExpiringLru(this.ttlMs, max, now);
    this.bySubject = new ExpiringLru(this.ttlMs, max, now);
  }

  keyFor(subject: string): Promise<SubjectKey> {
    const hit = this.bySubject.get(subject);
    if (hit) return hit.value;
    // The promise is cached so concurrent callers share one read; a failure (erased, throttled) is not kept.
    const p = this.inner.keyFor(subject);
    this.bySubject.set(subject, p);
    p.catch(() => this.bySubject.delete(subject));
    return p;
  }

  keyById(kid: string): Promise<SubjectKey | null> {
    const hit = this.byKid.get(kid);
    if (hit) return hit.value;
    const p = this.inner.keyById(kid);
    this.byKid.set(kid, p);
    p.catch(() => this.byKid.delete(kid));
    return p;
  }

  async destroy(subject: string): Promise<KeyDestruction> {
    const d = await this.inner.destroy(subject);
    // Also the derived kid: a null cached for it before the first key existed must not outlive the destroy either.
    this.evict(subject, [...d.kids, kidFor(subject)]);
    return d;
  }

  isDestroyed(subject: string): Promise<boolean> {
    return this.inner.isDestroyed(subject);
  }

  /** Forgets a subject's keys now (a destroy seen on the stream, or made in this process). */
  evict(subject: string, kids: readonly string[]): void {
    this.bySubject.delete(subject);
    for (const k of kids) this.byKid.delete(k);
  }

  get size(): number {
    return this.byKid.size + this.bySubject.size;
  }
}

// ---- rows and events --------------------------------------------------------------------------

type Row = Record<string, unknown>;

/** The subject whose key a row's personal field needs: none when the table has no such field, the field is absent or not plaintext, or the subject is null. */
export function rowSubject(table: string, row: Row | null | undefined): string | undefined {
  const p = PERSONAL_FIELDS[table];
  if (!p || !row || typeof row[p.column] !== 'string') return undefined;
  const subject = row[p.subject];
  return typeof subject === 'string' && subject !== '' ? subject : undefined;
}

/** Encrypts the row's personal field in place under its subject's key, or writes the erased marker. A row rowSubject says nothing of is left as it is. */
export function encryptRow(table: string, row: Row | null | undefined, key: SubjectKey | SubjectErasedError): void {
  const p = PERSONAL_FIELDS[table];
  if (!p || !row || rowSubject(table, row) === undefined) return;
  row[p.column] = key instanceof SubjectErasedError ? erasedField(key.kid) : encryptField(row[p.column] as string, key);
}

/** Told of a field that does not decrypt (tampered, or under the wrong subject): it reads as null. */
export type OnUnreadable = (err: FieldDecryptError) => void;

/**
 * A copy of the row with its personal field decrypted (null when shredded, or unreadable: then
 * `onUnreadable` hears of it); the row itself when it has none encrypted. A failing key read
 * (the store unreachable) rejects: the caller retries.
 */
export async function decryptRow<R extends Row | null | undefined>(table: string, row: R, keys: KeyResolver, onUnreadable?: OnUnreadable): Promise<R> {
  const p = PERSONAL_FIELDS[table];
  if (!p || !row || !isEncryptedField(row[p.column])) return row;
  let plain: string | null;
  try {
    plain = await decryptField(row[p.column], keys);
  } catch (err) {
    if (!(err instanceof FieldDecryptError)) throw err;
    onUnreadable?.(err);
    plain = null;
  }
  return { ...row, [p.column]: plain };
}

/** A copy of an entity change with `before` and `after` decrypted; any other event as it is. */
export async function decryptEvent<E extends { data: unknown }>(event: E, keys: KeyResolver, onUnreadable?: OnUnreadable): Promise<E> {
  const data = event.data as { table?: unknown; before?: Row | null; after?: Row | null };
  if (typeof data.table !== 'string' || !PERSONAL_FIELDS[data.table]) return event;
  const [before, after] = await Promise.all([decryptRow(data.table, data.before, keys, onUnreadable), decryptRow(data.table, data.after, keys, onUnreadable)]);
  if (before === data.before && after === data.after) return event;
  return { ...event, data: { ...data, before, after } };
}

/** A reader's key store: the table through a CachedKeyStore (SUBJECT_KEYS_CACHE_TTL_MS). */
export function readerKeyStore(cfg: SubjectKeyConfig, dynamo: DynamoDBClient, kms: () => Pick<KMSClient, 'send'>): CachedKeyStore {
  return new CachedKeyStore(createSubjectKeyStore(cfg, dynamo, kms), { ttlMs: cfg.cache.ttlMs, maxEntries: cfg.cache.maxEntries });
}

/** A decoded stream event with its personal fields decrypted, for consumers that read the text (search, notifications). */
export function streamEventDecryptor(keys: KeyResolver, onUnreadable?: OnUnreadable): (event: StreamEvent) => Promise<StreamEvent> {
  return async (event) => {
    const envelope = await decryptEvent(event.envelope, keys, onUnreadable);
    return envelope === event.envelope ? event : { ...event, envelope };
  };
}
