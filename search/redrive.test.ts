import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { ErasedSubjects } from '@taskflow/stream';
import { MemoryDeadLetterStore } from '../lib/dlq.js';
import { encryptField, streamEventDecryptor } from '../lib/field-crypto.js';
import { LocalKeyWrapper, MemoryKeyTable, WrappedSubjectKeyStore } from '../lib/subject-keys.js';
import { sampleEvent } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import { redriveSearchDeadLetters } from './redrive.js';
import { SqliteSearchIndex } from './sqlite-index.js';

const WS = '11111111-1111-4111-8111-0000000000f1';

describe('taskflow search redrive', () => {
  it('re-applies what is valid now, marks it redriven, leaves the rest with today’s reason; twice is harmless', async () => {
    const store = new MemoryDeadLetterStore();
    const index = new SqliteSearchIndex(':memory:');
    // Dead-lettered under an older validator that did not know `priority: 4`, say; valid now.
    const fixed = sampleEvent('task.created', { workspaceId: WS, row: { title: 'came back', description: null } });
    await store.put({ source: 'search', reason: 'schema_violation', message: 'old validator', payload: Buffer.from(JSON.stringify(fixed)), origin: { shardId: 's', sequenceNumber: '1' } });
    await store.put({ source: 'search', reason: 'malformed_json', message: 'not JSON', payload: Buffer.from('{oops'), origin: { shardId: 's', sequenceNumber: '2' } });
    await store.put({ source: 'router', reason: 'schema_violation', message: 'not ours', payload: Buffer.from(JSON.stringify(fixed)), origin: { shardId: 's', sequenceNumber: '3' } });

    const result = await redriveSearchDeadLetters({ store, index, validate: validateEvent });
    expect(result.redriven.map((d) => d.reason)).toEqual(['schema_violation']);
    expect(result.refused.map((r) => [r.letter.reason, r.message.split(':')[0]])).toEqual([['malformed_json', 'malformed_json']]);
    expect((await index.search({ workspaceId: WS, terms: ['came'], projects: 'all', limit: 5 })).map((h) => h.title)).toEqual(['came back']);
    expect((await store.list({ source: 'search' })).map((d) => d.reason)).toEqual(['malformed_json']);
    expect((await store.list({ source: 'router' })).length).toBe(1);

    // An entry already redriven is not redriven again, even by id.
    const again = await redriveSearchDeadLetters({ store, index, validate: validateEvent, id: result.redriven[0]!.id });
    expect(again.redriven).toEqual([]);
    expect((await index.documents(WS)).length).toBe(1);
  });

  it('applies nothing and marks nothing when the index refuses the batch', async () => {
    const store = new MemoryDeadLetterStore();
    const index = new SqliteSearchIndex(':memory:');
    index.apply = () => Promise.reject(new Error('engine down'));
    await store.put({ source: 'search', reason: 'unknown_schema', message: '', payload: Buffer.from(JSON.stringify(sampleEvent('task.created', { workspaceId: WS }))), origin: {} });
    await expect(redriveSearchDeadLetters({ store, index, validate: validateEvent })).rejects.toThrow('engine down');
    expect((await store.list({ source: 'search' })).length).toBe(1);
  });

  it('prepares a letter as the live path does: an encrypted description indexes its plaintext; an erased author\'s indexes none', async () => {
    const store = new MemoryDeadLetterStore();
    const index = new SqliteSearchIndex(':memory:');
    const keys = new WrappedSubjectKeyStore(new MemoryKeyTable(), new LocalKeyWrapper(randomBytes(32)));
    const prepare = { decrypt: streamEventDecryptor(keys), erased: new ErasedSubjects({ lookup: (s) => keys.isDestroyed(s), ttlMs: 0 }) };
    const [alive, erased] = ['66666666-6666-4666-8666-0000000000f1', '66666666-6666-4666-8666-0000000000f2'];
    const letter = async (author: string, entityId: string, words: string) => {
      const task = sampleEvent('task.created', { workspaceId: WS, entityId, commitLsn: BigInt(parseInt(entityId.slice(-2), 16)), row: { title: `t ${entityId.slice(-2)}`, created_by: author, description: encryptField(words, await keys.keyFor(author)) as never } });
      await store.put({ source: 'search', reason: 'unknown_schema', message: '', payload: Buffer.from(JSON.stringify(task)), origin: { sequenceNumber: entityId } });
    };
    await letter(alive, '44444444-4444-4444-8444-0000000000a1', 'confidential roadmap');
    await letter(erased, '44444444-4444-4444-8444-0000000000a2', 'secret memoir');
    await keys.destroy(erased);

    const result = await redriveSearchDeadLetters({ store, index, validate: validateEvent, prepare });
    expect(result.redriven).toHaveLength(2);
    expect((await index.search({ workspaceId: WS, terms: ['roadmap'], projects: 'all', limit: 5 })).map((h) => h.text)).toEqual(['confidential roadmap']);
    expect(await index.search({ workspaceId: WS, terms: ['memoir'], projects: 'all', limit: 5 })).toEqual([]);
    const docs = await index.documents(WS);
    expect(docs.find((d) => d.id.endsWith('a2'))?.text).toBe('');
    expect(JSON.stringify(docs)).not.toContain(erased);
  });
});
