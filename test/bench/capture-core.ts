// `npm run bench:capture-core` → test/bench/results/capture-core.json. Capture's CPU per event
// without a database or Kinesis in the way, so changes to the hot path can be compared in seconds
// (bench:capture's drain shares one core with kinesalite and moves ±20% between runs).
//
// Real pgoutput bytes: a throw-away Postgres 17 records one-row INSERT transactions into tasks over
// 8 workspaces (the drain's workload) and a mixed one (updates, comments, several rows per
// transaction); pg_logical_slot_peek_binary_changes hands back the messages a replication session
// would carry. Each run parses them with pg-logical-replication's pgoutput parser, decodes them
// with the ChangeDecoder and queues every event on a KinesisProducer (aggregation on, zstd unless
// BENCH_CAPTURE_COMPRESSION says otherwise) whose
// PutRecords answers at once — the path a drain takes through capture, minus the sockets.
// Each workload runs alternately without and with personal-field encryption
// (CAPTURE_ENCRYPT_PERSONAL_FIELDS: capture's OrderedEncryptor and key cache in front of the
// producer, keys in memory: the DynamoDB read, once per author per cache TTL, is left out).
import { loadavg } from 'node:os';
import pg from 'pg';
import { PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { KINESIS_LIMITS } from '../../capture/batcher.js';
import { ChangeDecoder } from '../../capture/decoder.js';
import { OrderedEncryptor, SubjectKeyCache } from '../../capture/personal-fields.js';
import { KinesisProducer } from '../../capture/producer.js';
import { useCaptureColumnParsers } from '../../capture/values.js';
import { setupWorkloadTenants } from '../../db/workload.js';
import { silentLogger } from '../../lib/logger.js';
import { LocalKeyWrapper, MemoryKeyTable, WrappedSubjectKeyStore } from '../../lib/subject-keys.js';
import { randomBytes } from 'node:crypto';
import type { Compression } from '@taskflow/stream/codec';
import { median, writeBenchResult } from './report.js';
import { withThrowawayPostgres } from '../support/throwaway-postgres.js';

const TRANSACTIONS = Number(process.env.BENCH_TRANSACTIONS ?? 20_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const COMPRESSION = (process.env.BENCH_CAPTURE_COMPRESSION ?? 'zstd') as Compression;
const PUBLICATION = 'bench_core';

/** Writes the workloads and returns each one's pgoutput messages, as a replication session receives them. */
async function recordWorkloads(): Promise<Record<'insert' | 'mixed', Buffer[]>> {
  return withThrowawayPostgres('bench-capture-core', async (url) => {
    const tenants = await setupWorkloadTenants(url, { workspaces: 8, projectsPerWorkspace: 2, seed: 'bench-capture-core', tasksPerProject: 1 });
    const db = new pg.Client(url);
    await db.connect();
    await db.query(`CREATE PUBLICATION ${PUBLICATION} FOR TABLE projects, memberships, tasks, comments`);
    const record = async (name: string, sql: string): Promise<Buffer[]> => {
      await db.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [name]);
      await db.query(sql);
      const r = await db.query<{ data: Buffer }>("SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)", [name, PUBLICATION]);
      return r.rows.map((row) => row.data);
    };
    const ws = tenants.workspaces.map((w) => `('${w.id}'::uuid, '${w.projects[0]}'::uuid, '${w.projects[1]}'::uuid)`).join(', ');
    // One transaction per loop turn (COMMIT inside DO), spread round robin over the workspaces.
    const loop = (body: string) => `DO $$ DECLARE w record; t uuid; BEGIN
      FOR i IN 1..${TRANSACTIONS} LOOP
        SELECT * INTO w FROM (VALUES ${ws}) AS v(ws, p1, p2) OFFSET i % 8 LIMIT 1;
        ${body}
        COMMIT;
      END LOOP; END $$`;
    const insert = await record('bench_core_insert', loop("INSERT INTO tasks (id, workspace_id, project_id, title) VALUES (gen_random_uuid(), w.ws, w.p1, 'bench');"));
    const mixed = await record(
      'bench_core_mixed',
      loop(`t := gen_random_uuid();
        INSERT INTO tasks (id, workspace_id, project_id, title, description, created_by) SELECT t, w.ws, w.p2, 'mixed ' || i, repeat('d', i % 300), m.user_id FROM memberships m WHERE m.workspace_id = w.ws LIMIT 1;
        UPDATE tasks SET status = 'in_progress', title = 'mixed ' || i || ' (started)' WHERE id = t;
        INSERT INTO comments (id, workspace_id, project_id, task_id, author_id, body) SELECT gen_random_uuid(), w.ws, w.p2, t, m.user_id, 'comment ' || i FROM memberships m WHERE m.workspace_id = w.ws LIMIT 1;
        IF i % 4 = 0 THEN DELETE FROM tasks WHERE id = t; END IF;`),
    );
    await db.end();
    return { insert, mixed };
  });
}

interface RunResult {
  events: number;
  cpuMicros: number;
  wallMs: number;
}

/** One pass over the recorded messages through capture's hot path; `encrypt` puts the personal-field encryptor in front of the producer. */
async function run(messages: readonly Buffer[], encrypt: boolean): Promise<RunResult> {
  const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [PUBLICATION], messages: true });
  const decoder = new ChangeDecoder({ source: '//taskflow/capture/bench', db: 'taskflow' });
  const producer = new KinesisProducer(async (records) => records.map(() => ({ ok: true })), {
    batcher: { aggregate: true, compression: COMPRESSION, limits: KINESIS_LIMITS, backoff: { baseMs: 50, maxMs: 5000 } },
    maxInFlightBatches: 4,
    logger: silentLogger,
  });
  const keys = new SubjectKeyCache(new WrappedSubjectKeyStore(new MemoryKeyTable(), new LocalKeyWrapper(randomBytes(32))), { ttlMs: 30_000, maxEntries: 10_000 });
  const encryptor = encrypt ? new OrderedEncryptor(keys, { signal: new AbortController().signal, backoff: { baseMs: 50, maxMs: 5000 }, logger: silentLogger, random: Math.random }) : undefined;
  let events = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (const bytes of messages) {
    const msg = plugin.parse(bytes) as Pgoutput.Message;
    useCaptureColumnParsers(msg);
    const out = decoder.handle(msg);
    if (out?.kind !== 'transaction') continue;
    for (const ev of out.tx.events) {
      events += 1;
      const put = (envelope: typeof ev.envelope) => producer.send({ partitionKey: ev.partitionKey, data: Buffer.from(JSON.stringify(envelope)), onAck: () => undefined });
      if (encryptor) encryptor.submit(ev.envelope, put);
      else put(ev.envelope);
    }
    // Let answered requests settle now and then, as the socket's reads would.
    if (events % 512 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await encryptor?.idle();
  await producer.drained();
  const used = process.cpuUsage(cpu);
  return { events, cpuMicros: used.user + used.system, wallMs: performance.now() - started };
}

async function main(): Promise<void> {
  console.log(`bench:capture-core: recording ${TRANSACTIONS} transactions of each workload`);
  const workloads = await recordWorkloads();
  const metrics: Record<string, number> = {};
  const params: Record<string, unknown> = { transactions: TRANSACTIONS, runs: RUNS, put: 'answers at once', aggregation: true, compression: COMPRESSION };
  params.load_avg_1m_at_start = Math.round(loadavg()[0]! * 10) / 10;
  for (const [name, messages] of Object.entries(workloads)) {
    await run(messages, false); // warm-up: JIT and the parser's caches
    await run(messages, true);
    const plain: RunResult[] = [];
    const encrypted: RunResult[] = [];
    // Alternating, so that the shared machine's load drifts over both alike.
    for (let i = 0; i < RUNS; i++) {
      plain.push(await run(messages, false));
      encrypted.push(await run(messages, true));
    }
    params[`${name}_events`] = plain[0]!.events;
    params[`${name}_pgoutput_messages`] = messages.length;
    for (const [suffix, results] of [['', plain], ['_encrypted', encrypted]] as const) {
      metrics[`${name}${suffix}_cpu_us_per_event`] = Math.round(median(results.map((r) => r.cpuMicros / r.events)) * 100) / 100;
      metrics[`${name}${suffix}_events_per_s`] = Math.round(median(results.map((r) => (r.events / r.wallMs) * 1000)));
    }
    metrics[`${name}_encrypted_cpu_ratio`] = Math.round((metrics[`${name}_encrypted_cpu_us_per_event`]! / metrics[`${name}_cpu_us_per_event`]!) * 1000) / 1000;
    metrics[`${name}_encrypted_rate_ratio`] = Math.round((metrics[`${name}_encrypted_events_per_s`]! / metrics[`${name}_events_per_s`]!) * 1000) / 1000;
    console.log(`${name}: ${plain[0]!.events} events, ${metrics[`${name}_cpu_us_per_event`]} µs CPU/event plain, ${metrics[`${name}_encrypted_cpu_us_per_event`]} encrypted (x${metrics[`${name}_encrypted_cpu_ratio`]}); ${metrics[`${name}_events_per_s`]} vs ${metrics[`${name}_encrypted_events_per_s`]} events/s (medians of ${RUNS}, alternating)`);
  }
  params.load_avg_1m_at_end = Math.round(loadavg()[0]! * 10) / 10;
  console.log(`wrote ${writeBenchResult('capture-core', params, metrics)}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
