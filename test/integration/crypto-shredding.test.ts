// Crypto-shredding end to end on the real engines (Postgres 17, kinesalite, dynalite, the MQTT
// broker): with CAPTURE_ENCRYPT_PERSONAL_FIELDS on, a comment's body travels Kinesis only as
// ciphertext under its author's key, yet reaches the browser-side subscriber, the replay API and
// the search index in plaintext (they decrypt through lib/field-crypto.ts; browsers hold no
// keys). After destroy(author) the very same Kinesis record reads as null, and so does the
// changelog copy the replay API serves once the router's key cache has expired.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import pg from 'pg';
import { projectTopicOf } from '../../lib/authz.js';
import { decryptEvent, isEncryptedField } from '../../lib/field-crypto.js';
import { createLogger } from '../../lib/logger.js';
import { createSubjectKeyStore, loadSubjectKeyConfig } from '../../lib/subject-keys.js';
import { loadConfig as loadSearchConfig } from '../../search/config.js';
import { type RunningSearch, startSearch } from '../../search/service.js';
import { StreamReader } from './capture-helpers.js';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { boundClientId, dynamoClient, kinesisClient } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

const W = randomUUID();
const P = randomUUID();
const TASK = randomUUID();
const COMMENT = randomUUID();
const [ALICE, BOB] = [randomUUID(), randomUUID()];
const BODY = `shredmarker ${randomUUID().slice(0, 8)} hello from bob`;
const dir = mkdtempSync(join(tmpdir(), 'crypto-shredding-'));

let pipeline: TestPipeline;
let search: RunningSearch;
let db: pg.Client;
let kinesis: KinesisClient;
let dynamo: DynamoDBClient;
let browser: MqttClient;
const received: { id: string; table: string; after: Record<string, unknown> | null }[] = [];

beforeAll(async () => {
  pipeline = await startTestPipeline({
    prefix: 'crypto-shredding',
    env: {
      TASKFLOW_ENV: 'development',
      CAPTURE_ENCRYPT_PERSONAL_FIELDS: 'true',
      SUBJECT_KEYS_LOCAL_KEK_FILE: join(dir, 'kek'),
      SUBJECT_KEYS_CACHE_TTL_MS: '500',
      ROUTER_PAYLOAD_MODE: 'full',
    },
  });
  search = await startSearch(
    loadSearchConfig({ ...pipeline.env, SEARCH_DB_PATH: join(dir, 'search.db'), SEARCH_PORT: '0', KINESIS_POLL_INTERVAL_MS: '50', KINESIS_MIN_CALL_SPACING_MS: '0' }),
    createLogger('crypto-shredding-search', process.env.PIPELINE_TEST_LOG ?? 'silent'),
  );
  db = new pg.Client({ connectionString: pipeline.databaseUrl });
  await db.connect();
  kinesis = kinesisClient();
  dynamo = dynamoClient();
  await db.query(`INSERT INTO workspaces (id, name, slug) VALUES ($1, 'shred', $2)`, [W, `s-${W}`]);
  await db.query(`INSERT INTO users (id, email, display_name) VALUES ($1, $3, 'a'), ($2, $4, 'b')`, [ALICE, BOB, `${ALICE}@t`, `${BOB}@t`]);
  await db.query(`INSERT INTO projects (id, workspace_id, name) VALUES ($1, $2, 'p')`, [P, W]);
  await db.query(`INSERT INTO memberships (id, workspace_id, user_id, project_id, role) VALUES ($1, $2, $3, $4, 'member'), ($5, $2, $6, $4, 'member')`, [randomUUID(), W, ALICE, P, randomUUID(), BOB]);
  await db.query(`INSERT INTO tasks (id, workspace_id, project_id, title, created_by) VALUES ($1, $2, $3, 'shredded task', $4)`, [TASK, W, P, ALICE]);

  browser = await mqtt.connectAsync(pipeline.broker.tcpUrl, { clientId: boundClientId(ALICE), username: 'u', password: await pipeline.token(ALICE), reconnectPeriod: 0 });
  browser.on('message', (_t, payload) => {
    const message = JSON.parse(payload.toString()) as { changes: { event: { id: string; data: { table: string; after: Record<string, unknown> | null } } }[] };
    for (const c of message.changes) received.push({ id: c.event.id, table: c.event.data.table, after: c.event.data.after });
  });
  // The membership reaches the broker's projection through the pipeline: retry until granted.
  await waitFor(async () => (await browser.subscribeAsync(projectTopicOf(W, P), { qos: 1 }).catch(() => [{ qos: 128 }]))[0]?.qos === 1, 'alice subscribed', 60_000);
}, 180_000);

afterAll(async () => {
  await browser?.endAsync(true).catch(() => undefined);
  await search?.stop();
  await db?.end();
  await pipeline?.stop();
  kinesis?.destroy();
  dynamo?.destroy();
});

const keys = () => createSubjectKeyStore(loadSubjectKeyConfig(pipeline.env), dynamo, () => {
  throw new Error('no KMS locally');
});

async function replayedBody(): Promise<unknown> {
  const res = await fetch(`${pipeline.router.replayUrl}/v1/workspaces/${W}/projects/${P}/changes?after=0`, { headers: { authorization: `Bearer ${await pipeline.token(ALICE)}` } });
  const body = (await res.json()) as { changes: { event: { data: { table: string; key: { id: string }; after: { body?: unknown } | null } } }[] };
  return body.changes.find((c) => c.event.data.table === 'comments' && c.event.data.key.id === COMMENT)?.event.data.after?.body;
}

describe('crypto-shredding through the pipeline', () => {
  it('ciphertext on Kinesis, plaintext to the browser, the replay API and search; the same record unreadable after destroy', async () => {
    await db.query(`INSERT INTO comments (id, workspace_id, project_id, task_id, author_id, body) VALUES ($1, $2, $3, $4, $5, $6)`, [COMMENT, W, P, TASK, BOB, BODY]);

    const delivered = await waitFor(() => received.find((r) => r.table === 'comments' && r.after?.id === COMMENT), 'the comment at the browser', 30_000);
    expect(delivered.after!.body).toBe(BODY);

    const reader = new StreamReader(kinesis, pipeline.env.CHANGE_STREAM_NAME!);
    const onStream = await waitFor(async () => {
      await reader.poll();
      const i = reader.events.findIndex((e) => e.data.table === 'comments' && e.data.key.id === COMMENT);
      return i >= 0 && { event: reader.events[i]!, raw: reader.raw[i]! };
    }, 'the comment on Kinesis', 30_000);
    expect(isEncryptedField(onStream.event.data.after!.body)).toBe(true);
    expect(onStream.raw).not.toContain('hello from bob');

    expect(await replayedBody()).toBe(BODY);

    const token = await pipeline.token(ALICE);
    const hit = await waitFor(async () => {
      const res = await fetch(`${search.apiUrl}/v1/workspaces/${W}/search?q=shredmarker`, { headers: { authorization: `Bearer ${token}` } });
      const found = ((await res.json()) as { hits?: { id: string; text: string }[] }).hits ?? [];
      return found.find((h) => h.id === COMMENT);
    }, 'the comment in the search index', 30_000);
    expect(hit.text).toBe(BODY);

    const destruction = await keys().destroy(BOB);
    expect(destruction.kids).toHaveLength(1);
    // The same Kinesis record (and so every copy of it: retention, archive, backups) is shredded.
    expect((await decryptEvent(onStream.event, keys())).data.after!.body).toBeNull();
    // The router's changelog copy too, once its key cache (500 ms here) lets go of the key: null
    // (undecryptable), or empty once the erased-subjects list (the destroy's tombstone, same cache
    // time) blanks the text Bob authored in the replay answer (gdpr/POLICY.md).
    const shredded = await waitFor(async () => {
      const body = await replayedBody();
      return (body === null || body === '') && { body };
    }, 'the replayed comment shredded', 10_000);
    expect(shredded.body).not.toBe(BODY);
  }, 120_000);
});
