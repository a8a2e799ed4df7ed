// Field encryption (crypto-shredding): any text round-trips under its subject's key; the same
// ciphertext under another subject (the AAD), another key, or with any bit flipped fails; a
// destroyed key reads as null; the consumers' cache forgets a destroyed key within its TTL.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { sampleEvent } from '../schemas/fixtures.js';
import { CachedKeyStore, FieldDecryptError, decryptEvent, decryptField, decryptWith, encryptField, erasedField, isEncryptedField } from './field-crypto.js';
import { LocalKeyWrapper, MemoryKeyTable, type SubjectKey, WrappedSubjectKeyStore, kidFor } from './subject-keys.js';

const subjectKey = fc.tuple(fc.string({ minLength: 1, maxLength: 40 }), fc.uint8Array({ minLength: 32, maxLength: 32 })).map(([subject, key]): SubjectKey => ({ subject, kid: kidFor(subject), key: Buffer.from(key) }));

describe('field encryption', () => {
  it('round-trips any text in the schema shape (base64url iv and ct)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 500 }), subjectKey, async (text, key) => {
        const f = encryptField(text, key);
        expect(isEncryptedField(f)).toBe(true);
        expect(Object.keys(f).sort()).toEqual(['ct', 'enc', 'iv', 'kid']);
        expect(f.iv).toMatch(/^[A-Za-z0-9_-]{16}$/);
        expect(f.ct).toMatch(/^[A-Za-z0-9_-]*$/);
        expect(await decryptField(f, () => Promise.resolve(key))).toBe(text);
      }),
    );
  });

  it('fails under another subject (the AAD) or another key', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 100 }), subjectKey, fc.string({ minLength: 1, maxLength: 40 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (text, key, other, otherKey) => {
        const f = encryptField(text, key);
        fc.pre(other !== key.subject && !Buffer.from(otherKey).equals(key.key));
        expect(() => decryptWith(f, { ...key, subject: other })).toThrow(FieldDecryptError);
        expect(() => decryptWith(f, { ...key, key: Buffer.from(otherKey) })).toThrow(FieldDecryptError);
      }),
    );
  });

  it('fails on any flipped bit of iv or ct', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 100 }), subjectKey, fc.constantFrom<'iv' | 'ct'>('iv', 'ct'), fc.nat(), fc.integer({ min: 0, max: 7 }), (text, key, part, at, bit) => {
        const f = encryptField(text, key);
        const bytes = Buffer.from(f[part], 'base64url');
        bytes[at % bytes.length]! ^= 1 << bit;
        expect(() => decryptWith({ ...f, [part]: bytes.toString('base64url') }, key)).toThrow(FieldDecryptError);
      }),
    );
  });

  it('reads plaintext and null as they are, a destroyed key and the erased marker as null', async () => {
    const store = new WrappedSubjectKeyStore(new MemoryKeyTable(), new LocalKeyWrapper(randomBytes(32)));
    const f = encryptField('hello @ana', await store.keyFor('u1'));
    expect(await decryptField(f, store)).toBe('hello @ana');
    expect(await decryptField('plain', store)).toBe('plain');
    expect(await decryptField(null, store)).toBeNull();
    await expect(decryptField({ enc: 'v2' }, store)).rejects.toMatchObject({ code: 'FIELD_NOT_ENCRYPTED' });
    await store.destroy('u1');
    expect(await decryptField(f, store)).toBeNull();
    expect(await decryptField(erasedField(kidFor('u1')), store)).toBeNull();
  });
});

describe('decrypting events', () => {
  it('decrypts a comment event, leaves other events alone, and reads a tampered field as null, telling the caller', async () => {
    const store = new WrappedSubjectKeyStore(new MemoryKeyTable(), new LocalKeyWrapper(randomBytes(32)));
    const body = encryptField('hi @bob', await store.keyFor('u1'));
    const event = sampleEvent('comment.created', { row: { author_id: 'u1', body: body as never } });
    expect((await decryptEvent(event, store)).data.after?.body).toBe('hi @bob');
    expect(event.data.after?.body).toEqual(body); // a copy: the event as read stays as it travelled
    const membership = sampleEvent('membership.created');
    expect(await decryptEvent(membership, store)).toBe(membership);
    const unreadable: string[] = [];
    const tampered = sampleEvent('comment.created', { row: { author_id: 'u1', body: { ...body, ct: body.ct.slice(0, -2) + (body.ct.endsWith('AA') ? 'BB' : 'AA') } as never } });
    expect((await decryptEvent(tampered, store, (e) => unreadable.push(e.code))).data.after?.body).toBeNull();
    expect(unreadable).toEqual(['FIELD_DECRYPT_FAILED']);
  });
});

describe('the consumers key cache', () => {
  const setup = () => {
    let now = 0;
    const inner = new WrappedSubjectKeyStore(new MemoryKeyTable(), new LocalKeyWrapper(randomBytes(32)));
    let reads = 0;
    const counting = { ...inner, keyFor: (s: string) => inner.keyFor(s), keyById: (k: string) => (reads++, inner.keyById(k)), destroy: (s: string) => inner.destroy(s), isDestroyed: (s: string) => inner.isDestroyed(s) };
    const cache = new CachedKeyStore(counting, { ttlMs: 1000, maxEntries: 3, now: () => now });
    return { inner, cache, reads: () => reads, advance: (ms: number) => (now += ms) };
  };

  it('reads a key once per TTL, and a key destroyed elsewhere stops decrypting within the TTL', async () => {
    const { inner, cache, reads, advance } = setup();
    const f = encryptField('secret', await inner.keyFor('u1'));
    expect(await decryptField(f, cache)).toBe('secret');
    expect(await decryptField(f, cache)).toBe('secret');
    expect(reads()).toBe(1);
    await inner.destroy('u1'); // another process
    advance(999);
    expect(await decryptField(f, cache)).toBe('secret');
    advance(1);
    expect(await decryptField(f, cache)).toBeNull();
  });

  it('forgets at once a key destroyed through it', async () => {
    const { cache } = setup();
    const f = encryptField('secret', await cache.keyFor('u1'));
    expect(await decryptField(f, cache)).toBe('secret');
    await cache.destroy('u1');
    expect(await decryptField(f, cache)).toBeNull();
    await expect(cache.keyFor('u1')).rejects.toMatchObject({ code: 'SUBJECT_ERASED' });
  });

  it('stays bounded', async () => {
    const { inner, cache } = setup();
    for (const s of ['a', 'b', 'c', 'd', 'e']) await decryptField(encryptField('x', await inner.keyFor(s)), cache);
    expect(cache.size).toBe(3);
  });
});
