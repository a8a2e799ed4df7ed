import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ConfigError } from './errors.js';
import { type KeyItem, KmsKeyWrapper, LocalKeyWrapper, MemoryKeyTable, SubjectErasedError, WrappedSubjectKeyStore, kidFor, loadOrCreateLocalKek, loadSubjectKeyConfig } from './subject-keys.js';

const kek = () => new LocalKeyWrapper(randomBytes(32));
const store = (table = new MemoryKeyTable(), wrapper = kek()) => ({ table, store: new WrappedSubjectKeyStore(table, wrapper, () => new Date('2026-12-02T12:00:00Z')) });

describe('subject key store', () => {
  it('creates a subject key once, returns it again and finds it by id', async () => {
    const { table, store: s } = store();
    const a = await s.keyFor('u1');
    expect(a.key).toHaveLength(32);
    expect(a.kid).toBe(kidFor('u1'));
    expect((await s.keyFor('u1')).key.equals(a.key)).toBe(true);
    expect(await s.keyById(a.kid)).toEqual(a);
    expect(await s.keyById(kidFor('nobody'))).toBeNull();
    // Stored wrapped: the table never holds the plaintext key.
    const item = table.items.get(a.kid) as KeyItem & { wrapped: Buffer };
    expect(item.wrapped.includes(a.key)).toBe(false);
    expect(item.wrapped).toHaveLength(12 + 16 + 32);
  });

  it('gives racing first users of a subject one key (conditional put)', async () => {
    const { store: s } = store();
    const keys = await Promise.all(Array.from({ length: 8 }, () => s.keyFor('u1')));
    expect(new Set(keys.map((k) => k.key.toString('hex'))).size).toBe(1);
  });

  it('destroys idempotently, leaves a tombstone without the key or subject id, and never recreates the key', async () => {
    const { table, store: s } = store();
    const k = await s.keyFor('u1');
    const d = await s.destroy('u1');
    expect(d).toEqual({ subject: 'u1', kids: [k.kid], destroyedAt: '2026-12-02T12:00:00.000Z', store: 'memory' });
    expect(await s.destroy('u1')).toEqual(d);
    expect(await s.keyById(k.kid)).toBeNull();
    expect(await s.isDestroyed('u1')).toBe(true);
    await expect(s.keyFor('u1')).rejects.toBeInstanceOf(SubjectErasedError);
    expect(JSON.stringify(table.items.get(k.kid))).not.toContain('u1');
    expect(await s.isDestroyed('u2')).toBe(false);
  });

  it('erases a subject that never had a key: no key is created for it afterwards', async () => {
    const { store: s } = store();
    expect((await s.destroy('u9')).kids).toEqual([]);
    await expect(s.keyFor('u9')).rejects.toMatchObject({ code: 'SUBJECT_ERASED', kid: kidFor('u9') });
  });

  it('refuses a key wrapped by another wrapper instead of returning garbage', async () => {
    const table = new MemoryKeyTable();
    await store(table).store.keyFor('u1');
    await expect(store(table).store.keyFor('u1')).rejects.toMatchObject({ code: 'KEY_WRAPPER_MISMATCH' });
  });

  it('under any interleaving of keyFor and destroy, every caller of keyFor gets the one key or SubjectErasedError, and nothing decrypts after destroy', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom('keyFor', 'destroy'), { minLength: 1, maxLength: 12 }), fc.scheduler(), async (ops, sched) => {
        const table = new MemoryKeyTable();
        // Every table call is a scheduling point, so reads and conditional writes interleave.
        const scheduled: MemoryKeyTable = Object.assign(Object.create(table) as MemoryKeyTable, {
          get: sched.scheduleFunction((kid: string) => table.get(kid)),
          putIfAbsent: sched.scheduleFunction((i: KeyItem) => table.putIfAbsent(i)),
          replaceWithTombstone: sched.scheduleFunction((t: KeyItem & { erased: true }, e: KeyItem | undefined) => table.replaceWithTombstone(t, e)),
        });
        const s = new WrappedSubjectKeyStore(scheduled, kek());
        const results = ops.map((op) => (op === 'keyFor' ? s.keyFor('u1').then((k) => k.key.toString('hex'), (e: unknown) => (e instanceof SubjectErasedError ? 'erased' : Promise.reject(e))) : s.destroy('u1').then(() => 'destroyed')));
        const out = await sched.waitFor(Promise.all(results));
        const keys = new Set(out.filter((r) => r !== 'erased' && r !== 'destroyed'));
        expect(keys.size).toBeLessThanOrEqual(1);
        if (ops.includes('destroy')) {
          expect(await table.get(kidFor('u1'))).toMatchObject({ erased: true });
          await expect(new WrappedSubjectKeyStore(table, kek()).keyFor('u1')).rejects.toBeInstanceOf(SubjectErasedError);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('key wrapping', () => {
  it('local: unwraps what it wrapped, and only under the same kid and KEK', async () => {
    const w = kek();
    const { plaintext, wrapped } = await w.generate('k1');
    expect((await w.unwrap(wrapped, 'k1')).equals(plaintext)).toBe(true);
    await expect(w.unwrap(wrapped, 'k2')).rejects.toThrow();
    await expect(kek().unwrap(wrapped, 'k1')).rejects.toThrow();
  });

  it('KMS: one environment key, the kid (never the subject id) as encryption context', async () => {
    const calls: { name: string; input: Record<string, unknown> }[] = [];
    const kms = {
      send: (cmd: { constructor: { name: string }; input: Record<string, unknown> }) => {
        calls.push({ name: cmd.constructor.name, input: cmd.input });
        return Promise.resolve(cmd.constructor.name === 'GenerateDataKeyCommand' ? { Plaintext: new Uint8Array(32).fill(7), CiphertextBlob: new Uint8Array([1, 2, 3]) } : { Plaintext: new Uint8Array(32).fill(7) });
      },
    };
    const s = new WrappedSubjectKeyStore(new MemoryKeyTable(), new KmsKeyWrapper(kms as never, 'alias/taskflow'));
    const k = await s.keyFor('user-42');
    expect((await s.keyById(k.kid))?.key.equals(k.key)).toBe(true);
    expect(calls).toEqual([
      { name: 'GenerateDataKeyCommand', input: { KeyId: 'alias/taskflow', KeySpec: 'AES_256', EncryptionContext: { kid: k.kid } } },
      { name: 'DecryptCommand', input: { KeyId: 'alias/taskflow', CiphertextBlob: Buffer.from([1, 2, 3]), EncryptionContext: { kid: k.kid } } },
    ]);
    expect(JSON.stringify(calls)).not.toContain('user-42');
  });

  it('the local KEK file: created 0600 once, concurrent creators read the same key, a bad file is a config error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kek-'));
    const path = join(dir, 'nested', 'kek');
    const first = loadOrCreateLocalKek(path);
    expect(first).toHaveLength(32);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(loadOrCreateLocalKek(path).equals(first)).toBe(true);
    expect(readFileSync(path, 'utf8')).toBe(first.toString('base64url'));
    writeFileSync(join(dir, 'short'), 'abc');
    expect(() => loadOrCreateLocalKek(join(dir, 'short'))).toThrow(ConfigError);
  });
});

describe('subject key settings', () => {
  it('uses KMS when a key id is set, the local KEK only in development mode', () => {
    expect(loadSubjectKeyConfig({ SUBJECT_KEYS_KMS_KEY_ID: 'alias/taskflow' })).toEqual({ table: 'taskflow-subject-keys', cache: { ttlMs: 30_000, maxEntries: 10_000 }, wrapping: { kind: 'kms', keyId: 'alias/taskflow' } });
    expect(loadSubjectKeyConfig({ TASKFLOW_ENV: 'development', DYNAMODB_TABLE_SUBJECT_KEYS: 't' })).toEqual({ table: 't', cache: { ttlMs: 30_000, maxEntries: 10_000 }, wrapping: { kind: 'local', kekFile: '.taskflow/dev-subject-kek' } });
    for (const env of [{}, { TASKFLOW_ENV: 'production', SUBJECT_KEYS_LOCAL_KEK_FILE: '/tmp/kek' }]) expect(() => loadSubjectKeyConfig(env)).toThrow(/SUBJECT_KEYS_KMS_KEY_ID: is required/);
  });
});
