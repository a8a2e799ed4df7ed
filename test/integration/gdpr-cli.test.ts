// `taskflow gdpr` on the real engines (Postgres, dynalite, the audit store on disk): compliance
// records a request for a user with data, a repeat is the same request, the processor process
// drives it to complete, `verify` finds nothing, `proof` writes a signed proof kept in the audit
// store, and the sinks implemented so far (source-db, router-changelog, search-index, notifications-inbox, dead-letters, audit-trail, the warehouse through the loader process, …) hold none of the subject's data; a user with
// no data completes too, and an unknown user is an error that records nothing.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import pg from 'pg';
import { openErasureSinks as openWarehouseSinks } from '../../analytics/erasure-sink.js';
import { command } from '../../cli/commands/gdpr.js';
import type { ErasureRequest } from '../../gdpr/processor.js';
import { type ErasureProof, verifyProofSignature } from '../../gdpr/proof.js';
import { DynamoRequestStore } from '../../gdpr/request-store.js';
import { identityKey, resolveIdentity } from '../../audit/identities.js';
import { Pseudonymizer } from '../../audit/record.js';
import { FileAuditStore } from '../../audit/store.js';
import { DynamoDeadLetterStore } from '../../lib/dlq.js';
import { DynamoInbox } from '../../notifications/inbox.js';
import type { FullEntry } from '../../router/changelog.js';
import { DynamoChangelogStore } from '../../router/dynamo-changelog.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { validateEvent } from '../../schemas/validate.js';
import { indexBatchOf } from '../../search/indexer.js';
import { SqliteSearchIndex } from '../../search/sqlite-index.js';
import { decodeEvent, type StreamEvent } from '@taskflow/stream/events';
import { createSubjectKeyStore, loadSubjectKeyConfig } from '../../lib/subject-keys.js';
import { type ServiceProcess, startServiceProcess } from '../support/service-process.js';
import { startErasureLoader, gdprTestEnv } from '../support/gdpr.js';
import { dynamoClient } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

const AUDIT_KEY = 'gdpr-cli-test-audit-key-0123456789abcdef';
let env: Record<string, string>;
let db: pg.Client;
let gdpr: ServiceProcess | undefined;
let loader: ServiceProcess | undefined;
let archiveDir: string;
const saved = { ...process.env };
const dynamo = dynamoClient();

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gdpr-cli-'));
  const setup = await gdprTestEnv('gdpr-cli', dir, { auditKey: AUDIT_KEY, jwtSecret: 'gdpr-cli-test-jwt-secret-0123456789abcdef' });
  env = setup.env;
  // The analytics loader holds the warehouse; the processor purges it through the loader's erasure endpoint.
  archiveDir = join(dir, 's3', 'archive', 'raw', '2026', '11', '26', '12');
  mkdirSync(archiveDir, { recursive: true });
  loader = await startErasureLoader(env, dir, 50);
  Object.assign(process.env, env);
  db = new pg.Client({ connectionString: setup.url });
  await db.connect();
});

afterAll(async () => {
  await gdpr?.stop();
  await loader?.stop();
  await db?.end();
  dynamo.destroy();
  process.env = saved;
});

async function gdprCli(...argv: string[]): Promise<{ code: number | void; out: string; err?: unknown }> {
  const out: string[] = [];
  const log = jest.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  try {
    return { code: await command.run(argv), out: out.join('\n') };
  } catch (err) {
    return { code: undefined, out: out.join('\n'), err };
  } finally {
    log.mockRestore();
  }
}

/** A user in a workspace with a project, a task they wrote and a comment on it. */
async function userWithData(): Promise<{ id: string; email: string; comment: string; commentId: string; task: string }> {
  const [ws, project, task, id] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
  const email = `p${id.slice(0, 8)}@example.com`;
  const comment = `private remark ${randomUUID()}`;
  const commentId = randomUUID();
  await db.query('INSERT INTO workspaces (id, name, slug) VALUES ($1, $2, $3)', [ws, 'W', `w-${ws}`]);
  await db.query('INSERT INTO users (id, email, display_name) VALUES ($1, $2, $3)', [id, email, 'Grace Hopper']);
  await db.query('INSERT INTO projects (id, workspace_id, name, created_by) VALUES ($1, $2, $3, $4)', [project, ws, 'P', id]);
  await db.query('INSERT INTO tasks (id, workspace_id, project_id, title, description, created_by) VALUES ($1, $2, $3, $4, $5, $6)', [task, ws, project, 'T', `described by ${email}`, id]);
  await db.query('INSERT INTO comments (id, workspace_id, project_id, task_id, author_id, body) VALUES ($1, $2, $3, $4, $5, $6)', [commentId, ws, project, task, id, comment]);
  return { id, email, comment, commentId, task };
}

function streamEvent(envelope: unknown): StreamEvent {
  const d = decodeEvent(Buffer.from(JSON.stringify(envelope)), validateEvent);
  if (!d.ok) throw new Error(d.message);
  return d.event;
}

const store = () => new DynamoRequestStore(dynamo, env.DYNAMODB_TABLE_GDPR_REQUESTS!);

describe('taskflow gdpr on the real engines', () => {
  it('request (by email, idempotent) → the processor completes it → verify finds nothing → a signed proof in the file and the audit store', async () => {
    const user = await userWithData();
    const first = await gdprCli('request', '--user', user.email, '--ticket', 'DPO-42', '--reason', 'art. 17 request', '--by', 'dpo@example.com', '--json');
    expect(first.err).toBeUndefined();
    const recorded = (JSON.parse(first.out) as { repeat: boolean; request: ErasureRequest }).request;
    expect(recorded).toMatchObject({ subject: user.id, ticket: 'DPO-42', requestedBy: 'dpo@example.com', reason: 'art. 17 request', step: 'requested' });
    expect(Date.parse(recorded.deadline) - Date.parse(recorded.requestedAt)).toBe(72 * 3600 * 1000);
    expect(first.out).not.toContain(user.comment);
    // What the scans will look for was captured before anything is purged.
    expect((await store().get(recorded.requestId))!.identifiers).toMatchObject({ email: user.email, displayName: 'Grace Hopper', authored: expect.arrayContaining([expect.objectContaining({ text: user.comment })]) });

    const repeat = await gdprCli('request', '--user', user.id, '--ticket', 'DPO-43');
    expect(repeat.out).toMatch(new RegExp(`already requested: users/${user.id} has request ${recorded.requestId}`));
    expect((await db.query('SELECT id, user_id FROM gdpr_erasure_requests')).rows.filter((r: { user_id: string }) => r.user_id === user.id)).toEqual([{ id: recorded.requestId, user_id: user.id }]);

    const status = await gdprCli('status', recorded.requestId);
    expect(status.out).toMatch(/step\s+requested/);
    expect(status.out).toMatch(/subject-keys\s+pending/);

    const keys = createSubjectKeyStore(loadSubjectKeyConfig(env), dynamo, () => {
      throw new Error('no KMS locally');
    });
    await keys.keyFor(user.id);
    // The router's changelog holds an event of theirs (as the router would have written it).
    const changelog = new DynamoChangelogStore(dynamo, { table: env.DYNAMODB_TABLE_CHANGELOG! });
    const project = { workspaceId: randomUUID(), projectId: randomUUID() };
    const theirs = sampleEvent('comment.created', { ...project, entityId: randomUUID(), row: { author_id: user.id, body: user.comment } });
    await changelog.append(project, [{ seq: 1, event: theirs }], { seq: 0, lastId: null }, { seq: 1, lastId: theirs.id });
    // The search index holds their comment (as the search service would have indexed it).
    const search = new SqliteSearchIndex(env.SEARCH_DB_PATH!);
    await search.apply(indexBatchOf([streamEvent(sampleEvent('comment.created', { ...project, entityId: user.commentId, row: { author_id: user.id, body: user.comment } }))]));
    expect(await search.documents(project.workspaceId)).toHaveLength(1);
    // Their inbox holds a notification.
    const inbox = new DynamoInbox(dynamo, env.DYNAMODB_TABLE_NOTIFICATIONS!);
    // The audit trail maps their pseudonym to them.
    const auditStore = new FileAuditStore(env.AUDIT_STORE_DIR!);
    const pseudonym = new Pseudonymizer(new TextEncoder().encode(AUDIT_KEY)).actor(user.id);
    await auditStore.put(identityKey(pseudonym), Buffer.from(JSON.stringify({ userId: user.id })));
    // A dead letter carries an event of theirs.
    const dlq = new DynamoDeadLetterStore(dynamo, env.DYNAMODB_TABLE_DLQ!);
    await dlq.put({ source: 'search', reason: 'schema_invalid', message: 'bad', payload: Buffer.from(JSON.stringify(theirs)), origin: { shardId: 's', sequenceNumber: '1' } });
    await inbox.add([{ id: theirs.id, userId: user.id, kind: 'assigned', workspaceId: project.workspaceId, projectId: project.projectId, taskId: user.task, time: theirs.time, text: 'T' }]);
    // The warehouse loaded an archived event of theirs.
    writeFileSync(join(archiveDir, 'archive-1-2026-11-26-12-00-01-00000001-aaaa-bbbb-cccc-dddddddddddd.gz'), gzipSync(`${JSON.stringify(theirs)}\n`));
    const [rawSink] = (await openWarehouseSinks(env)).sinks;
    await waitFor(async () => (await rawSink!.scan({ subject: user.id, email: null, displayName: null, authored: [] })).found === 1, 'the warehouse to load their event');
    gdpr = await startServiceProcess('gdpr', env, ['gdpr processor started']);
    const done = await waitFor(async () => {
      const r = await store().get(recorded.requestId);
      return r?.step === 'complete' && r;
    }, 'the request to complete', 60_000, 100);
    expect(done.identifiers).toBeUndefined();
    expect(await keys.isDestroyed(user.id)).toBe(true);
    expect(Object.values(done.sinks).every((s) => s.state === 'verified' && s.found === 0)).toBe(true);
    // The sinks' own stores no longer hold the subject (db/erasure-sink.ts, …).
    expect(done.sinks['source-db']).toMatchObject({ state: 'verified', found: 0, changed: 4 }); // users row, project, task, comment
    expect((await db.query('SELECT 1 FROM users WHERE id = $1', [user.id])).rowCount).toBe(0);
    expect((await db.query('SELECT 1 FROM comments WHERE body = $1', [user.comment])).rowCount).toBe(0);
    expect((await db.query('SELECT description, created_by FROM tasks WHERE id = $1', [user.task])).rows).toEqual([{ description: null, created_by: null }]);
    expect(done.sinks['router-changelog']).toMatchObject({ state: 'verified', found: 0, changed: 1 });
    expect((await changelog.read(project, 0, 10)).entries.map((e) => (e as FullEntry).event.data)).toEqual([expect.objectContaining({ erased: true, after: null })]);
    expect(done.sinks['search-index']).toMatchObject({ state: 'verified', found: 0, changed: 1 });
    expect(await search.documents(project.workspaceId)).toEqual([]);
    await search.close();
    expect(done.sinks['notifications-inbox']).toMatchObject({ state: 'verified', found: 0, changed: 1 });
    expect(await inbox.list(project.workspaceId, user.id, 'all', { limit: 10 })).toEqual({ notifications: [] });
    expect(done.sinks['dead-letters']).toMatchObject({ state: 'verified', found: 0, changed: 1 });
    expect(done.sinks['audit-trail']).toMatchObject({ state: 'verified', found: 0, changed: 1 });
    expect(done.sinks['warehouse-raw']).toMatchObject({ state: 'verified', found: 0, changed: 1 });
    expect(done.sinks['warehouse-curated']).toMatchObject({ state: 'verified', found: 0 });
    expect(done.sinks['warehouse-curated']!.changed).toBeGreaterThanOrEqual(2); // the comment's author_id and body
    expect(await resolveIdentity(auditStore, pseudonym)).toBeUndefined();
    expect(await dlq.list({ includeRedriven: true })).toEqual([]);
    const metrics = await waitFor(async () => {
      const text = await (await fetch(String(gdpr!.entries['gdpr processor started']!.metrics))).text();
      return /^taskflow_gdpr_open_requests({[^}]*})? 0$/m.test(text) && text;
    }, 'the open-requests gauge to read 0');
    expect(metrics).toMatch(/^taskflow_gdpr_oldest_open_request_age_seconds({[^}]*})? 0$/m);

    const verify = await gdprCli('verify', user.id, '--json');
    expect(verify.code).toBe(0);
    expect(JSON.parse(verify.out)).toMatchObject({ requestId: recorded.requestId, keyDestroyed: true, found: 0, sinks: expect.arrayContaining([expect.objectContaining({ sink: 'source-db', found: 0 })]) });

    const out = join(mkdtempSync(join(tmpdir(), 'gdpr-proof-')), 'proof.json');
    expect((await gdprCli('proof', recorded.requestId, '--out', out)).code).toBe(0);
    const proof = JSON.parse(readFileSync(out, 'utf8')) as ErasureProof;
    expect(verifyProofSignature(proof, new TextEncoder().encode(AUDIT_KEY))).toBe(true);
    expect(proof).toMatchObject({ request: { requestId: recorded.requestId, subject: user.id, ticket: 'DPO-42' }, keyDestruction: { subject: user.id } });
    expect(JSON.stringify(proof)).not.toContain(user.comment);
    expect(readFileSync(join(env.AUDIT_STORE_DIR!, 'gdpr-proofs', `${recorded.requestId}.json`), 'utf8')).toBe(readFileSync(out, 'utf8'));

    const list = await gdprCli('list');
    expect(list.out).toMatch(new RegExp(`${recorded.requestId}\\s+${user.id}\\s+DPO-42\\s+complete`));
    expect((await gdprCli('list', '--overdue')).out).not.toContain(recorded.requestId);
  }, 120_000);

  it('a user with no data completes; an unknown user is a clear error and records nothing', async () => {
    const id = randomUUID();
    await db.query('INSERT INTO users (id, email, display_name) VALUES ($1, $2, $3)', [id, `n${id.slice(0, 8)}@example.com`, 'No Data']);
    const r = JSON.parse((await gdprCli('request', '--user', id, '--ticket', 'DPO-44', '--json')).out) as { request: ErasureRequest };
    expect(r.request.identifiers).toBeUndefined(); // never printed
    gdpr ??= await startServiceProcess('gdpr', env, ['gdpr processor started']);
    await waitFor(async () => (await store().get(r.request.requestId))?.step === 'complete', 'the request of a user with no data to complete', 60_000, 100);
    expect((await gdprCli('verify', r.request.requestId)).out).toMatch(/nothing found/);

    const before = (await store().all()).length;
    const unknown = await gdprCli('request', '--user', 'nobody@example.com', '--ticket', 'DPO-45');
    expect(unknown.err).toMatchObject({ code: 'GDPR_UNKNOWN_SUBJECT', message: expect.stringMatching(/no user with email nobody@example.com.*nothing was recorded/) });
    expect((await store().all()).length).toBe(before);
    expect(existsSync(join(env.AUDIT_STORE_DIR!, 'gdpr-proofs', `${r.request.requestId}.json`))).toBe(false);
  }, 120_000);
});
