// The subject key store on the local DynamoDB (dynalite) with the local KEK: conditional writes
// make racing first users share one key, destroy leaves a tombstone holding neither key nor
// subject id, and a store restarted on the same table and KEK file keeps the subject erased.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ScanCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { decryptField, encryptField } from '../../lib/field-crypto.js';
import { SubjectErasedError, createSubjectKeyStore, loadSubjectKeyConfig } from '../../lib/subject-keys.js';
import { createTestTables, dynamoClient } from '../support/stack.js';

let client: DynamoDBClient;
let table: string;
let env: Record<string, string>;

beforeAll(async () => {
  client = dynamoClient();
  table = (await createTestTables('subject-keys', ['subject-keys']))['subject-keys']!;
  env = { TASKFLOW_ENV: 'development', DYNAMODB_TABLE_SUBJECT_KEYS: table, SUBJECT_KEYS_LOCAL_KEK_FILE: join(mkdtempSync(join(tmpdir(), 'subject-kek-')), 'kek') };
});

afterAll(() => client?.destroy());

const open = () => createSubjectKeyStore(loadSubjectKeyConfig(env), client, () => {
  throw new Error('no KMS locally');
});

describe('subject keys on DynamoDB', () => {
  it('creates one key for racing first users, shreds every field on destroy, and keeps the subject erased across restarts', async () => {
    const subject = randomUUID();
    const racers = await Promise.all(Array.from({ length: 6 }, () => open().keyFor(subject)));
    expect(new Set(racers.map((k) => k.key.toString('hex'))).size).toBe(1);
    const field = encryptField('my private comment', racers[0]!);
    expect(await decryptField(field, open())).toBe('my private comment');

    const d = await open().destroy(subject);
    expect(d).toMatchObject({ subject, kids: [racers[0]!.kid], store: `dynamodb:${table}` });
    expect(await open().destroy(subject)).toEqual(d);
    expect(await decryptField(field, open())).toBeNull();
    await expect(open().keyFor(subject)).rejects.toBeInstanceOf(SubjectErasedError);
    expect(await open().isDestroyed(subject)).toBe(true);

    const items = (await client.send(new ScanCommand({ TableName: table, ConsistentRead: true }))).Items ?? [];
    const item = items.find((i) => i.kid?.S === racers[0]!.kid);
    expect(item).toMatchObject({ erased: { BOOL: true } });
    expect(item?.wrapped).toBeUndefined();
    expect(JSON.stringify(item)).not.toContain(subject);
  });

  it('a destroy racing a first keyFor: afterwards no key exists for the subject', async () => {
    const subject = randomUUID();
    const [k, d] = await Promise.allSettled([open().keyFor(subject), open().destroy(subject)]);
    expect(d.status).toBe('fulfilled');
    if (k.status === 'fulfilled') expect(await open().keyById(k.value.kid)).toBeNull();
    else expect(k.reason).toBeInstanceOf(SubjectErasedError);
    await expect(open().keyFor(subject)).rejects.toBeInstanceOf(SubjectErasedError);
  });
});
