// Revocation on the real pipeline (Postgres → capture → Kinesis → router → authorizing broker),
// under load: after `DELETE FROM memberships` the revoked subscriber — a plain MQTT client that
// reconnects and resubscribes at once — receives nothing committed after the delete, while a
// member of the same project and a member of another workspace (same shard) keep receiving
// everything. Their latency around the hold is printed, not asserted: on a shared host a scheduling
// pause looks the same as a hold, and that no workspace but the revoked one ever waits, and never
// longer than the bound, is router/revocation-hold.test.ts's property.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import pg from 'pg';
import { projectTopicOf } from '../../lib/authz.js';
import { ROUTER_METRICS } from '../../router/metrics.js';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { sleep, waitFor } from '../support/wait.js';
import { boundClientId } from '../support/stack.js';

interface Received {
  id: string;
  seq: number;
  title: unknown;
  latencyMs: number;
  at: number;
}

const W = randomUUID();
const W2 = randomUUID();
const P = randomUUID();
const P2 = randomUUID();
const [ALICE, BOB, CAROL] = [randomUUID(), randomUUID(), randomUUID()];
const ALICE_MEMBERSHIP = randomUUID();
const TASK = randomUUID();
const TASK2 = randomUUID();

let pipeline: TestPipeline;
let db: pg.Client;
const clients: MqttClient[] = [];

async function subscriber(userId: string, topic: string, reconnect: boolean): Promise<{ client: MqttClient; got: Received[] }> {
  const client = await mqtt.connectAsync(pipeline.broker.tcpUrl, {
    clientId: boundClientId(userId),
    username: 'u',
    password: await pipeline.token(userId),
    // The revoked client tries to stay: it reconnects at once and resubscribes (mqtt.js' default).
    reconnectPeriod: reconnect ? 20 : 0,
  });
  clients.push(client);
  const got: Received[] = [];
  client.on('message', (_t, payload) => {
    const at = Date.now();
    const message = JSON.parse(payload.toString()) as { changes: { seq: number; event: { id: string; time: string; data: { after?: { title?: unknown } } } }[] };
    for (const c of message.changes) got.push({ id: c.event.id, seq: c.seq, title: c.event.data.after?.title, latencyMs: at - Date.parse(c.event.time), at });
  });
  // The membership reaches the broker's projection through the pipeline: retry until granted.
  await waitFor(
    async () => {
      const granted = await client.subscribeAsync(topic, { qos: 1 }).catch(() => [{ qos: 128 }]);
      return granted[0]?.qos === 1;
    },
    () => `${userId} subscribed to ${topic}`,
  );
  return { client, got };
}

function p95(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))] ?? 0;
}

async function metric(name: string): Promise<string[]> {
  const text = await (await fetch(pipeline.router.metricsUrl)).text();
  return text.split('\n').filter((l) => l.startsWith(name));
}

beforeAll(async () => {
  // A generous bound: on a busy CI host the disconnect may take a second; the test is about the
  // guarantee, which holds only while the hold does (the bound's release is unit-tested).
  pipeline = await startTestPipeline({ prefix: 'revocation', env: { ROUTER_REVOCATION_HOLD_MS: '15000' } });
  db = new pg.Client({ connectionString: pipeline.databaseUrl });
  await db.connect();
  await db.query(`INSERT INTO workspaces (id, name, slug) VALUES ($1, 'revoked', $3), ($2, 'other', $4)`, [W, W2, `r-${W}`, `o-${W2}`]);
  await db.query(`INSERT INTO users (id, email, display_name) VALUES ($1, $4, 'a'), ($2, $5, 'b'), ($3, $6, 'c')`, [ALICE, BOB, CAROL, `${ALICE}@t`, `${BOB}@t`, `${CAROL}@t`]);
  await db.query(`INSERT INTO projects (id, workspace_id, name) VALUES ($1, $2, 'p'), ($3, $4, 'p2')`, [P, W, P2, W2]);
  await db.query(`INSERT INTO tasks (id, workspace_id, project_id, title) VALUES ($1, $2, $3, 't'), ($4, $5, $6, 't2')`, [TASK, W, P, TASK2, W2, P2]);
  await db.query(
    `INSERT INTO memberships (id, workspace_id, user_id, project_id, role) VALUES ($1, $2, $3, $4, 'member'), ($5, $2, $6, $4, 'member'), ($7, $8, $9, NULL, 'viewer')`,
    [ALICE_MEMBERSHIP, W, ALICE, P, randomUUID(), BOB, randomUUID(), W2, CAROL],
  );
}, 120_000);

afterAll(async () => {
  for (const c of clients) await c.endAsync(true).catch(() => undefined);
  await db?.end();
  await pipeline?.stop();
});

describe('revoking a membership under load', () => {
  it('the revoked subscriber receives nothing committed after the revocation; others keep everything', async () => {
    const alice = await subscriber(ALICE, projectTopicOf(W, P), true);
    const bob = await subscriber(BOB, projectTopicOf(W, P), false);
    const carol = await subscriber(CAROL, projectTopicOf(W2, P2), false);

    // Load: one writer per workspace, a task update every ~10 ms each.
    let writing = true;
    let n = 0;
    const writer = async (task: string) => {
      const c = new pg.Client({ connectionString: pipeline.databaseUrl });
      await c.connect();
      while (writing) {
        await c.query('UPDATE tasks SET title = $1, updated_at = now() WHERE id = $2', [`load-${n++}`, task]);
        await sleep(10); // not a wait: paces the load
      }
      await c.end();
    };
    const writers = [writer(TASK), writer(TASK2)];
    await waitFor(() => alice.got.length > 20 && carol.got.length > 20, () => 'load reaching the subscribers');
    await sleep(1500); // not a wait: more load before the revocation

    // The revocation, with a marker change of the project in the same transaction right after the
    // delete: the marker's commit LSN is the revocation's, so every id below it committed before.
    const revokedAt = Date.now();
    await db.query('BEGIN');
    await db.query('DELETE FROM memberships WHERE id = $1', [ALICE_MEMBERSHIP]);
    await db.query(`UPDATE tasks SET title = 'revocation-marker', updated_at = now() WHERE id = $1`, [TASK]);
    await db.query('COMMIT');
    await sleep(3000); // not a wait: load after the revocation, which must not reach alice
    writing = false;
    await Promise.all(writers);
    await waitFor(() => bob.got.some((r) => r.title === 'revocation-marker'), () => 'the marker reaching bob');
    await sleep(1000); // asserting that nothing happens: a late leak to alice would show up now

    const marker = bob.got.find((r) => r.title === 'revocation-marker')!;
    const revocationCommit = marker.id.split('-')[0]!;
    const leaked = alice.got.filter((r) => r.id.split('-')[0]! >= revocationCommit);
    expect(leaked.map((r) => `${r.id} ${String(r.title)} +${r.at - revokedAt}ms`)).toEqual([]);
    expect(alice.got.length).toBeGreaterThan(20); // she did receive the load before

    // Bob and Carol lost nothing: dense seqs, and Bob has everything after the marker too.
    for (const s of [bob, carol]) {
      const seqs = s.got.map((r) => r.seq);
      expect(new Set(seqs).size).toBe(seqs.length);
      for (let i = 1; i < seqs.length; i += 1) expect(seqs[i]).toBe(seqs[i - 1]! + 1);
    }
    expect(bob.got.filter((r) => r.seq > marker.seq).length).toBeGreaterThan(10);

    // The hold was confirmed (not timed out).
    const held = (await metric(`${ROUTER_METRICS.revocationHold}_sum`)).filter((l) => l.includes('outcome="confirmed"'));
    const holdMs = Number(held[0]?.split(' ')[1] ?? NaN) * 1000;
    expect(await metric(`${ROUTER_METRICS.revocationHold}_count`)).toEqual([expect.stringMatching(/outcome="confirmed"\} 1$/)]);
    expect(holdMs).toBeGreaterThan(0);
    expect((await metric(ROUTER_METRICS.revocationHoldTimeouts)).join('\n')).toMatch(/ 0$/);
    const before = (s: Received[]) => s.filter((r) => r.at < revokedAt).map((r) => r.latencyMs);
    const around = (s: Received[]) => s.filter((r) => r.at >= revokedAt && r.at < revokedAt + 2000).map((r) => r.latencyMs);
    const report = { holdMs, bob: [p95(before(bob.got)), p95(around(bob.got))], carol: [p95(before(carol.got)), p95(around(carol.got))] };
    process.stdout.write(`revocation latency p95 before/around (ms): ${JSON.stringify(report)}\n`);
  }, 120_000);
});
