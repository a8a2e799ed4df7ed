// The audit trail against the real pipeline: Postgres 17 → capture → kinesalite (2 shards) →
// `taskflow audit` as its own process, with the workload writing throughout. The audit process
// is SIGKILLed mid-load and a new one started; against the WAL oracle (an independent
// test_decoding slot) the trail then holds every committed change exactly once, in commit order
// per workspace, with each transaction's actor as its pseudonym, on chains that verify up to the
// consumer's checkpoints. Then the CLI: verify names a tampered segment, query shows an
// entity's history, and forgetting a user leaves the chain intact.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { Segment } from '../../audit/chain.js';
import { Pseudonymizer } from '../../audit/record.js';
import { type RunningCapture } from '../../capture/main.js';
import { runWorkload, setupWorkloadTenants, type WorkloadStats } from '../../db/workload.js';
import { DynamoDeadLetterStore } from '../../lib/dlq.js';
import { parseEventId, parseLsn } from '../../lib/event-id.js';
import { createLogger } from '../../lib/logger.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { compareHistory, type HistoryRecorder, startHistoryRecorder } from '../support/history.js';
import { type ServiceProcess, startServiceProcess } from '../support/service-process.js';
import { createTestDatabase, createTestStream, createTestTables, dynamoClient, uniqueName } from '../support/stack.js';
import { sleep, waitFor } from '../support/wait.js';
import { startTestCapture, testCaptureEnv } from '../support/capture.js';

const KEY = 'audit-integration-test-key-0123456789abcdef';
const slot = uniqueName('audit_capture');
let dbUrl: string;
let capture: RunningCapture;
let history: HistoryRecorder;
let storeDir: string;
let env: Record<string, string>;
const audits: ServiceProcess[] = [];

beforeAll(async () => {
  dbUrl = await createTestDatabase('audit');
  const stream = await createTestStream('audit', 2);
  const tables = await createTestTables('audit', ['dlq', 'checkpoints', 'leases']);
  storeDir = mkdtempSync(join(tmpdir(), 'taskflow-audit-'));
  history = await startHistoryRecorder(dbUrl, { slotName: uniqueName('truth') });
  const base = testCaptureEnv({ databaseUrl: dbUrl, stream, tables, slot });
  capture = await startTestCapture({ ...base, CAPTURE_HEARTBEAT_INTERVAL_MS: '300' }, createLogger('capture', 'silent'));
  env = { ...base, AUDIT_STORE_DIR: storeDir, AUDIT_KEY: KEY, METRICS_PORT: '0', KINESIS_POLL_INTERVAL_MS: '50', KINESIS_MIN_CALL_SPACING_MS: '50', KINESIS_FAILOVER_MS: '2000' };
}, 60_000);

afterAll(async () => {
  for (const a of audits) await a.stop().catch(() => undefined);
  await capture?.close();
  await history?.stop();
  const db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  await db.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => undefined);
  await db.end();
  rmSync(storeDir, { recursive: true, force: true });
});

/** The database's current WAL position: commits after this moment have higher commit LSNs. */
async function walPosition(): Promise<bigint> {
  const db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  try {
    return parseLsn((await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn);
  } finally {
    await db.end();
  }
}

function readTrail(dir: string): Segment[] {
  const root = join(dir, 'segments');
  return readdirSync(root)
    .sort()
    .flatMap((shard) =>
      readdirSync(join(root, shard))
        .filter((f) => f.endsWith('.json'))
        .sort()
        .map((f) => JSON.parse(readFileSync(join(root, shard, f), 'utf8')) as Segment),
    );
}

function cli(args: string[], extra: Record<string, string> = {}): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ['bin/taskflow.js', 'audit', ...args], { env: { ...process.env, ...env, ...extra, NODE_OPTIONS: '' }, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('audit trail', () => {
  let stats: WorkloadStats;

  it('a SIGKILLed audit process loses and doubles nothing: every committed change once, in order, with its actor', async () => {
    await setupWorkloadTenants(dbUrl, { workspaces: 4, projectsPerWorkspace: 2, seed: 'audit-it' });
    audits.push(await startServiceProcess('audit', env, ['audit started']));
    const load = runWorkload({ databaseUrl: dbUrl, ratePerSec: 150, durationMs: 9000, workspaces: 4, projectsPerWorkspace: 2, seed: 'audit-it', concurrency: 3, recordTransactions: true });
    // Not waits but the fault schedule: killed 2.5 s into the 9 s load, down for 1.5 s.
    await sleep(2500);
    audits[0]!.child.kill('SIGKILL');
    const killedAt = await walPosition();
    await sleep(1500);
    audits.push(await startServiceProcess('audit', env, ['audit started']));
    stats = await load;

    const truth = await history.collect();
    // The kill fell inside the load (however fast a loaded host ran it): changes committed before
    // it, for the killed process to have been working on, and after it, for the restarted one.
    const commitLsns = truth.map((t) => parseEventId(t.id).commitLsn);
    expect(commitLsns.some((lsn) => lsn < killedAt)).toBe(true);
    expect(commitLsns.some((lsn) => lsn > killedAt)).toBe(true);
    const wanted = new Set(truth.map((t) => t.id));
    let seen: Segment['records'] = [];
    // On a time-out the comparison below says what is missing.
    await waitFor(
      () => {
        seen = readTrail(storeDir).flatMap((s) => s.records);
        const have = new Set(seen.map((r) => r.eventId));
        return [...wanted].every((id) => have.has(id));
      },
      'every committed change in the trail',
      60_000,
      250,
    ).catch(() => undefined);
    const cmp = compareHistory(
      truth,
      seen.map((r) => ({ id: r.eventId, workspaceid: r.workspaceId, projectid: r.projectId })),
    );
    expect(cmp).toEqual({ lost: [], duplicated: [], outOfOrderByWorkspace: [], outOfOrderByProject: [], unexpected: [], misrouted: [] });
    const metrics = await (await fetch(String(audits[1]!.entries['audit started']!.metrics))).text();
    expect(metrics).toMatch(/^taskflow_audit_records_total\{service="audit"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/kinesis_consumer_leases_held\{consumer="audit"/);

    // Who: each record carries the pseudonym of its transaction's actor, never the user id.
    const pseudonyms = new Pseudonymizer(new TextEncoder().encode(KEY));
    const actorByXid = new Map(stats.transactions!.map((t) => [t.xid, t.actorId]));
    const xidOf = new Map(truth.map((t) => [t.id, t.xid]));
    for (const r of seen) {
      const actor = actorByXid.get(xidOf.get(r.eventId)!);
      expect(r.actor).toBe(actor ? pseudonyms.actor(actor) : null);
      expect(String(r.xid)).toBe(xidOf.get(r.eventId));
      if (actor) expect(JSON.stringify(r)).not.toContain(actor);
    }
  }, 180_000);

  it('taskflow audit verify checks every chain up to the checkpoints; a tampered copy is named', async () => {
    // The surviving process checkpoints on a graceful stop: every segment is then anchored.
    await audits.at(-1)!.stop();
    const ok = cli(['verify']);
    expect(ok.out).toMatch(/audit trail verified: 2 shard chain\(s\) intact, each reaching its checkpoint/);
    expect(ok.status).toBe(0);

    const copy = mkdtempSync(join(tmpdir(), 'taskflow-audit-tampered-'));
    try {
      cpSync(storeDir, copy, { recursive: true });
      const shard = readdirSync(join(copy, 'segments')).sort()[0]!;
      // Segments only: a process SIGKILLed mid-write leaves its temporary file (.<pid>-<random>.tmp), which sorts first.
      const files = readdirSync(join(copy, 'segments', shard)).filter((f) => !f.startsWith('.')).sort();
      expect(files.length).toBeGreaterThan(2);
      const victim = join(copy, 'segments', shard, files[1]!);
      const segment = JSON.parse(readFileSync(victim, 'utf8')) as Segment;
      // Someone pins the change on another actor. (Setting it to null would change nothing when the
      // transaction carried no actor, which the workload's transactions sometimes do not.)
      segment.records[0]!.actor = 'forged-pseudonym';
      writeFileSync(victim, JSON.stringify(segment));
      const bad = cli(['verify'], { AUDIT_STORE_DIR: copy });
      expect(bad.status).toBe(1);
      expect(bad.out).toContain(`${shard}`);
      expect(bad.out).toMatch(/ALTERED: segment 1 — its records do not hash to its root/);
      rmSync(join(copy, 'segments', shard, files[1]!));
      expect(cli(['verify'], { AUDIT_STORE_DIR: copy }).out).toMatch(/REMOVED: segment 1 — segment 1 is missing/);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  }, 120_000);

  it('taskflow audit query shows an entity’s history; forgetting its actor leaves a pseudonym and an intact chain', async () => {
    const trail = readTrail(storeDir).flatMap((s) => s.records);
    const task = trail.find((r) => r.subject.startsWith('tasks/') && r.actor !== null && trail.filter((x) => x.subject === r.subject).length >= 2)!;
    const shown = cli(['query', '--entity', task.subject]);
    expect(shown.status).toBe(0);
    const changes = trail.filter((r) => r.subject === task.subject);
    expect(shown.out).toContain(`${changes.length} change(s) to ${task.subject}`);
    const json = JSON.parse(cli(['query', '--entity', task.subject, '--json']).out) as { eventId: string; userId?: string; actor: string | null }[];
    expect(json.map((e) => e.eventId)).toEqual(changes.map((r) => r.eventId).sort());
    const userId = json.find((e) => e.actor === task.actor)!.userId!;
    expect(userId).toMatch(/^[0-9a-f-]{36}$/);
    expect(shown.out).toContain(userId);

    expect(cli(['forget', '--user', userId]).out).toMatch(/forgot user .*: pseudonym [0-9a-f]{32} no longer resolves/);
    const after = cli(['query', '--entity', task.subject]).out;
    expect(after).not.toContain(userId);
    expect(after).toContain(`pseudonym ${task.actor}`);
    expect(cli(['verify']).status).toBe(0);
  }, 120_000);

  it('taskflow audit redrive puts its dead letters back: each event enters the trail once, flagged redriven', async () => {
    const dynamo = dynamoClient();
    try {
      const dlq = new DynamoDeadLetterStore(dynamo, env.DYNAMODB_TABLE_DLQ!);
      // An event the service once refused (say, before its schema version was deployed), dead-lettered twice (by two shards' re-reads).
      const ws = readTrail(storeDir).flatMap((s) => s.records).find((r) => r.workspaceId !== '*')!.workspaceId;
      const event = sampleEvent('task.updated', { workspaceId: ws, commitLsn: 0x10n });
      const payload = Buffer.from(JSON.stringify(event));
      for (const seq of ['1', '2']) await dlq.put({ source: 'audit', reason: 'unknown_schema', message: 'test', payload, origin: { shardId: 'shardId-000000000000', sequenceNumber: seq }, dedupeKey: `redrive-test/${seq}` });
      const redriven = cli(['redrive']);
      expect(redriven.out).toMatch(/2 dead letter\(s\) redriven/);
      const audit = await startServiceProcess('audit', env, ['audit started']);
      audits.push(audit);
      // The restarted service resumes after its checkpoint: the two redriven copies are all it
      // reads; the consumer counts a record once its processRecords has returned.
      const read = async () => {
        const text = await (await fetch(String(audit.entries['audit started']!.metrics))).text();
        return [...text.matchAll(/^kinesis_consumer_records_processed_total\{[^}]*consumer="audit"[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
      };
      await waitFor(async () => (await read()) >= 2, 'both records processed', 60_000, 250);
      expect(await read()).toBe(2);
      const found = readTrail(storeDir).flatMap((s) => s.records).filter((r) => r.eventId === event.id);
      expect(found.map((r) => r.redriven)).toEqual([true]);
      expect((await dlq.list({ source: 'audit' })).length).toBe(0);
      await audits.at(-1)!.stop();
      expect(cli(['verify']).status).toBe(0);
    } finally {
      dynamo.destroy();
    }
  }, 120_000);
});
