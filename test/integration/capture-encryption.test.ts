// Crypto-shredding at capture (CAPTURE_ENCRYPT_PERSONAL_FIELDS, real Postgres 17, kinesalite,
// dynalite): a comment's body and a task's description reach Kinesis only as ciphertext under
// their author's key, valid by the schemas; a task without a creator keeps its plaintext; an
// erased author's new comment is written as the erased marker; and after destroy the records
// already on the stream read as null.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { type RunningCapture } from '../../capture/main.js';
import { DEMO, seedDemo } from '../../db/seed.js';
import { decryptEvent, isEncryptedField } from '../../lib/field-crypto.js';
import { createSubjectKeyStore, kidFor, loadSubjectKeyConfig } from '../../lib/subject-keys.js';
import { validateEvent } from '../../schemas/validate.js';
import { createTestDatabase, createTestStream, createTestTables, dynamoClient, kinesisClient, uniqueName } from '../support/stack.js';
import { StreamReader, type StreamedEvent } from './capture-helpers.js';
import { waitFor } from '../support/wait.js';
import { startTestCapture, testCaptureEnv } from '../support/capture.js';

let dbUrl: string;
let pool: pg.Pool;
let capture: RunningCapture;
let kinesis: KinesisClient;
let dynamo: DynamoDBClient;
let reader: StreamReader;
let keyEnv: Record<string, string>;
const slot = uniqueName('capture_enc');
const alice = DEMO.users.alice;
const bob = DEMO.users.bob;

beforeAll(async () => {
  dbUrl = await createTestDatabase('capture_enc');
  await seedDemo(dbUrl);
  const stream = await createTestStream('capture-enc', 1);
  const tables = await createTestTables('capture-enc', ['dlq', 'checkpoints', 'subject-keys']);
  keyEnv = { TASKFLOW_ENV: 'development', DYNAMODB_TABLE_SUBJECT_KEYS: tables['subject-keys']!, SUBJECT_KEYS_LOCAL_KEK_FILE: join(mkdtempSync(join(tmpdir(), 'capture-kek-')), 'kek'), SUBJECT_KEYS_CACHE_TTL_MS: '200' };
  pool = new pg.Pool({ connectionString: dbUrl, max: 2 });
  dynamo = dynamoClient();
  capture = await startTestCapture(testCaptureEnv({ databaseUrl: dbUrl, stream, tables, slot }, { ...keyEnv, CAPTURE_ENCRYPT_PERSONAL_FIELDS: 'true' }));
  kinesis = kinesisClient();
  reader = new StreamReader(kinesis, stream);
}, 60_000);

afterAll(async () => {
  await capture?.close();
  await pool?.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => undefined);
  await pool?.end();
  kinesis?.destroy();
  dynamo?.destroy();
});

const keys = () => createSubjectKeyStore(loadSubjectKeyConfig(keyEnv), dynamo, () => {
  throw new Error('no KMS locally');
});

async function eventOf(table: string, id: string): Promise<{ event: StreamedEvent; raw: string }> {
  let found: number | undefined;
  await waitFor(async () => {
    await reader.poll();
    found = reader.events.findIndex((e) => e.data.table === table && e.data.key.id === id);
    return found >= 0;
  }, `${table}/${id} on the stream`, 20_000);
  return { event: reader.events[found!]!, raw: reader.raw[found!]! };
}

describe('capture with personal-field encryption', () => {
  it('puts only ciphertext on the stream, keeps a creator-less task plain, and shreds on destroy', async () => {
    const task = randomUUID();
    const orphan = randomUUID();
    const comment = randomUUID();
    await pool.query("INSERT INTO tasks (id, workspace_id, project_id, title, description, created_by) VALUES ($1, $2, $3, 'enc', 'alice private notes', $4), ($5, $2, $3, 'plain', 'nobody wrote this', NULL)", [task, DEMO.workspaceId, DEMO.projectId, alice, orphan]);
    await pool.query("INSERT INTO comments (id, workspace_id, project_id, task_id, author_id, body) VALUES ($1, $2, $3, $4, $5, 'bob says hello @alice')", [comment, DEMO.workspaceId, DEMO.projectId, task, bob]);

    const t = await eventOf('tasks', task);
    const c = await eventOf('comments', comment);
    const o = await eventOf('tasks', orphan);
    for (const { raw } of [t, c]) {
      expect(validateEvent(JSON.parse(raw)).ok).toBe(true);
      expect(raw).not.toContain('private notes');
      expect(raw).not.toContain('says hello');
    }
    expect(t.event.data.after!.description).toMatchObject({ enc: 'v1', kid: kidFor(alice) });
    expect(isEncryptedField(c.event.data.after!.body)).toBe(true);
    expect(o.event.data.after!.description).toBe('nobody wrote this');

    const store = keys();
    expect((await decryptEvent(c.event, store)).data.after!.body).toBe('bob says hello @alice');
    expect((await decryptEvent(t.event, store)).data.after!.description).toBe('alice private notes');

    await store.destroy(bob);
    // The same record, read again: shredded. Alice's is untouched.
    expect((await decryptEvent(c.event, keys())).data.after!.body).toBeNull();
    expect((await decryptEvent(t.event, keys())).data.after!.description).toBe('alice private notes');

    // Capture learns of the erasure within its cache TTL (200 ms here): bob's comments become the
    // erased marker, and stay so.
    const destroyedAt = Date.now();
    const bobComments = async () => {
      const id = randomUUID();
      await pool.query("INSERT INTO comments (id, workspace_id, project_id, task_id, author_id, body) VALUES ($1, $2, $3, $4, $5, 'bob again')", [id, DEMO.workspaceId, DEMO.projectId, task, bob]);
      return eventOf('comments', id);
    };
    const l = await waitFor(async () => {
      const e = await bobComments();
      return (e.event.data.after!.body as { ct?: string }).ct === '' && e;
    }, 'a comment of erased bob written as the erased marker', 10_000);
    // Committed after the TTL at the latest (+ the time to read it back).
    expect(Date.now() - destroyedAt).toBeLessThan(200 + 5_000);
    expect(l.event.data.after!.body).toMatchObject({ enc: 'v1', kid: kidFor(bob), ct: '' });
    expect((await bobComments()).event.data.after!.body).toMatchObject({ ct: '' });
    expect(validateEvent(JSON.parse(l.raw)).ok).toBe(true);
    expect(l.raw).not.toContain('bob again');
    expect((await decryptEvent(l.event, keys())).data.after!.body).toBeNull();
  }, 60_000);
});
