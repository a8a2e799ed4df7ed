// The erasure request store on the local DynamoDB (dynalite): compare-and-set saves, one request
// per subject under racing creates, identifiers larger than an item stored in parts and gone once
// complete; and a processor process SIGKILLed in the middle of a purge and again later, restarted
// on the same table, that still completes with every sink verified empty and the key destroyed.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ScanCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SubjectIdentifiers } from '../../lib/erasure.js';
import { createSubjectKeyStore, kidFor, loadSubjectKeyConfig } from '../../lib/subject-keys.js';
import { newRequest } from '../../gdpr/processor.js';
import { DynamoRequestStore } from '../../gdpr/request-store.js';
import { createTestTables, dynamoClient, testStackEnv } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

let client: DynamoDBClient;
let tables: Record<string, string>;
let env: Record<string, string>;

beforeAll(async () => {
  client = dynamoClient();
  tables = await createTestTables('gdpr-store', ['gdpr-requests', 'subject-keys']);
  env = {
    ...testStackEnv(),
    TASKFLOW_ENV: 'development',
    DYNAMODB_TABLE_GDPR_REQUESTS: tables['gdpr-requests']!,
    DYNAMODB_TABLE_SUBJECT_KEYS: tables['subject-keys']!,
    SUBJECT_KEYS_LOCAL_KEK_FILE: join(mkdtempSync(join(tmpdir(), 'gdpr-kek-')), 'kek'),
  };
});

afterAll(() => client?.destroy());

const store = () => new DynamoRequestStore(client, tables['gdpr-requests']!);

function ids(subject: string, authored = 1, size = 20): SubjectIdentifiers {
  return { subject, email: `${subject}@example.com`, displayName: `Person ${subject.slice(0, 8)}`, authored: Array.from({ length: authored }, (_, i) => ({ table: 'comments' as const, id: `c${i}`, text: `note ${i} ${'é𝄞'.repeat(size)}` })) };
}

const request = (i: SubjectIdentifiers, sinks: string[] = ['a']) => newRequest({ requestId: randomUUID(), ids: i, ticket: 'DPO-1', requestedBy: 'dpo@example.com', now: new Date(), sinks });

describe('DynamoRequestStore', () => {
  it('racing creates for one subject leave one request; saves are compare-and-set on the version', async () => {
    const subject = randomUUID();
    const created = await Promise.all(Array.from({ length: 5 }, () => store().create(request(ids(subject)))));
    expect(new Set(created.map((r) => r.requestId)).size).toBe(1);
    const r = created[0]!;
    expect(r.identifiers).toEqual(ids(subject));
    expect(await store().forSubject(subject)).toEqual(r);

    const next = { ...r, step: 'keys-destroyed' as const, version: r.version + 1 };
    const racing = await Promise.all([store().save(next), store().save({ ...next, ticket: 'other' })]);
    expect(racing.filter(Boolean)).toHaveLength(1);
    expect(await store().save(next)).toBe(false);
    expect((await store().get(r.requestId))?.version).toBe(r.version + 1);
    expect((await store().open()).map((o) => o.requestId)).toContain(r.requestId);
  });

  it('keeps identifiers larger than an item in parts and deletes them with the save that completes the request', async () => {
    const subject = randomUUID();
    const big = ids(subject, 40, 3000); // ~40 × 12 KB of multi-byte text: several parts
    const r = await store().create(request(big));
    expect(await store().get(r.requestId)).toEqual({ ...r, identifiers: big });
    const { identifiers: _gone, ...rest } = r;
    expect(await store().save({ ...rest, step: 'complete', version: r.version + 1 })).toBe(true);
    expect((await store().get(r.requestId))?.identifiers).toBeUndefined();
    const items = (await client.send(new ScanCommand({ TableName: tables['gdpr-requests']!, ConsistentRead: true }))).Items ?? [];
    expect(items.filter((i) => i.id?.S?.startsWith(`ids/${r.requestId}/`))).toEqual([]);
    expect(JSON.stringify(items.filter((i) => i.id?.S === `request/${r.requestId}`))).not.toContain('note 0');
    expect((await store().open()).map((o) => o.requestId)).not.toContain(r.requestId);
  });

  it('a processor process SIGKILLed mid-purge and again later resumes from the store and completes, every sink verified', async () => {
    const subject = randomUUID();
    const subjectIds = ids(subject, 3);
    const sinkDir = mkdtempSync(join(tmpdir(), 'gdpr-sinks-'));
    const sinks = ['sink-a', 'sink-b', 'sink-c'];
    for (const s of sinks) {
      mkdirSync(join(sinkDir, s));
      for (let i = 0; i < 30; i += 1) writeFileSync(join(sinkDir, s, `${i}.txt`), i % 3 === 0 ? `other person's row ${i}` : `row ${i} of ${[subject, subjectIds.email, subjectIds.authored[i % 3]!.text][i % 3 === 1 ? 1 : 2]}`);
    }
    const keys = createSubjectKeyStore(loadSubjectKeyConfig(env), client, () => {
      throw new Error('no KMS locally');
    });
    await keys.keyFor(subject);
    const r = await store().create(request(subjectIds, sinks));
    const childEnv = { ...process.env, ...env, NODE_OPTIONS: '', GDPR_TEST_SINK_DIR: sinkDir, GDPR_TEST_REQUEST_ID: r.requestId, GDPR_TEST_PURGE_PAUSE_MS: '40' };
    const start = (): { child: ChildProcess; exited: Promise<number | null>; out: string[] } => {
      const out: string[] = [];
      const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'gdpr', 'processor-child.ts')], { env: childEnv, stdio: ['ignore', 'pipe', 'inherit'] });
      child.stdout!.on('data', (c: Buffer) => out.push(c.toString()));
      return { child, out, exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
    };
    const remaining = (s: string) => readdirSync(join(sinkDir, s)).length;

    // 1: killed while the first sink's purge has removed some of the subject's files, not all.
    const first = start();
    await waitFor(() => remaining('sink-a') < 30 && remaining('sink-a') > 10, 'the first purge to be under way', 60_000, 10);
    first.child.kill('SIGKILL');
    await first.exited;
    const afterFirst = (await store().get(r.requestId))!;
    expect(afterFirst.step).toBe('keys-destroyed');
    expect(afterFirst.sinks['sink-a']!.state).toBe('pending');

    // 2: killed again once a later sink is being purged.
    const second = start();
    await waitFor(async () => remaining('sink-b') < 30 || (await store().get(r.requestId))!.step !== 'keys-destroyed', 'the second sink to be purged', 60_000, 10);
    second.child.kill('SIGKILL');
    await second.exited;

    // 3: runs to the end.
    const third = start();
    expect(await third.exited).toBe(0);
    expect(third.out.join('')).toContain('"done":"complete"');
    const done = (await store().get(r.requestId))!;
    expect(done).toMatchObject({ step: 'complete', keyDestruction: { subject, kids: [kidFor(subject)] } });
    expect(done.identifiers).toBeUndefined();
    for (const s of sinks) {
      expect(done.sinks[s]).toMatchObject({ state: 'verified', found: 0, scanned: 10 });
      expect(remaining(s)).toBe(10);
    }
    expect(await keys.isDestroyed(subject)).toBe(true);
  }, 180_000);
});
