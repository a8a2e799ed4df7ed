// The flood bound end to end (issue 16 §4): another member of the same project floods the
// router's replay API (16 request loops) and the broker (connect loops) while a writer commits a
// task update every 50 ms in Postgres. The innocent subscriber's commit → client latency — a real
// commit through capture (its own process), Kinesis, the router (its own process, the production
// replay limits) and the authorizing broker (the production connect limits) to a plain MQTT
// client — is measured before and during the flood. The flooder's full replays (`after=0`) spend
// its replayed-changes budget and are refused (429); it is served no more than that budget. The
// victim loses nothing, and its p95 stays within the bound docs/THREAT_MODEL.md states: under
// 3 × its baseline p95 + 2.5 s. Loose on purpose: on this shared 2-core host (load 10–15) the
// whole host stalls for ~2.5 s now and then, flood or not (the measured figures are in the threat
// model's §2 row); a flood the limiter does not bound raised p95 6–13 times.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import pg from 'pg';
import { DEFAULT_CONNECT_LIMITS } from '../../infra/local/broker-auth.js';
import { clientIdPrefix, projectTopicOf } from '../../lib/authz.js';
import { loadReplayLimits } from '../../router/config.js';
import { cpuSeconds } from '../bench/report.js';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { boundClientId, stack } from '../support/stack.js';
import { sleep, waitFor } from '../support/wait.js';

/** The stated bound on the innocent user's commit → client p95 while the flood runs, from its baseline p95. */
const p95Bound = (baselineP95: number) => 3 * baselineP95 + 2500;
const PHASE_MS = 4000;
const COMMIT_EVERY_MS = 50;

const W = randomUUID();
const P = randomUUID();
const TASK = randomUUID();
const [VICTIM, FLOODER] = [randomUUID(), randomUUID()];

interface Received {
  title: string;
  seq: number;
  latencyMs: number;
}

let pipeline: TestPipeline;
let db: pg.Client;
const clients: MqttClient[] = [];

interface Flooded {
  statuses: Record<string, number>;
  /** Changes the 200 answers carried. */
  changes: number;
  connected: number;
  connacks3: number;
  otherErrors: string[];
}

function runFlooder(env: Record<string, string>): Promise<Flooded> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(import.meta.dirname, '..', 'support', 'flood-client.mjs')], { env: { ...process.env, ...env }, timeout: PHASE_MS + 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`flood client failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as Flooded);
    });
  });
}

const p95 = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.95))] ?? Infinity;

beforeAll(async () => {
  pipeline = await startTestPipeline({ prefix: 'flood_pipeline', services: 'processes', connectLimits: DEFAULT_CONNECT_LIMITS, productionReplayLimits: true });
  db = new pg.Client({ connectionString: pipeline.databaseUrl });
  await db.connect();
  await db.query(`INSERT INTO workspaces (id, name, slug) VALUES ($1, 'flood', $2)`, [W, `f-${W}`]);
  await db.query(`INSERT INTO users (id, email, display_name) VALUES ($1, $3, 'victim'), ($2, $4, 'flooder')`, [VICTIM, FLOODER, `${VICTIM}@t`, `${FLOODER}@t`]);
  await db.query(`INSERT INTO projects (id, workspace_id, name) VALUES ($1, $2, 'p')`, [P, W]);
  await db.query(`INSERT INTO tasks (id, workspace_id, project_id, title) VALUES ($1, $2, $3, 'start')`, [TASK, W, P]);
  // The flooder is a member of the very project: every request it makes is authorized work.
  await db.query(`INSERT INTO memberships (id, workspace_id, user_id, project_id, role) VALUES ($1, $2, $3, $4, 'member'), ($5, $2, $6, $4, 'member')`, [randomUUID(), W, VICTIM, P, randomUUID(), FLOODER]);
}, 180_000);

afterAll(async () => {
  for (const c of clients) await c.endAsync(true).catch(() => undefined);
  await db?.end();
  await pipeline?.stop();
});

describe('one user flooding while another receives commits', () => {
  it("refuses the flooder's full replays beyond its budget, keeps the other user's commit → client latency within the stated bound, and loses nothing", async () => {
    const victim = await mqtt.connectAsync(pipeline.broker.tcpUrl, { clientId: boundClientId(VICTIM), username: 'u', password: await pipeline.token(VICTIM), reconnectPeriod: 0 });
    clients.push(victim);
    const got: Received[] = [];
    victim.on('message', (_t, payload) => {
      const at = Date.now();
      const message = JSON.parse(payload.toString()) as { changes: { seq: number; event: { time: string; data: { after?: { title?: string } } } }[] };
      for (const c of message.changes) got.push({ title: c.event.data.after?.title ?? '', seq: c.seq, latencyMs: at - Date.parse(c.event.time) });
    });
    // The membership reaches the broker's projection through the pipeline: retry until granted.
    await waitFor(async () => (await victim.subscribeAsync(projectTopicOf(W, P), { qos: 1 }).catch(() => [{ qos: 128 }]))[0]?.qos === 1, 'the victim subscribed', 60_000);

    // The writer: one committed update every 50 ms, each titled with its phase and number.
    let phase = 'warmup';
    let writing = true;
    const committed: string[] = [];
    const writer = (async () => {
      for (let n = 0; writing; n++) {
        const title = `${phase}-${n}`;
        await db.query('UPDATE tasks SET title = $1, updated_at = now() WHERE id = $2', [title, TASK]);
        committed.push(title);
        await sleep(COMMIT_EVERY_MS); // not a wait: paces the load
      }
    })();
    await waitFor(() => got.some((r) => r.title.startsWith('warmup-')), 'the first commits reaching the victim', 60_000);
    await sleep(1000); // not a wait: JIT and connections warm before the baseline
    // CPU seconds per phase of the router, capture and the stack's engines (kinesalite, dynalite): where a flood's cost lands.
    const cpu = () => [cpuSeconds(pipeline.router.pid!), cpuSeconds(pipeline.capture.pid!), cpuSeconds(stack().pid)];
    const cpuAtBaseline = cpu();
    phase = 'baseline';
    await sleep(PHASE_MS); // not a wait: the baseline phase's length
    const cpuAtFlood = cpu();

    // The flood: 16 replay request loops as fast as answers come and two connect loops, by a
    // member, from its own process (test/support/flood-client.mjs).
    phase = 'flood';
    const flooded = await runFlooder({
      FLOOD_URL: `${pipeline.router.replayUrl}/v1/workspaces/${W}/projects/${P}/changes?after=0`,
      FLOOD_TOKEN: await pipeline.token(FLOODER),
      FLOOD_BROKER: pipeline.broker.tcpUrl,
      FLOOD_CLIENT_ID_PREFIX: clientIdPrefix(FLOODER),
      FLOOD_MS: String(PHASE_MS),
      FLOOD_REQUEST_LOOPS: '16',
      FLOOD_CONNECT_LOOPS: '2',
    });
    const cpuAfter = cpu();
    phase = 'after';
    await sleep(500); // not a wait: a few commits after the flood
    writing = false;
    await writer;
    const last = committed[committed.length - 1];
    await waitFor(() => got.some((r) => r.title === last), () => `the last commit (${last}) reaching the victim (${got.length} of ${committed.length})`, 30_000);

    // Nothing lost, duplicated or reordered: every committed title once, seqs dense.
    const measured = (t: string) => /^(baseline|flood|after)-/.test(t);
    expect(got.map((r) => r.title).filter(measured)).toEqual(committed.filter(measured));
    for (let i = 1; i < got.length; i += 1) expect(got[i]!.seq).toBe(got[i - 1]!.seq + 1);

    const ok = flooded.statuses['200'] ?? 0;
    const refused = flooded.statuses['429'] ?? 0;
    const { connected, connacks3 } = flooded;
    const latencies = (prefix: string) => got.filter((r) => r.title.startsWith(prefix)).map((r) => r.latencyMs);
    const [baseline, flood] = [latencies('baseline-'), latencies('flood-')];
    const report = { flooderChanges: flooded.changes, baselineP95: Math.round(p95(baseline)), floodP95: Math.round(p95(flood)), ratio: +(p95(flood) / p95(baseline)).toFixed(1), floodMax: Math.round(Math.max(...flood)), commits: [baseline.length, flood.length], flooder: { ok, refused, connected, connacks3 }, cpuSeconds: { routerBaseline: +(cpuAtFlood[0]! - cpuAtBaseline[0]!).toFixed(2), routerFlood: +(cpuAfter[0]! - cpuAtFlood[0]!).toFixed(2), captureBaseline: +(cpuAtFlood[1]! - cpuAtBaseline[1]!).toFixed(2), captureFlood: +(cpuAfter[1]! - cpuAtFlood[1]!).toFixed(2), enginesBaseline: +(cpuAtFlood[2]! - cpuAtBaseline[2]!).toFixed(2), enginesFlood: +(cpuAfter[2]! - cpuAtFlood[2]!).toFixed(2) } };
    process.stdout.write(`flood commit->client (ms): ${JSON.stringify(report)}\n`);

    // The flooder's replay requests are answered or refused (429), nothing else; full replays
    // spend its changes budget within the phase, so it is refused, and what it was served stays
    // within burst + rate × time + what requests admitted before the debt may still read.
    expect(flooded.otherErrors).toEqual([]);
    expect(Object.keys(flooded.statuses).filter((status) => status !== '200' && status !== '429')).toEqual([]);
    expect(ok).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
    const { replayMaxLimit, replayLimits } = loadReplayLimits({});
    expect(flooded.changes).toBeLessThanOrEqual(replayLimits.served.burst + replayLimits.served.perSec * (PHASE_MS / 1000 + 1) + replayLimits.maxConcurrent * replayMaxLimit);
    // Its connects stay within its budget; whether it reaches the budget in the phase depends on the
    // host's speed (4 connects in 4 s once in CI, none refused): flood.test.ts asserts the refusals.
    expect(connected + connacks3).toBeGreaterThan(0);
    expect(connected).toBeLessThanOrEqual(DEFAULT_CONNECT_LIMITS.burst + Math.ceil((DEFAULT_CONNECT_LIMITS.ratePerSec * PHASE_MS) / 1000) + 1);
    expect(baseline.length).toBeGreaterThan(20);
    expect(flood.length).toBeGreaterThan(20);
    expect({ withinBound: p95(flood) < p95Bound(p95(baseline)), report }).toMatchObject({ withinBound: true });
  }, 180_000);
});
