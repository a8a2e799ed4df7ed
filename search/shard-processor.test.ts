import { describe, expect, it } from '@jest/globals';
import { sampleEvent } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import type { Checkpointer, UserRecord } from '@taskflow/stream';
import { TaskflowError } from '../lib/errors.js';
import type { ConsumerDeadLetter as SearchDeadLetter } from '@taskflow/stream';
import { randomBytes } from 'node:crypto';
import { encryptField, streamEventDecryptor } from '../lib/field-crypto.js';
import { LocalKeyWrapper, MemoryKeyTable, WrappedSubjectKeyStore } from '../lib/subject-keys.js';
import { SearchShardProcessor } from './shard-processor.js';
import { SqliteSearchIndex } from './sqlite-index.js';

const WS = '11111111-1111-4111-8111-0000000000e1';
const record = (data: Uint8Array, n: number, decodeError?: TaskflowError): UserRecord => ({
  shardId: 's-1', sequenceNumber: String(n), subSequenceNumber: 0, partitionKey: WS, data, ...(decodeError ? { decodeError } : {}),
});

describe('SearchShardProcessor', () => {
  it('dead-letters what is not a valid event with its reason and origin, indexes the rest, then checkpoints', async () => {
    const index = new SqliteSearchIndex(':memory:');
    const letters: SearchDeadLetter[] = [];
    const order: string[] = [];
    const apply = index.apply.bind(index);
    index.apply = async (b) => {
      order.push('apply');
      await apply(b);
    };
    const checkpointer: Checkpointer = { checkpoint: async () => void order.push('checkpoint') };
    const processor = new SearchShardProcessor('s-1', { consumer: 'search', index, validate: validateEvent, deadLetters: { put: async (l) => void letters.push(l) } });
    const good = sampleEvent('task.created', { workspaceId: WS, row: { title: 'findable', description: null } });
    const invalid = { ...sampleEvent('task.created', { workspaceId: WS }), type: 'taskflow.task.exploded' };
    await processor.processRecords(
      {
        millisBehindLatest: 0,
        records: [
          record(Buffer.from('{not json'), 1),
          record(Buffer.from(JSON.stringify(invalid)), 2),
          record(Buffer.from([0x00, 0x01]), 3, new TaskflowError('RECORD_CORRUPT', 'not a contract form')),
          record(Buffer.from(JSON.stringify(good)), 4),
        ],
      },
      checkpointer,
    );
    expect(letters.map((l) => [l.reason, l.origin.sequenceNumber])).toEqual([
      ['malformed_json', '1'],
      ['unknown_type', '2'],
      ['undecodable_record', '3'],
    ]);
    expect(order).toEqual(['apply', 'checkpoint']);
    expect((await index.search({ workspaceId: WS, terms: ['findable'], projects: 'all', limit: 5 })).length).toBe(1);
  });

  it('does not checkpoint a batch the index failed to take', async () => {
    const index = new SqliteSearchIndex(':memory:');
    index.apply = () => Promise.reject(new Error('disk full'));
    let checkpoints = 0;
    const processor = new SearchShardProcessor('s-1', { consumer: 'search', index, validate: validateEvent, deadLetters: { put: async () => {} } });
    const batch = { millisBehindLatest: 0, records: [record(Buffer.from(JSON.stringify(sampleEvent('task.created', { workspaceId: WS }))), 1)] };
    await expect(processor.processRecords(batch, { checkpoint: async () => void (checkpoints += 1) })).rejects.toThrow('disk full');
    expect(checkpoints).toBe(0);
  });

  it('indexes an encrypted description by its plaintext, and a shredded one without text', async () => {
    const index = new SqliteSearchIndex(':memory:');
    const keys = new WrappedSubjectKeyStore(new MemoryKeyTable(), new LocalKeyWrapper(randomBytes(32)));
    const author = '66666666-6666-4666-8666-0000000000e1';
    const processor = new SearchShardProcessor('s-1', { consumer: 'search', index, validate: validateEvent, deadLetters: { put: async () => {} }, decrypt: streamEventDecryptor(keys) });
    const description = encryptField('confidential roadmap', await keys.keyFor(author));
    const task = sampleEvent('task.created', { workspaceId: WS, row: { title: 'plain title', created_by: author, description: description as never } });
    await processor.processRecords({ millisBehindLatest: 0, records: [record(Buffer.from(JSON.stringify(task)), 1)] }, { checkpoint: async () => {} });
    expect((await index.search({ workspaceId: WS, terms: ['roadmap'], projects: 'all', limit: 5 })).map((h) => h.text)).toEqual(['confidential roadmap']);

    await keys.destroy(author);
    const again = sampleEvent('task.created', { workspaceId: WS, txIndex: 1, entityId: '44444444-4444-4444-8444-0000000000e2', row: { title: 'second', created_by: author, description: description as never } });
    await processor.processRecords({ millisBehindLatest: 0, records: [record(Buffer.from(JSON.stringify(again)), 2)] }, { checkpoint: async () => {} });
    expect((await index.search({ workspaceId: WS, terms: ['second'], projects: 'all', limit: 5 })).map((h) => h.text)).toEqual(['']);
  });
});
