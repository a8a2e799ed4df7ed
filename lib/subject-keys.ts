// Per-subject data keys for crypto-shredding (issue 13 §2). A person's authored text travels
// encrypted with their own data key (lib/field-crypto.ts); destroying the key makes every copy —
// stream retention, raw archive, Firehose error output, backups — unreadable at once.
//
// One item per subject in the subject-keys table (SUBJECT_KEYS_TABLE_SPEC), keyed by the
// subject's key id, so `keyFor(subject)` and `keyById(kid)` read the same item and every state
// change is one conditional write of one item (no cross-item transaction, which dynalite lacks):
//   live:      { kid, subject, wrapped, wrapper, createdAt }
//   tombstone: { kid, erased: true, destroyedAt, kids } — the wrapped key and the subject id are gone
// The kid is derived from the subject (a truncated SHA-256 under a fixed label): it reveals no
// more than the row's own created_by/author_id beside it, lets a reader holding only a kid find
// the item, and keeps an erased subject erased: a later keyFor finds the tombstone and throws
// SubjectErasedError instead of minting a new key.
//
// Keys are stored WRAPPED: in production by KMS (GenerateDataKey/Decrypt under the environment's
// one key, encryption context = the kid, never the subject id, which CloudTrail would log); in
// development by a local key-encryption key from a generated file (dev-mode only).
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConditionalCheckFailedException, type CreateTableCommandInput, type DynamoDBClient, GetItemCommand, PutItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { DecryptCommand, GenerateDataKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { type Env, intSetting, optionalSetting, readSettings, stringSetting, tableEnvVar } from './config.js';
import { isDevelopment } from './dev-mode.js';
import { ConfigError, TaskflowError } from './errors.js';

export interface SubjectKey {
  kid: string;
  subject: string;
  /** The plaintext data key, 32 bytes (AES-256). */
  key: Buffer;
}

export interface KeyDestruction {
  subject: string;
  kids: string[];
  /** ISO time of the first destruction (a repeated destroy returns the same record). */
  destroyedAt: string;
  /** Where the keys lived, e.g. 'dynamodb:taskflow-subject-keys'. */
  store: string;
}

export interface SubjectKeyStore {
  /** The subject's current data key, created on first use (race-safe); throws SubjectErasedError once destroyed. */
  keyFor(subject: string): Promise<SubjectKey>;
  /** The key with this id; null once destroyed (or unknown). */
  keyById(kid: string): Promise<SubjectKey | null>;
  /** Idempotent: deletes the subject's wrapped key(s) and leaves a tombstone so it stays erased. */
  destroy(subject: string): Promise<KeyDestruction>;
  isDestroyed(subject: string): Promise<boolean>;
}

/** keyFor for an erased subject: the caller writes the field as erased (CONTRACTS.md) instead. */
export class SubjectErasedError extends TaskflowError {
  readonly subject: string;
  readonly kid: string;
  constructor(subject: string, kid: string) {
    super('SUBJECT_ERASED', `subject ${subject} was erased: its data key is destroyed`, { details: { kid } });
    this.name = 'SubjectErasedError';
    this.subject = subject;
    this.kid = kid;
  }
}

export const SUBJECT_KEYS_TABLE_KEY = 'subject-keys';
export const SUBJECT_KEYS_TABLE = 'taskflow-subject-keys';
export const DATA_KEY_BYTES = 32;

/** CreateTable input for the local stack (infra/local/tables.ts) and the compliance stack (no PITR: a backup would bring an erased key back). */
export const SUBJECT_KEYS_TABLE_SPEC = {
  TableName: SUBJECT_KEYS_TABLE,
  AttributeDefinitions: [{ AttributeName: 'kid', AttributeType: 'S' as const }],
  KeySchema: [{ AttributeName: 'kid', KeyType: 'HASH' as const }],
  BillingMode: 'PAY_PER_REQUEST' as const,
} satisfies CreateTableCommandInput;

/** The subject's key id: 'sk1.' + 128 bits of SHA-256 over a fixed label and the subject id. */
export function kidFor(subject: string): string {
  if (subject === '') throw new TaskflowError('BAD_SUBJECT', 'a subject key needs a non-empty subject id');
  return `sk1.${createHash('sha256').update('taskflow/subject-key/v1\0').update(subject).digest().subarray(0, 16).toString('base64url')}`;
}

// ---- wrapping ---------------------------------------------------------------------------------

/** Wraps and unwraps data keys; `name` is stored beside each wrapped key so a mismatch is detected. */
export interface KeyWrapper {
  readonly name: string;
  /** A new 32-byte data key and its wrapped form, bound to `kid`. */
  generate(kid: string): Promise<{ plaintext: Buffer; wrapped: Buffer }>;
  unwrap(wrapped: Buffer, kid: string): Promise<Buffer>;
}

/** Production: the environment's one KMS key (never one per subject: deleting a KMS key takes 7–30 days). */
export class KmsKeyWrapper implements KeyWrapper {
  readonly name: string;
  constructor(
    private readonly kms: Pick<KMSClient, 'send'>,
    private readonly keyId: string,
  ) {
    this.name = `kms:${keyId}`;
  }

  async generate(kid: string): Promise<{ plaintext: Buffer; wrapped: Buffer }> {
    const out = await this.kms.send(new GenerateDataKeyCommand({ KeyId: this.keyId, KeySpec: 'AES_256', EncryptionContext: { kid } }));
    if (!out.Plaintext || !out.CiphertextBlob) throw new TaskflowError('KMS_NO_KEY', 'GenerateDataKey returned no key', { retriable: true });
    return { plaintext: Buffer.from(out.Plaintext), wrapped: Buffer.from(out.CiphertextBlob) };
  }

  async unwrap(wrapped: Buffer, kid: string): Promise<Buffer> {
    const out = await this.kms.send(new DecryptCommand({ KeyId: this.keyId, CiphertextBlob: wrapped, EncryptionContext: { kid } }));
    if (!out.Plaintext) throw new TaskflowError('KMS_NO_KEY', 'Decrypt returned no key', { retriable: true });
    return Buffer.from(out.Plaintext);
  }
}

/** Development: AES-256-GCM under a local key-encryption key; wrapped = iv(12) ‖ tag(16) ‖ ct(32), the kid as AAD. */
export class LocalKeyWrapper implements KeyWrapper {
  /** 'local-kek:' + a fingerprint, so a key wrapped under another (e.g. regenerated) KEK is refused by name. */
  readonly name: string;
  constructor(private readonly kek: Buffer) {
    if (kek.length !== DATA_KEY_BYTES) throw new TaskflowError('BAD_KEK', `a key-encryption key is ${DATA_KEY_BYTES} bytes, got ${kek.length}`);
    this.name = `local-kek:${createHash('sha256').update(kek).digest('hex').slice(0, 12)}`;
  }

  // async so that a failure is a rejection, as KMS's would be
  async generate(kid: string): Promise<{ plaintext: Buffer; wrapped: Buffer }> {
    const plaintext = randomBytes(DATA_KEY_BYTES);
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.kek, iv).setAAD(Buffer.from(kid));
    const ct = Buffer.concat([c.update(plaintext), c.final()]);
    return { plaintext, wrapped: Buffer.concat([iv, c.getAuthTag(), ct]) };
  }

  async unwrap(wrapped: Buffer, kid: string): Promise<Buffer> {
    const d = createDecipheriv('aes-256-gcm', this.kek, wrapped.subarray(0, 12)).setAAD(Buffer.from(kid));
    d.setAuthTag(wrapped.subarray(12, 28));
    return Buffer.concat([d.update(wrapped.subarray(28)), d.final()]);
  }
}

/** The local KEK file, created (0600) by whichever process comes first: linked into place, so concurrent starters all read one key. */
export function loadOrCreateLocalKek(path: string): Buffer {
  try {
    return decodeKek(readFileSync(path, 'utf8'), path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, randomBytes(DATA_KEY_BYTES).toString('base64url'), { mode: 0o600 });
  try {
    linkSync(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
  return decodeKek(readFileSync(path, 'utf8'), path);
}

function decodeKek(text: string, path: string): Buffer {
  const kek = Buffer.from(text.trim(), 'base64url');
  if (kek.length !== DATA_KEY_BYTES) throw new ConfigError(SUBJECT_KEY_SETTINGS.localKekFile.name, `${path} must hold ${DATA_KEY_BYTES} bytes in base64url, got ${kek.length}`);
  return kek;
}

// ---- the table, as a port ---------------------------------------------------------------------

export type KeyItem =
  | { kid: string; subject: string; wrapped: Buffer; wrapper: string; createdAt: string; erased?: undefined }
  | { kid: string; erased: true; destroyedAt: string; /** The key ids destroyed ([] when the subject never had a key). */ kids: string[] };

/** The three operations the store needs of its table; DynamoKeyTable in production, MemoryKeyTable in unit tests. */
export interface KeyTable {
  readonly name: string;
  get(kid: string): Promise<KeyItem | undefined>;
  /** Writes `item` only if no item with its kid exists; false if one does. */
  putIfAbsent(item: KeyItem): Promise<boolean>;
  /** Replaces the item by a tombstone only if it is still `expected` (absent when undefined); false otherwise. */
  replaceWithTombstone(tombstone: KeyItem & { erased: true }, expected: KeyItem | undefined): Promise<boolean>;
}

export class DynamoKeyTable implements KeyTable {
  readonly name: string;
  constructor(
    private readonly dynamo: DynamoDBClient,
    private readonly table: string,
  ) {
    this.name = `dynamodb:${table}`;
  }

  async get(kid: string): Promise<KeyItem | undefined> {
    const out = await this.dynamo.send(new GetItemCommand({ TableName: this.table, Key: { kid: { S: kid } }, ConsistentRead: true }));
    return out.Item ? fromItem(out.Item) : undefined;
  }

  putIfAbsent(item: KeyItem): Promise<boolean> {
    return this.conditional(item, 'attribute_not_exists(kid)');
  }

  replaceWithTombstone(tombstone: KeyItem & { erased: true }, expected: KeyItem | undefined): Promise<boolean> {
    if (!expected) return this.conditional(tombstone, 'attribute_not_exists(kid)');
    if (expected.erased) return Promise.resolve(false);
    // `wrapped` is a reserved word in expressions
    return this.conditional(tombstone, 'createdAt = :c AND #w = :w', { ':c': { S: expected.createdAt }, ':w': { B: expected.wrapped } }, { '#w': 'wrapped' });
  }

  private async conditional(item: KeyItem, condition: string, values?: Record<string, AttributeValue>, names?: Record<string, string>): Promise<boolean> {
    try {
      await this.dynamo.send(new PutItemCommand({ TableName: this.table, Item: toItem(item), ConditionExpression: condition, ...(values ? { ExpressionAttributeValues: values } : {}), ...(names ? { ExpressionAttributeNames: names } : {}) }));
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }
}

function toItem(item: KeyItem): Record<string, AttributeValue> {
  if (item.erased) return { kid: { S: item.kid }, erased: { BOOL: true }, destroyedAt: { S: item.destroyedAt }, kids: { L: item.kids.map((k) => ({ S: k })) } };
  return { kid: { S: item.kid }, subject: { S: item.subject }, wrapped: { B: item.wrapped }, wrapper: { S: item.wrapper }, createdAt: { S: item.createdAt } };
}

function fromItem(a: Record<string, AttributeValue>): KeyItem {
  const kid = a.kid?.S ?? '';
  if (a.erased?.BOOL) return { kid, erased: true, destroyedAt: a.destroyedAt?.S ?? '', kids: (a.kids?.L ?? []).map((k) => k.S ?? '') };
  return { kid, subject: a.subject?.S ?? '', wrapped: Buffer.from(a.wrapped?.B ?? new Uint8Array()), wrapper: a.wrapper?.S ?? '', createdAt: a.createdAt?.S ?? '' };
}

/** An in-memory table with the same conditional semantics, for unit tests and benches. */
export class MemoryKeyTable implements KeyTable {
  readonly name = 'memory';
  readonly items = new Map<string, KeyItem>();

  get(kid: string): Promise<KeyItem | undefined> {
    return Promise.resolve(this.items.get(kid));
  }

  putIfAbsent(item: KeyItem): Promise<boolean> {
    if (this.items.has(item.kid)) return Promise.resolve(false);
    this.items.set(item.kid, item);
    return Promise.resolve(true);
  }

  replaceWithTombstone(tombstone: KeyItem & { erased: true }, expected: KeyItem | undefined): Promise<boolean> {
    const current = this.items.get(tombstone.kid);
    const same = current === undefined ? expected === undefined : expected !== undefined && !current.erased && !expected.erased && current.createdAt === expected.createdAt && current.wrapped.equals(expected.wrapped);
    if (!same) return Promise.resolve(false);
    this.items.set(tombstone.kid, tombstone);
    return Promise.resolve(true);
  }
}

// ---- the store --------------------------------------------------------------------------------

export class WrappedSubjectKeyStore implements SubjectKeyStore {
  constructor(
    private readonly table: KeyTable,
    private readonly wrapper: KeyWrapper,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async keyFor(subject: string): Promise<SubjectKey> {
    const kid = kidFor(subject);
    for (;;) {
      const item = await this.table.get(kid);
      if (item) return this.unwrapLive(item, subject);
      const { plaintext, wrapped } = await this.wrapper.generate(kid);
      // Conditional: two writers racing for a new subject both end up with the winner's key.
      if (await this.table.putIfAbsent({ kid, subject, wrapped, wrapper: this.wrapper.name, createdAt: this.now().toISOString() })) return { kid, subject, key: plaintext };
    }
  }

  async keyById(kid: string): Promise<SubjectKey | null> {
    const item = await this.table.get(kid);
    if (!item || item.erased) return null;
    return { kid, subject: item.subject, key: await this.unwrap(item) };
  }

  async destroy(subject: string): Promise<KeyDestruction> {
    const kid = kidFor(subject);
    for (;;) {
      const item = await this.table.get(kid);
      if (item?.erased) return { subject, kids: item.kids, destroyedAt: item.destroyedAt, store: this.table.name };
      // A subject with no key yet gets a tombstone too, so no key is ever created for it.
      const tombstone = { kid, erased: true as const, destroyedAt: this.now().toISOString(), kids: item ? [kid] : [] };
      if (await this.table.replaceWithTombstone(tombstone, item)) return { subject, kids: tombstone.kids, destroyedAt: tombstone.destroyedAt, store: this.table.name };
    }
  }

  isDestroyed(subject: string): Promise<boolean> {
    return erasedSubjectLookup(this.table)(subject);
  }

  private async unwrapLive(item: KeyItem, subject: string): Promise<SubjectKey> {
    if (item.erased) throw new SubjectErasedError(subject, item.kid);
    if (item.subject !== subject) throw new TaskflowError('KID_COLLISION', `key id ${item.kid} belongs to another subject`);
    return { kid: item.kid, subject, key: await this.unwrap(item) };
  }

  private unwrap(item: KeyItem & { erased?: undefined }): Promise<Buffer> {
    if (item.wrapper !== this.wrapper.name) throw new TaskflowError('KEY_WRAPPER_MISMATCH', `key ${item.kid} is wrapped by ${item.wrapper}, this store unwraps with ${this.wrapper.name}`);
    return this.wrapper.unwrap(item.wrapped, item.kid);
  }
}

// ---- settings and construction ----------------------------------------------------------------

export const DEV_KEK_FILE = '.taskflow/dev-subject-kek';

export const SUBJECT_KEY_SETTINGS = {
  table: stringSetting({ name: tableEnvVar(SUBJECT_KEYS_TABLE_KEY), default: SUBJECT_KEYS_TABLE, meaning: 'Per-subject wrapped data keys and erasure tombstones (crypto-shredding, lib/subject-keys.ts).' }),
  kmsKeyId: optionalSetting({ name: 'SUBJECT_KEYS_KMS_KEY_ID', default: 'unset: the local KEK file (development only)', meaning: "The environment's KMS key (id, ARN or alias) that wraps per-subject data keys (GenerateDataKey/Decrypt)." }),
  localKekFile: stringSetting({ name: 'SUBJECT_KEYS_LOCAL_KEK_FILE', default: DEV_KEK_FILE, meaning: 'Local key-encryption key file when SUBJECT_KEYS_KMS_KEY_ID is unset, in development mode only; created (0600) on first use.' }),
  cacheTtlMs: intSetting({ name: 'SUBJECT_KEYS_CACHE_TTL_MS', default: 30_000, min: 100, max: 300_000, meaning: 'How long a service trusts a cached subject key: a key destroyed by another process stops decrypting (and encrypting) here within this time.' }),
  cacheEntries: intSetting({ name: 'SUBJECT_KEYS_CACHE_ENTRIES', default: 10_000, min: 1, meaning: 'Subject keys a service caches at most (least recently used first out).' }),
};

export interface SubjectKeyConfig {
  table: string;
  cache: { ttlMs: number; maxEntries: number };
  wrapping: { kind: 'kms'; keyId: string } | { kind: 'local'; kekFile: string };
}

/** KMS when SUBJECT_KEYS_KMS_KEY_ID is set; otherwise the local KEK file, which production refuses. */
export function loadSubjectKeyConfig(env: Env): SubjectKeyConfig {
  const s = readSettings(env, SUBJECT_KEY_SETTINGS);
  const cache = { ttlMs: s.cacheTtlMs, maxEntries: s.cacheEntries };
  if (s.kmsKeyId) return { table: s.table, cache, wrapping: { kind: 'kms', keyId: s.kmsKeyId } };
  if (!isDevelopment(env)) throw new ConfigError(SUBJECT_KEY_SETTINGS.kmsKeyId.name, 'is required: the local key-encryption key file is used only in development mode (TASKFLOW_ENV=development, set by `taskflow dev`)');
  return { table: s.table, cache, wrapping: { kind: 'local', kekFile: s.localKekFile } };
}

/**
 * A reader's keys (router, search, notifications): with KMS when its key id is set, with the
 * local KEK in development mode, none otherwise — encrypted fields then pass through unread.
 */
export function readerKeyConfig(env: Env): { subjectKeys?: SubjectKeyConfig } {
  return SUBJECT_KEY_SETTINGS.kmsKeyId.read(env) || isDevelopment(env) ? { subjectKeys: loadSubjectKeyConfig(env) } : {};
}

/**
 * The erased-subjects list as a look-up: whether the table holds the subject's tombstone. A read
 * of one item, no key unwrapped, so a service that decrypts nothing (audit) needs no KMS.
 */
export function erasedSubjectLookup(table: KeyTable): (subject: string) => Promise<boolean> {
  return async (subject) => (await table.get(kidFor(subject)))?.erased === true;
}

/** The store a service uses; `kms` is called only when the config wraps with KMS. */
export function createSubjectKeyStore(cfg: SubjectKeyConfig, dynamo: DynamoDBClient, kms: () => Pick<KMSClient, 'send'>): WrappedSubjectKeyStore {
  const wrapper = cfg.wrapping.kind === 'kms' ? new KmsKeyWrapper(kms(), cfg.wrapping.keyId) : new LocalKeyWrapper(loadOrCreateLocalKek(cfg.wrapping.kekFile));
  return new WrappedSubjectKeyStore(new DynamoKeyTable(dynamo, cfg.table), wrapper);
}
