// `taskflow notifications redrive` prepares a letter as the live path does (shard-processor.ts):
// a comment whose body is encrypted notifies the users it @mentions, like live; an erased
// author's comment notifies nobody of its text and names nobody erased.
import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { ErasedSubjects } from '@taskflow/stream';
import { MemoryDeadLetterStore } from '../lib/dlq.js';
import { encryptField, streamEventDecryptor } from '../lib/field-crypto.js';
import { LocalKeyWrapper, MemoryKeyTable, WrappedSubjectKeyStore } from '../lib/subject-keys.js';
import { sampleEvent } from '../schemas/fixtures.js';
import { validateEvent } from '../schemas/validate.js';
import type { PipelineDeps } from './pipeline.js';
import { redriveNotificationDeadLetters } from './redrive.js';
import type { Notification } from './rules.js';

const WS = '11111111-1111-4111-8111-0000000000f3';
const [ALIVE, ERASED, MENTIONED] = ['66666666-6666-4666-8666-0000000000c1', '66666666-6666-4666-8666-0000000000c2', '66666666-6666-4666-8666-0000000000c3'];

describe('taskflow notifications redrive', () => {
  it('decrypts a redriven comment for its @mentions as live, and blanks an erased author', async () => {
    const store = new MemoryDeadLetterStore();
    const keys = new WrappedSubjectKeyStore(new MemoryKeyTable(), new LocalKeyWrapper(randomBytes(32)));
    const stored: Notification[] = [];
    const pipeline: PipelineDeps = {
      inbox: { add: async (n) => void stored.push(...n) },
      watchers: { watchers: async () => new Map(), record: async () => {} },
      memberships: { apply: async () => {} },
      delivery: { deliver: async (n) => n.length },
    };
    const letter = async (author: string, n: number) => {
      const body = encryptField(`ping @${MENTIONED} about the launch`, await keys.keyFor(author));
      const comment = sampleEvent('comment.created', { workspaceId: WS, commitLsn: BigInt(0x100 * n), entityId: `44444444-4444-4444-8444-0000000000b${n}`, userId: author, row: { body: body as never } });
      await store.put({ source: 'notifications', reason: 'unknown_schema', message: '', payload: Buffer.from(JSON.stringify(comment)), origin: { sequenceNumber: String(n) } });
    };
    await letter(ALIVE, 1);
    await letter(ERASED, 2);
    await keys.destroy(ERASED);

    const prepare = { decrypt: streamEventDecryptor(keys), erased: new ErasedSubjects({ lookup: (s) => keys.isDestroyed(s), ttlMs: 0 }) };
    const result = await redriveNotificationDeadLetters({ store, pipeline, validate: validateEvent, prepare });
    expect(result.redriven).toHaveLength(2);
    // Only the live author's comment mentions anyone: the erased one's body is shredded and blanked.
    expect(stored.filter((n) => n.kind === 'mentioned').map((n) => [n.userId, n.actorId])).toEqual([[MENTIONED, ALIVE]]);
    expect(JSON.stringify(stored)).not.toContain(ERASED);
  });
});
