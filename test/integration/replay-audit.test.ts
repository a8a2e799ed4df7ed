// `taskflow replay audit` fills a gap in the audit trail, and only the gap: Postgres 17 → capture
// → kinesalite (2 shards) → `taskflow audit` as its own process. The service records a first
// workload, is stopped, misses a second one (its consumer is reset past it, as when the stream
// trimmed those records before it came back) and records a third. Against the WAL oracle (an
// independent test_decoding slot) the trail then lacks exactly the second workload; the replay
// records exactly those changes (in chains of their own: segments are create-once), a second
// replay records nothing, and `taskflow audit verify` passes.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetRecordsCommand, GetShardIteratorCommand } from '@aws-sdk/client-kinesis';
import pg from 'pg';
import { listShards, toUserRecords } from '@taskflow/stream';
import type { Segment } from '../../audit/chain.js';
import { type RunningCapture } from '../../capture/main.js';
import { runWorkload, setupWorkloadTenants } from '../../db/workload.js';
import { createLogger } from '../../lib/logger.js';
import { compareHistory, type HistoryRecorder, startHistoryRecorder } from '../support/history.js';
import { type ServiceProcess, startServiceProcess } from '../support/service-process.js';
import { createTestDatabase, createTestStream, createTestTables, kinesisClient, uniqueName } from '../support/stack.js';
import { waitFor } from '../support/wait.js';
import { startTestCapture, testCaptureEnv } from '../support/capture.js';

const KEY = 'audit-replay-integration-key-0123456789abcdef';
const WORKLOAD = { workspaces: 3, projectsPerWorkspace: 2, seed: 'audit-replay-it' } as const;
const slot = uniqueName('audit_replay_capture');
let dbUrl: string;
let stream: string;
let capture: RunningCapture;
let history: HistoryRecorder;
let dir: string;
let storeDir: string;
let env: Record<string, string>;
let audit: ServiceProcess | undefined;

beforeAll(async () => {
  dbUrl = await createTestDatabase('audit_replay');
  stream = await createTestStream('audit-replay', 2);
  const tables = await createTestTables('audit-replay', ['dlq', 'checkpoints', 'leases']);
  dir = mkdtempSync(join(tmpdir(), 'taskflow-audit-replay-'));
  storeDir = join(dir, 'audit');
  history = await startHistoryRecorder(dbUrl, { slotName: uniqueName('audit_replay_truth') });
  const base = testCaptureEnv({ databaseUrl: dbUrl, stream, tables, slot });
  capture = await startTestCapture({ ...base, CAPTURE_HEARTBEAT_INTERVAL_MS: '300' }, createLogger('capture', 'silent'));
  env = { ...base, AUDIT_STORE_DIR: storeDir, AUDIT_KEY: KEY, METRICS_PORT: '0', KINESIS_POLL_INTERVAL_MS: '50', KINESIS_MIN_CALL_SPACING_MS: '0', KINESIS_FAILOVER_MS: '2000' };
}, 60_000);

afterAll(async () => {
  await audit?.stop().catch(() => undefined);
  await capture?.close();
  await history?.stop();
  const db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  await db.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => undefined);
  await db.end();
  rmSync(dir, { recursive: true, force: true });
});

/** Every record of every chain, the chains in key order. */
function readTrail(): Segment['records'] {
  const root = join(storeDir, 'segments');
  return readdirSync(root)
    .sort()
    .flatMap((chain) =>
      readdirSync(join(root, chain))
        .filter((f) => f.endsWith('.json'))
        .sort()
        .flatMap((f) => (JSON.parse(readFileSync(join(root, chain, f), 'utf8')) as Segment).records),
    );
}

function segmentFiles(): string[] {
  const root = join(storeDir, 'segments');
  return readdirSync(root).flatMap((chain) => readdirSync(join(root, chain)).filter((f) => f.endsWith('.json')).map((f) => `${chain}/${f}`));
}

/** The event ids on the stream now (every shard from its trim horizon). */
async function streamIds(): Promise<Set<string>> {
  const kinesis = kinesisClient();
  const ids = new Set<string>();
  try {
    for (const shard of await listShards(kinesis, stream)) {
      let iterator = (await kinesis.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: shard.shardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
      while (iterator) {
        const out = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
        const raw = (out.Records ?? []).map((r) => ({ sequenceNumber: r.SequenceNumber!, partitionKey: r.PartitionKey!, data: r.Data! }));
        for (const r of toUserRecords(shard.shardId, raw)) ids.add((JSON.parse(Buffer.from(r.data).toString('utf8')) as { id: string }).id);
        if (raw.length === 0 && out.MillisBehindLatest === 0) break;
        iterator = out.NextShardIterator;
      }
    }
  } finally {
    kinesis.destroy();
  }
  return ids;
}

function cli(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ['bin/taskflow.js', ...args], { env: { ...process.env, ...env, NODE_OPTIONS: '', LOG_LEVEL: 'warn' }, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const workload = (seedSuffix: string) => runWorkload({ databaseUrl: dbUrl, ratePerSec: 150, transactions: 150, concurrency: 3, ...WORKLOAD, seed: `${WORKLOAD.seed}-${seedSuffix}` });

describe('taskflow replay audit', () => {
  it('records exactly the changes the trail missed, and nothing on a second run', async () => {
    const from = new Date(Date.now() - 1000);
    await setupWorkloadTenants(dbUrl, WORKLOAD);
    audit = await startServiceProcess('audit', env, ['audit started']);
    await workload('a');
    const beforeGap = await history.collect();
    await waitFor(() => {
      const have = new Set(readTrail().map((r) => r.eventId));
      return beforeGap.every((t) => have.has(t.id));
    }, 'the first workload in the trail', 60_000, 250);
    await audit.stop();
    audit = undefined;

    // The gap: committed and on the stream while the service is down, then skipped by a reset.
    await workload('b');
    const gap = (await history.collect()).slice(beforeGap.length);
    expect(gap.length).toBeGreaterThan(100);
    await waitFor(async () => {
      const ids = await streamIds();
      return gap.every((t) => ids.has(t.id));
    }, 'the second workload on the stream', 60_000, 250);
    const reset = cli(['consumers', 'reset', 'audit', '--to', 'latest']);
    expect(reset).toEqual({ status: 0, out: expect.stringMatching(/audit: 2 shard\(s\) reset to latest/) });

    audit = await startServiceProcess('audit', env, ['audit started']);
    await workload('c');
    const truth = await history.collect();
    const after = truth.slice(beforeGap.length + gap.length);
    await waitFor(() => {
      const have = new Set(readTrail().map((r) => r.eventId));
      return after.every((t) => have.has(t.id));
    }, 'the third workload in the trail', 60_000, 250);
    const seen = (records: Segment['records']) => records.map((r) => ({ id: r.eventId, workspaceid: r.workspaceId, projectid: r.projectId }));
    // The trail lacks exactly the gap (the service keeps running: the replay is one more reader).
    expect(compareHistory(truth, seen(readTrail()))).toMatchObject({ lost: gap.map((t) => t.id), duplicated: [], unexpected: [] });

    const first = cli(['replay', 'audit', '--from', from.toISOString(), '--progress', join(dir, 'replay-audit.json')]);
    expect(first.out).toMatch(new RegExp(`audit: ${gap.length} changes recorded \\(missing from the trail\\), ${beforeGap.length + after.length} already held, 0 left`));
    expect(first.status).toBe(0);
    const filled = readTrail();
    expect(compareHistory(truth, seen(filled))).toMatchObject({ lost: [], duplicated: [], unexpected: [] });
    // In chains of the replay's own, never in a live chain.
    const gapIds = new Set(gap.map((t) => t.id));
    expect(segmentFiles().filter((f) => f.startsWith('replay-')).length).toBeGreaterThan(0);
    const files = segmentFiles();

    const second = cli(['replay', 'audit', '--from', from.toISOString(), '--progress', join(dir, 'replay-audit.json'), '--restart']);
    expect(second.out).toMatch(new RegExp(`audit: 0 changes recorded \\(missing from the trail\\), ${truth.length} already held, 0 left`));
    expect(second.status).toBe(0);
    expect(segmentFiles().sort()).toEqual(files.sort());
    expect(readTrail().filter((r) => gapIds.has(r.eventId))).toHaveLength(gap.length);

    await audit.stop();
    audit = undefined;
    const verified = cli(['audit', 'verify']);
    expect(verified.status).toBe(0);
    console.log(`replay audit: ${gap.length} missing changes recorded of ${truth.length}; a second replay recorded 0`);
  }, 240_000);
});
