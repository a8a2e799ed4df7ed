// The analytics path under faults, from Postgres to the curated tables: capture in-process, the
// archiver and the loader as their own processes, SIGKILLed at random moments while the workload
// commits, with a Firehose stand-in that fails records and throttles calls. Against the WAL
// (a test_decoding slot, test/support/history.ts) nothing is lost and nothing is doubled in
// raw_events, and the curated tables equal the source tables at the end.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { loadLoaderConfig } from '../../analytics/config.js';
import { startLoader } from '../../analytics/loader-service.js';
import { type RunningCapture } from '../../capture/main.js';
import { runWorkload } from '../../db/workload.js';
import { type LocalFirehose, startFirehose } from '../../infra/local/firehose/server.js';
import { createLogger } from '../../lib/logger.js';
import { FsObjectStore } from '../../lib/object-store.js';
import { tableEnvVar } from '../../lib/config.js';
import { commentActivity, historyOf, type RawEvent, tasksDaily } from '../support/analytics-views.js';
import { startHistoryRecorder, type HistoryRecorder } from '../support/history.js';
import { startServiceProcess, type ServiceProcess } from '../support/service-process.js';
import { captureDatabaseUrl, createTestDatabase, createTestStream, createTestTables, testStackEnv, uniqueName } from '../support/stack.js';
import { sleep, waitFor } from '../support/wait.js';
import { startTestCapture } from '../support/capture.js';

const logger = createLogger('analytics-faults', process.env.PIPELINE_TEST_LOG ?? 'silent');
let dir: string;
let env: Record<string, string>;
let firehose: LocalFirehose;
let capture: RunningCapture;
let history: HistoryRecorder;
let dbUrl: string;
let failedRecords = 0;
let throttledCalls = 0;
/** Records Firehose accepted, to see an archiver deliver before it is killed. */
let acceptedRecords = 0;

// A deterministic pseudo-random sequence for the moments of the kills.
let seed = 4242;
const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;

beforeAll(async () => {
  dbUrl = await createTestDatabase('analytics_faults');
  const [stream, tables] = await Promise.all([createTestStream('analytics-faults', 2), createTestTables('analytics-faults', ['leases', 'dlq', 'checkpoints'])]);
  dir = mkdtempSync(join(tmpdir(), 'analytics-faults-'));
  // The faults by count, not by chance: the first call and every 7th after it throttled, the first
  // record answered and every 10th after it failed. How many calls and records the archivers make
  // depends on the host's speed (a slow one reads bigger batches, packed into fewer records), so a
  // rate could inject nothing; by count, any delivery meets both faults.
  let calls = 0;
  let records = 0;
  firehose = await startFirehose({
    store: (bucket) => new FsObjectStore(join(dir, 's3', bucket)),
    streams: [{ name: 'archive', bucket: 'archive', prefix: 'raw/', errorPrefix: 'errors/', hints: { sizeInMBs: 1, intervalInSeconds: 1 }, compression: 'UNCOMPRESSED', fileExtension: '.gz' }],
    faults: {
      throttleCall: () => ++calls % 7 === 1 && ++throttledCalls > 0,
      failRecord: () => (++records % 10 === 1 ? (failedRecords++, 'ServiceUnavailableException') : (acceptedRecords++, undefined)),
    },
  });
  env = {
    ...testStackEnv(),
    DATABASE_URL: captureDatabaseUrl(dbUrl),
    CHANGE_STREAM_NAME: stream,
    [tableEnvVar('leases')]: tables.leases!,
    [tableEnvVar('dlq')]: tables.dlq!,
    [tableEnvVar('checkpoints')]: tables.checkpoints!,
    CAPTURE_SLOT: uniqueName('analytics_faults'),
    CAPTURE_ACK_INTERVAL_MS: '100',
    FIREHOSE_ENDPOINT: firehose.endpoint,
    FIREHOSE_DELIVERY_STREAM: 'archive',
    S3_DIR: join(dir, 's3'),
    ARCHIVE_BUCKET: 'archive',
    KINESIS_POLL_INTERVAL_MS: '50',
    KINESIS_MIN_CALL_SPACING_MS: '0',
    // A killed archiver's leases move to its successor after this long.
    KINESIS_FAILOVER_MS: '2000',
    ARCHIVER_BACKOFF_BASE_MS: '20',
    LOADER_POLL_INTERVAL_MS: '100',
    DQ_INTERVAL_MS: '0',
  };
  history = await startHistoryRecorder(dbUrl, { slotName: uniqueName('analytics_truth') });
  capture = await startTestCapture(env, logger);
}, 60_000);

afterAll(async () => {
  await capture?.close().catch(() => undefined);
  await history?.stop().catch(() => undefined);
  await firehose?.stop();
  const admin = new pg.Client({ connectionString: dbUrl });
  await admin.connect().then(() => admin.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [env.CAPTURE_SLOT])).catch(() => undefined);
  await admin.end().catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('analytics path under faults', () => {
  it('loses and doubles nothing against the WAL when the archiver and the loader are SIGKILLed under load, and the curated tables equal Postgres', async () => {
    const archive = () => startServiceProcess(['analytics', 'archive'], env, ['archiver started']);
    const load = () => startServiceProcess(['analytics', 'load'], env, ['loader started']);
    let archiver: ServiceProcess = await archive();
    let loader: ServiceProcess = await load();
    // 2,400 transactions (12 s at 200/s on an idle host): a count, so a loaded host commits as many, later.
    const workload = runWorkload({ databaseUrl: dbUrl, ratePerSec: 200, transactions: 2400, workspaces: 4, projectsPerWorkspace: 2, seed: 21, concurrency: 3 });
    let done = false;
    void workload.finally(() => (done = true));
    const kills = { archiver: 0, loader: 0 };
    // What each has done since it started: records Firehose accepted, objects the loader loaded.
    const loaded = async (p: ServiceProcess) => {
      const text = await (await fetch(String(p.entries['loader started']!.metrics))).text();
      return Number(/^taskflow_loader_objects_loaded_total(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? 0);
    };
    let since = { accepted: acceptedRecords, loaded: 0 };
    try {
      // Until the load is over and each has been killed once (on a loaded host the load can end first).
      const more = () => !done || kills.archiver === 0 || kills.loader === 0;
      while (more()) {
        const which = kills.archiver <= kills.loader ? 'archiver' : 'loader';
        const victim = which === 'archiver' ? archiver : loader;
        // Killed mid-work: once it has delivered (archiver) or loaded (loader) since it started,
        // then at a random moment up to 1.5 s later (not a wait: the fault schedule).
        await waitFor(
          async () => !more() || (which === 'archiver' ? acceptedRecords > since.accepted : (await loaded(victim)) > since.loaded),
          () => `the ${which} to ${which === 'archiver' ? 'deliver' : 'load'} something before its kill`,
          60_000,
        );
        if (!more()) break;
        await sleep(random() * 1500);
        if (!more()) break;
        victim.child.kill('SIGKILL');
        await victim.stop();
        kills[which]++;
        if (which === 'archiver') {
          archiver = await archive();
          since = { ...since, accepted: acceptedRecords };
        } else {
          loader = await load();
          since = { ...since, loaded: 0 };
        }
      }
      const stats = await workload;
      await loader.stop(); // graceful: the final loader runs in this process, to be queried
      const truth = await history.collect();
      expect(truth.length).toBeGreaterThan(500);
      const final = await startLoader(loadLoaderConfig(env), logger);
      try {
        let ids = new Set<string>();
        // On a time-out the checks below say what was lost.
        await waitFor(
          async () => {
            ids = new Set((await final.warehouse.query('SELECT id FROM raw_events')).map((r) => String(r.id)));
            return truth.every((e) => ids.has(e.id));
          },
          'every committed change in raw_events',
          90_000,
          250,
        ).catch(() => undefined);
        const lost = truth.filter((e) => !ids.has(e.id)).map((e) => e.id);
        const [counts] = await final.warehouse.query('SELECT (SELECT count(*) FROM raw_events)::INTEGER AS raw, (SELECT sum(new_events) FROM load_log)::INTEGER AS loaded');
        const unexpected = [...ids].filter((id) => !truth.some((e) => e.id === id));
        expect({ lost, unexpected, doubled: counts!.loaded! !== counts!.raw }).toEqual({ lost: [], unexpected: [], doubled: false });
        expect(counts!.raw).toBe(truth.length);
        expect(kills.archiver).toBeGreaterThanOrEqual(1);
        expect(kills.loader).toBeGreaterThanOrEqual(1);
        expect(failedRecords).toBeGreaterThan(0);
        expect(throttledCalls).toBeGreaterThan(0);

        // The curated tables are the source tables' current state.
        const db = new pg.Client({ connectionString: dbUrl });
        await db.connect();
        try {
          for (const [table, columns] of [
            ['tasks', 'id, status, title, project_id'],
            ['comments', 'id, task_id, body'],
            ['projects', 'id, name, workspace_id'],
            ['memberships', 'id, user_id, role'],
          ] as const) {
            const source = (await db.query(`SELECT ${columns} FROM ${table} ORDER BY id`)).rows as Record<string, unknown>[];
            const curated = await final.warehouse.query(`SELECT ${columns} FROM ${table} ORDER BY id`);
            expect({ table, rows: curated }).toEqual({ table, rows: source });
          }
        } finally {
          await db.end();
        }
        // The history and metrics views on this real, out-of-order-loaded data equal a plain
        // computation from the raw events (test/support/analytics-views.ts).
        const raw: RawEvent[] = (
          await final.warehouse.query(`SELECT id, epoch_ms(time) AS t, tbl, op, key_id, workspace_id, project_id, CAST(json_extract(event, '$.data.after') AS VARCHAR) AS after,
            CAST(json_extract(event, '$.data.omitted') AS VARCHAR) AS omitted FROM raw_events`)
        ).map((r) => ({
          id: String(r.id), time: new Date(Number(r.t)), tbl: String(r.tbl), op: String(r.op), keyId: r.key_id === null ? null : String(r.key_id),
          workspaceId: String(r.workspace_id), projectId: r.project_id === null ? null : String(r.project_id),
          after: r.after === null ? null : (JSON.parse(String(r.after)) as Record<string, unknown>), omitted: r.omitted === null ? [] : (JSON.parse(String(r.omitted)) as string[]),
        }));
        const history = await final.warehouse.query('SELECT id, event_id, epoch_ms(valid_from) AS f, epoch_ms(valid_to) AS t, status, title, workspace_id FROM tasks_history ORDER BY id, event_id');
        const expectedHistory = historyOf(raw, 'tasks')
          .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : a.eventId < b.eventId ? -1 : 1))
          .map((v) => ({ id: v.id, event_id: v.eventId, f: v.validFrom, t: v.validTo, status: v.row.status, title: v.row.title, workspace_id: v.row.workspace_id }));
        expect(expectedHistory.filter((v) => v.t !== null).length).toBeGreaterThan(100); // updates happened
        expect(history.map((r) => ({ ...r, f: Number(r.f), t: r.t === null ? null : Number(r.t) }))).toEqual(expectedHistory);
        const daily = await final.warehouse.query("SELECT strftime(day, '%Y-%m-%d') || '|' || workspace_id AS k, tasks_created::INTEGER AS created, tasks_completed::INTEGER AS completed FROM metrics_tasks_daily");
        const expectedDaily = tasksDaily(raw);
        expect([...expectedDaily.values()].reduce((n, d) => n + d.completed, 0)).toBeGreaterThan(0);
        expect(Object.fromEntries(daily.map((r) => [String(r.k), { created: r.created, completed: r.completed }]))).toEqual(Object.fromEntries(expectedDaily));
        const comments = await final.warehouse.query(
          "SELECT strftime(day, '%Y-%m-%d') || '|' || workspace_id || '|' || coalesce(project_id, '') AS k, comments_created::INTEGER AS created, comments_edited::INTEGER AS edited, authors::INTEGER AS authors FROM metrics_comment_activity",
        );
        expect(Object.fromEntries(comments.map((r) => [String(r.k), { created: r.created, edited: r.edited, authors: r.authors }]))).toEqual(Object.fromEntries(commentActivity(raw)));

        console.log(`analytics faults: ${truth.length} changes in ${stats.committedTransactions} transactions; SIGKILLs: archiver ${kills.archiver}, loader ${kills.loader}; Firehose failed ${failedRecords} records and throttled ${throttledCalls} calls; lost 0, doubled 0`);
      } finally {
        await final.stop();
      }
    } finally {
      await archiver.stop();
      await loader.stop();
      await workload.catch(() => undefined);
    }
  }, 240_000);
});
