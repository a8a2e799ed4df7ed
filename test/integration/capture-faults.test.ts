// Capture under faults, against the local stack: PutRecords partial failures (injected by wrapping
// the real client), SIGKILL of the capture process under load, a slot recreated behind its back, a peer confirming while it starts.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { type ChildProcess, spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfig } from '../../capture/config.js';
import { startCapture } from '../../capture/main.js';
import type { PutRecordsFn } from '../../capture/producer.js';
import { runWorkload } from '../../db/workload.js';
import { createLogger } from '../../lib/logger.js';
import { compareHistory, startHistoryRecorder } from '../support/history.js';
import { createTestDatabase, createTestStream, createTestTables, kinesisClient, uniqueName } from '../support/stack.js';
import { MemorySlotRecordStore, type SlotRecord, type SlotRecordStore } from '../../capture/slot-guard.js';
import { SlotSetup } from '../../capture/slot-setup.js';
import { parseLsn } from '../../lib/event-id.js';
import { StreamReader } from './capture-helpers.js';
import { sleep, waitFor } from '../support/wait.js';
import { startTestCapture, testCaptureEnv } from '../support/capture.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const logger = createLogger('capture', process.env.CAPTURE_TEST_LOG ?? 'silent');
let kinesis: KinesisClient;
/** Slots are cluster-wide: each test has its own, dropped at the end (capture itself never drops one). */
const slots: { dbUrl: string; slot: string }[] = [];

beforeAll(() => {
  kinesis = kinesisClient();
});
afterAll(async () => {
  kinesis?.destroy();
  for (const { dbUrl, slot } of slots) {
    const db = new pg.Client({ connectionString: dbUrl });
    await db.connect();
    await db.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [slot]).catch(() => undefined);
    await db.end();
  }
});

async function environment(prefix: string, shards = 2) {
  const dbUrl = await createTestDatabase(prefix);
  const stream = await createTestStream(prefix.replace(/_/g, '-'), shards);
  const tables = await createTestTables(prefix.replace(/_/g, '-'), ['dlq', 'checkpoints']);
  const slot = uniqueName(prefix);
  const env = testCaptureEnv({ databaseUrl: dbUrl, stream, tables, slot });
  slots.push({ dbUrl, slot });
  const history = await startHistoryRecorder(dbUrl, { slotName: uniqueName('truth') });
  return { dbUrl, stream, env, history, reader: new StreamReader(kinesis, stream) };
}

function clean(cmp: ReturnType<typeof compareHistory>) {
  return { lost: cmp.lost, outOfOrderByWorkspace: cmp.outOfOrderByWorkspace, outOfOrderByProject: cmp.outOfOrderByProject, unexpected: cmp.unexpected, misrouted: cmp.misrouted };
}
const NOTHING_WRONG = { lost: [], outOfOrderByWorkspace: [], outOfOrderByProject: [], unexpected: [], misrouted: [] };

/**
 * A slot set-up of its own (the adapter capture starts with), its admin pool and the key its record
 * is kept under: for the start-up interleavings with a peer, played by the record store.
 */
async function slotSetupOn(prefix: string) {
  const { dbUrl, env, history } = await environment(prefix, 1);
  await history.stop();
  const config = loadConfig({ ...env, TASKFLOW_ENV: 'development' });
  const admin = new pg.Pool({ connectionString: dbUrl, max: 2 });
  const sys = await admin.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()');
  const key = `${sys.rows[0]!.id}/${config.dbName}/${config.slot}`;
  const prepare = (store: SlotRecordStore) => new SlotSetup(admin, config, store, logger).prepare();
  return { config, admin, key, prepare };
}

describe('capture under faults', () => {
  it('never reorders a workspace when PutRecords fails partially or throws (injected around the real client)', async () => {
    const { dbUrl, env, history, reader } = await environment('capture_partial', 1);
    let calls = 0;
    let failedRecords = 0;
    // Deterministic chaos: every 3rd call throws before sending; otherwise ~1/3 of the records
    // "fail" (they are not sent, as Kinesis would not have written them) and the rest go for real.
    const chaos = (put: PutRecordsFn): PutRecordsFn => async (records) => {
      calls += 1;
      if (calls % 3 === 0) throw Object.assign(new Error('injected'), { name: 'ProvisionedThroughputExceededException' });
      const fail = records.map((_, i) => (calls + i) % 3 === 0);
      failedRecords += fail.filter(Boolean).length;
      const sent = await put(records.filter((_, i) => !fail[i]));
      let next = 0;
      return records.map((_, i) => (fail[i] ? { ok: false, errorCode: 'ProvisionedThroughputExceededException' } : sent[next++]!));
    };
    const capture = await startCapture(loadConfig({ ...env, CAPTURE_AGGREGATE: 'false' }), logger, chaos);
    try {
      void capture.service.start();
      await capture.service.ready;
      await runWorkload({ databaseUrl: dbUrl, ratePerSec: Infinity, transactions: 150, workspaces: 3, projectsPerWorkspace: 2, seed: 7, concurrency: 3 });
      const truth = await history.collect();
      await waitFor(async () => {
        await reader.poll();
        const seen = reader.ids();
        return truth.every((e) => seen.has(e.id));
      }, 'every change on the stream', 60_000);
      expect(failedRecords).toBeGreaterThan(10);
      expect(clean(compareHistory(truth, reader.events))).toEqual(NOTHING_WRONG);
    } finally {
      await capture.close();
      await history.stop();
    }
  }, 120_000);

  it('loses nothing and keeps per-workspace order when the capture process is SIGKILLed under load, again and again', async () => {
    const { dbUrl, env, history, reader } = await environment('capture_kill');
    const logFile = join(tmpdir(), `${env.CAPTURE_SLOT}.log`);
    const log = openSync(logFile, 'a');
    // zstd here (gzip in capture-stream): each compression runs through the real service once.
    const start = (): ChildProcess =>
      spawn(process.execPath, [join(root, 'bin', 'taskflow.js'), 'capture'], { cwd: root, env: { ...process.env, ...env, CAPTURE_COMPRESSION: 'zstd', NODE_OPTIONS: '', LOG_LEVEL: process.env.CAPTURE_TEST_LOG ?? 'error' }, stdio: ['ignore', log, log] });
    const exited = (child: ChildProcess) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
    const db = new pg.Client({ connectionString: dbUrl });
    await db.connect();
    /** Waits for a new walsender (a new capture process) to stream from the slot; returns its pid. */
    const slotActive = (previousPid: number) =>
      waitFor(async () => {
        const r = await db.query<{ active_pid: number | null }>('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [env.CAPTURE_SLOT]);
        const pid = r.rows[0]?.active_pid;
        return pid != null && pid !== previousPid ? pid : undefined;
      }, 'capture to stream from its slot', 60_000, 50);
    let child = start();
    let walsender = await slotActive(-1); // the slot exists before the first change we count
    const abort = new AbortController();
    // The workload runs until the third kill (a restart takes seconds on a loaded machine, so a
    // fixed duration would sometimes allow only two), bounded at 60 s.
    const KILLS = 3;
    const workload = runWorkload({ databaseUrl: dbUrl, ratePerSec: 300, durationMs: 60_000, workspaces: 4, projectsPerWorkspace: 2, seed: 11, concurrency: 3, signal: abort.signal });
    let kills = 0;
    let done = false;
    void workload.finally(() => (done = true));
    let seed = 12345;
    const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    try {
      while (!done && kills < KILLS) {
        // a random moment while it streams under load
        await sleep(200 + random() * 2000); // not a wait: the fault schedule
        child.kill('SIGKILL');
        await exited(child);
        kills += 1;
        child = start();
        walsender = await slotActive(walsender);
      }
      abort.abort();
      await workload;
      const final = child;
      try {
        const truth = await history.collect();
        await waitFor(async () => {
          await reader.poll();
          const seen = reader.ids();
          return truth.every((e) => seen.has(e.id));
        }, 'every change on the stream after the last restart', 60_000, 500);
        const cmp = compareHistory(truth, reader.events);
        expect(clean(cmp)).toEqual(NOTHING_WRONG);
        expect(kills).toBe(KILLS);
        // repeats are the same event: same id, same bytes
        const firstRaw = new Map<string, string>();
        reader.events.forEach((e, i) => {
          const raw = reader.raw[i]!;
          const seen = firstRaw.get(e.id);
          if (seen === undefined) firstRaw.set(e.id, raw);
          else expect(raw).toBe(seen);
        });
        expect([...reader.forms.keys()]).toEqual(['zstd']);
        logger.info({ kills, events: truth.length, duplicates: cmp.duplicated.length }, 'sigkill run');
      } finally {
        final.kill('SIGTERM');
        await exited(final);
      }
    } finally {
      abort.abort();
      await workload.catch(() => undefined);
      await history.stop();
      await db.end();
    }
  }, 150_000);

  it('refuses to start over silently when its slot was dropped and recreated', async () => {
    const { dbUrl, env, history } = await environment('capture_slotgap', 1);
    await history.stop();
    const first = await startTestCapture(env, logger);
    await first.close();
    const db = new pg.Client({ connectionString: dbUrl });
    await db.connect();
    try {
      await db.query('SELECT pg_drop_replication_slot($1)', [env.CAPTURE_SLOT]);
      await db.query("INSERT INTO workspaces (id, name, slug) VALUES (gen_random_uuid(), 'gap', 'gap-' || md5(random()::text))");
      await db.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [env.CAPTURE_SLOT]);
    } finally {
      await db.end();
    }
    const second = await startCapture(loadConfig(env), logger);
    try {
      await expect(second.service.start()).rejects.toMatchObject({ code: 'SLOT_GAP' });
    } finally {
      await second.close();
    }
  });

  it('does not take a peer confirming while it starts for a gap (the slot is read before the record)', async () => {
    const { config, admin, key, prepare } = await slotSetupOn('capture_peerconfirm');
    try {
      const created = await admin.query<{ lsn: string }>("SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')", [config.slot]);
      const lsn = parseLsn(created.rows[0]!.lsn);
      // The active peer of an active/standby pair confirms a newer position, as capture does
      // (record first, then the server), right after the starting instance read the record.
      class PeerConfirmsAfterRead extends MemorySlotRecordStore {
        private confirmed = false;
        override async get(k: string): Promise<SlotRecord | undefined> {
          const seen = await super.get(k);
          if (!this.confirmed) {
            this.confirmed = true;
            await admin.query("INSERT INTO workspaces (id, name, slug) VALUES (gen_random_uuid(), 'peer', 'peer-' || md5(random()::text))");
            const next = (await admin.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
            await this.put({ ...seen!, confirmedLsn: parseLsn(next), updatedAt: new Date().toISOString() });
            await admin.query('SELECT pg_replication_slot_advance($1, $2::pg_lsn)', [config.slot, next]);
          }
          return seen;
        }
      }
      const store = new PeerConfirmsAfterRead();
      await store.put({ key, confirmedLsn: lsn, createdLsn: lsn, updatedAt: new Date().toISOString() });
      const prepared = await prepare(store);
      expect(prepared.firstStart).toBe(false);
      expect(prepared.record.confirmedLsn).toBeGreaterThanOrEqual(lsn);
    } finally {
      await admin.end();
    }
  });

  it('does not take a peer creating the slot while it starts for a dropped slot', async () => {
    const { config, admin, key, prepare } = await slotSetupOn('capture_peercreate');
    try {
      // Both instances of a pair start on a new database: the peer creates the slot and records
      // it (create first, then the record) right after this one found no slot.
      class PeerCreatesAfterSlotRead extends MemorySlotRecordStore {
        private created = false;
        override async get(k: string): Promise<SlotRecord | undefined> {
          if (!this.created) {
            this.created = true;
            const made = await admin.query<{ lsn: string }>("SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')", [config.slot]);
            const lsn = parseLsn(made.rows[0]!.lsn);
            await this.put({ key, confirmedLsn: lsn, createdLsn: lsn, updatedAt: new Date().toISOString() });
          }
          return super.get(k);
        }
      }
      const prepared = await prepare(new PeerCreatesAfterSlotRead());
      expect(prepared.firstStart).toBe(false);
    } finally {
      await admin.end();
    }
  });
});

