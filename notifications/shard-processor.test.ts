import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { encryptField, streamEventDecryptor } from '../lib/field-crypto.js';
import type { UserRecord } from '@taskflow/stream';
import { LocalKeyWrapper, MemoryKeyTable, WrappedSubjectKeyStore } from '../lib/subject-keys.js';
import { sampleEvent } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import type { Notification } from './rules.js';
import { NotificationShardProcessor } from './shard-processor.js';

const WS = '11111111-1111-4111-8111-0000000000c1';
const AUTHOR = '66666666-6666-4666-8666-0000000000c1';
const MENTIONED = '66666666-6666-4666-8666-0000000000c2';

describe('NotificationShardProcessor with encrypted comment bodies', () => {
  it('finds the @mention in a body it decrypts, and none in a shredded one', async () => {
    const keys = new WrappedSubjectKeyStore(new MemoryKeyTable(), new LocalKeyWrapper(randomBytes(32)));
    const stored: Notification[] = [];
    const processor = new NotificationShardProcessor('s-1', {
      consumer: 'notifications',
      inbox: { add: async (n) => void stored.push(...n) },
      watchers: { watchers: async () => new Map(), record: async () => {} },
      memberships: { apply: async () => {} },
      delivery: { deliver: async () => 0 },
      deadLetters: { put: async () => {} },
      validate: validateEvent,
      decrypt: streamEventDecryptor(keys),
    });
    const comment = async (n: number) => {
      const body = encryptField(`ping @${MENTIONED}`, await keys.keyFor(AUTHOR));
      const event = sampleEvent('comment.created', { workspaceId: WS, txIndex: n, row: { author_id: AUTHOR, body: body as never } });
      const record: UserRecord = { shardId: 's-1', sequenceNumber: String(n), subSequenceNumber: 0, partitionKey: WS, data: Buffer.from(JSON.stringify(event)) };
      await processor.processRecords({ millisBehindLatest: 0, records: [record] }, { checkpoint: async () => {} });
    };
    await comment(0);
    expect(stored.map((n) => [n.userId, n.kind])).toEqual([[MENTIONED, 'mentioned']]);
    await keys.destroy(AUTHOR);
    await expect(comment(1)).rejects.toMatchObject({ code: 'SUBJECT_ERASED' }); // capture would have written the erased marker
  });
});
