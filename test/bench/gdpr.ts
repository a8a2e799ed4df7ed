// bench:gdpr — one erasure request for a subject with BENCH_SUBJECT_CHANGES changes (default
// 10,000) spread over every sink the processor purges, while other users keep writing
// (test/bench/README.md "gdpr"). The subject's rows are in the source database; their changes
// (creates and edits of the tasks and comments they wrote) are in the router's changelog, the
// search index, the warehouse (archive objects the loader process loads), their inbox, the
// dead-letter table and the audit trail's identity mapping, each written through its owner's own
// store. Then `taskflow gdpr request` records the request, the processor process (`taskflow
// gdpr`) drives it to complete, and every sink is scanned again for the subject's identifiers
// (the launcher's sinks, with the identifiers the bench knows: id, email, name, every authored
// text). Meanwhile another user writes to the same stores at BENCH_LOAD_PER_SEC changes/s.
// Capture's drain rate with encryption on vs off is bench:capture-core's figure, not re-measured.
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import pg from 'pg';
import { decodeEvent, type StreamEvent } from '@taskflow/stream/events';
import { identityKey } from '../../audit/identities.js';
import { Pseudonymizer } from '../../audit/record.js';
import { FileAuditStore } from '../../audit/store.js';
import { command, openSinks } from '../../cli/commands/gdpr.js';
import type { ErasureRequest } from '../../gdpr/processor.js';
import { DynamoRequestStore } from '../../gdpr/request-store.js';
import { DynamoDeadLetterStore } from '../../lib/dlq.js';
import type { SubjectIdentifiers } from '../../lib/erasure.js';
import { DynamoInbox } from '../../notifications/inbox.js';
import { DynamoChangelogStore } from '../../router/dynamo-changelog.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { validateEvent } from '../../schemas/validate.js';
import { indexBatchOf } from '../../search/indexer.js';
import { SqliteSearchIndex } from '../../search/sqlite-index.js';
import startStackProcess from '../setup/global-setup.mjs';
import stopStackProcess from '../setup/global-teardown.mjs';
import { startServiceProcess, type ServiceProcess } from '../support/service-process.js';
import { startErasureLoader, gdprTestEnv } from '../support/gdpr.js';
import { dynamoClient, stack } from '../support/stack.js';
import { waitFor } from '../support/wait.js';
import { benchParam, cpuSeconds, cpuSecondsWithReaped, cpuUsPerChange, RESULTS_DIR, selfCpuSeconds, writeBenchResult } from './report.js';

const PARAMS = { subjectChanges: benchParam('BENCH_SUBJECT_CHANGES', 10_000), loadPerSec: benchParam('BENCH_LOAD_PER_SEC', 20), editsPerRow: 5 };
const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
const AUDIT_KEY = 'bench-gdpr-audit-key-0123456789abcdef0123';
const JWT_SECRET = 'bench-gdpr-jwt-secret-0123456789abcdef0123';

function streamEvent(envelope: unknown): StreamEvent {
  const d = decodeEvent(Buffer.from(JSON.stringify(envelope)), validateEvent);
  if (!d.ok) throw new Error(d.message);
  return d.event;
}

async function main(): Promise<void> {
  const loadAtStart = loadavg()[0]!;
  await startStackProcess();
  const dir = mkdtempSync(join(tmpdir(), 'bench-gdpr-'));
  const dynamo = dynamoClient();
  const services: ServiceProcess[] = [];
  try {
    const { url, env } = await gdprTestEnv('bench-gdpr', dir, { auditKey: AUDIT_KEY, jwtSecret: JWT_SECRET });
    const archiveDir = join(dir, 's3', 'archive', 'raw', '2026', '11', '26', '12');
    mkdirSync(archiveDir, { recursive: true });
    let objects = 0;
    const archive = (events: readonly object[]) => {
      objects += 1;
      const n = String(objects).padStart(8, '0');
      writeFileSync(join(archiveDir, `archive-1-2026-11-26-12-00-00-${n}-aaaa-bbbb-cccc-dddddddddddd.gz`), gzipSync(events.map((e) => `${JSON.stringify(e)}\n`).join('')));
    };
    const loader = await startErasureLoader(env, dir, 100);
    services.push(loader);
    Object.assign(process.env, env);

    // ---- the subject and their data, in every sink ------------------------------------------
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    const [ws, subject, other] = [randomUUID(), randomUUID(), randomUUID()];
    const projects = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const email = `s${subject.slice(0, 8)}@example.com`;
    const rows = Math.ceil(PARAMS.subjectChanges / PARAMS.editsPerRow / 2);
    await db.query('INSERT INTO workspaces (id, name, slug) VALUES ($1, $2, $3)', [ws, 'W', `w-${ws}`]);
    await db.query('INSERT INTO users (id, email, display_name) VALUES ($1, $2, $3), ($4, $5, $6)', [subject, email, 'Subject Person', other, `o${other.slice(0, 8)}@example.com`, 'Other Person']);
    for (const p of projects) await db.query('INSERT INTO projects (id, workspace_id, name, created_by) VALUES ($1, $2, $3, $4)', [p, ws, 'P', other]);
    const tasks = Array.from({ length: rows }, (_, i) => ({ id: randomUUID(), project: projects[i % projects.length]!, text: `plan ${i} ${randomUUID()}` }));
    const comments = Array.from({ length: rows }, (_, i) => ({ id: randomUUID(), task: tasks[i]!, text: `remark ${i} ${randomUUID()}` }));
    await db.query(`INSERT INTO tasks (id, workspace_id, project_id, title, description, created_by) SELECT t.id, $1, t.p, 'T', t.d, $2 FROM unnest($3::uuid[], $4::uuid[], $5::text[]) AS t(id, p, d)`, [ws, subject, tasks.map((t) => t.id), tasks.map((t) => t.project), tasks.map((t) => t.text)]);
    await db.query(`INSERT INTO comments (id, workspace_id, project_id, task_id, author_id, body) SELECT c.id, $1, c.p, c.t, $2, c.b FROM unnest($3::uuid[], $4::uuid[], $5::uuid[], $6::text[]) AS c(id, p, t, b)`, [ws, subject, comments.map((c) => c.id), comments.map((c) => c.task.project), comments.map((c) => c.task.id), comments.map((c) => c.text)]);
    let lsn = 0x1000n;
    const subjectEvents = [
      ...tasks.flatMap((t) => Array.from({ length: PARAMS.editsPerRow }, (_, k) => sampleEvent(k === 0 ? 'task.created' : 'task.updated', { workspaceId: ws, projectId: t.project, entityId: t.id, userId: subject, commitLsn: (lsn += 1n), row: { title: `T v${k}`, description: t.text } }))),
      ...comments.flatMap((c) => Array.from({ length: PARAMS.editsPerRow }, (_, k) => sampleEvent(k === 0 ? 'comment.created' : 'comment.updated', { workspaceId: ws, projectId: c.task.project, entityId: c.id, userId: subject, commitLsn: (lsn += 1n), row: { task_id: c.task.id, body: c.text } }))),
    ];
    const seedStarted = performance.now();
    const changelog = new DynamoChangelogStore(dynamo, { table: env.DYNAMODB_TABLE_CHANGELOG! });
    const heads = new Map(projects.map((p) => [p, { seq: 0, lastId: null as string | null }]));
    const appendChangelog = async (events: readonly (typeof subjectEvents)[number][]) => {
      for (const p of projects) {
        const mine = events.filter((e) => e.projectid === p);
        for (let i = 0; i < mine.length; i += 100) {
          const head = heads.get(p)!;
          const entries = mine.slice(i, i + 100).map((event, j) => ({ seq: head.seq + j + 1, event }));
          const next = { seq: head.seq + entries.length, lastId: entries.at(-1)!.event.id };
          await changelog.append({ workspaceId: ws, projectId: p }, entries, head, next);
          heads.set(p, next);
        }
      }
    };
    await appendChangelog(subjectEvents);
    const search = new SqliteSearchIndex(env.SEARCH_DB_PATH!);
    await search.apply(indexBatchOf(subjectEvents.map(streamEvent)));
    for (let i = 0; i < subjectEvents.length; i += 1000) archive(subjectEvents.slice(i, i + 1000));
    const inbox = new DynamoInbox(dynamo, env.DYNAMODB_TABLE_NOTIFICATIONS!);
    const notified = subjectEvents.filter((_, i) => i % 10 === 0);
    for (let i = 0; i < notified.length; i += 25) {
      await inbox.add(notified.slice(i, i + 25).map((e) => ({ id: e.id, userId: subject, kind: 'assigned' as const, workspaceId: ws, projectId: String(e.projectid), taskId: tasks[0]!.id, time: e.time, text: 'T' })));
    }
    const dlq = new DynamoDeadLetterStore(dynamo, env.DYNAMODB_TABLE_DLQ!);
    for (const e of subjectEvents.filter((_, i) => i % 100 === 0)) await dlq.put({ source: 'search', reason: 'schema_violation', message: 'bench', payload: Buffer.from(JSON.stringify(e)), origin: { shardId: 's', sequenceNumber: e.id } });
    const audit = new FileAuditStore(env.AUDIT_STORE_DIR!);
    await audit.put(identityKey(new Pseudonymizer(new TextEncoder().encode(AUDIT_KEY)).actor(subject)), Buffer.from(JSON.stringify({ userId: subject })));
    const ids: SubjectIdentifiers = { subject, email, displayName: 'Subject Person', authored: [...tasks.map((t) => ({ table: 'tasks' as const, id: t.id, text: t.text })), ...comments.map((c) => ({ table: 'comments' as const, id: c.id, text: c.text }))] };
    const { sinks, close } = await openSinks(env);
    await waitFor(async () => (await sinks.find((s) => s.sink === 'warehouse-raw')!.scan(ids)).found >= subjectEvents.length, 'the warehouse to load the subject\'s events', 300_000, 500);
    const seedSeconds = (performance.now() - seedStarted) / 1000;
    console.log(`bench:gdpr: seeded ${subjectEvents.length} changes of the subject in ${round(seedSeconds)} s`);

    // ---- ongoing load by another user, then the request --------------------------------------
    let loadChanges = 0;
    let loading = true;
    const load = (async () => {
      let pending: object[] = [];
      let lastArchive = Date.now();
      while (loading) {
        const id = randomUUID();
        const project = projects[loadChanges % projects.length]!;
        await db.query('INSERT INTO tasks (id, workspace_id, project_id, title, description, created_by) VALUES ($1, $2, $3, $4, $5, $6)', [id, ws, project, 'load', `other's work ${loadChanges}`, other]);
        const e = sampleEvent('task.created', { workspaceId: ws, projectId: project, entityId: id, userId: other, commitLsn: (lsn += 1n), row: { title: 'load', description: `other's work ${loadChanges}` } });
        await Promise.all([search.apply(indexBatchOf([streamEvent(e)])), appendChangelog([e]), inbox.add([{ id: e.id, userId: other, kind: 'assigned', workspaceId: ws, projectId: project, taskId: id, time: e.time, text: 'load' }])]);
        pending.push(e);
        if (Date.now() - lastArchive >= 1000) {
          archive(pending);
          pending = [];
          lastArchive = Date.now();
        }
        loadChanges += 1;
        await new Promise((r) => setTimeout(r, 1000 / PARAMS.loadPerSec));
      }
      if (pending.length) archive(pending);
    })();

    const gdprCli = async (...argv: string[]) => {
      const log = console.log;
      const out: string[] = [];
      console.log = (...a: unknown[]) => void out.push(a.join(' '));
      try {
        return { code: await command.run(argv), out: out.join('\n') };
      } finally {
        console.log = log;
      }
    };
    const gdpr = await startServiceProcess('gdpr', env, ['gdpr processor started']);
    services.push(gdpr);
    const cpuBefore = { gdpr: cpuSeconds(gdpr.child.pid!), loader: cpuSeconds(loader.child.pid!), stack: cpuSecondsWithReaped(stack().pid), bench: selfCpuSeconds() };
    const loadBefore = loadChanges;
    const requested = await gdprCli('request', '--user', subject, '--ticket', 'BENCH-1', '--json');
    const request = (JSON.parse(requested.out) as { request: ErasureRequest }).request;
    const store = new DynamoRequestStore(dynamo, env.DYNAMODB_TABLE_GDPR_REQUESTS!);
    const done = await waitFor(async () => {
      const r = await store.get(request.requestId);
      return r?.step === 'complete' && r;
    }, 'the request to complete', 1_200_000, 250);
    const cpu = {
      gdpr: round(cpuSeconds(gdpr.child.pid!) - cpuBefore.gdpr),
      loader: round(cpuSeconds(loader.child.pid!) - cpuBefore.loader),
      stack: round(cpuSecondsWithReaped(stack().pid) - cpuBefore.stack),
      bench_load_and_cli: round(selfCpuSeconds() - cpuBefore.bench),
    };
    const loadDuring = loadChanges - loadBefore;
    const loadAverage = loadavg()[0]!;
    loading = false;
    await load;

    // ---- scan every sink for what the bench knows identifies the subject ---------------------
    const scans = await Promise.all(sinks.map(async (s) => ({ sink: s.sink, ...(await s.scan(ids)) })));
    const residual = scans.reduce((a, s) => a + s.found, 0);
    await close();
    await search.close();
    await db.end();
    const perSink = Object.fromEntries(Object.entries(done.sinks).map(([sink, p]) => [sink, { changed: p.changed, scanned: p.scanned ?? 0 }]));
    const requestToComplete = (Date.parse(done.completedAt!) - Date.parse(done.requestedAt)) / 1000;
    const captureCore = JSON.parse(readFileSync(join(RESULTS_DIR, 'capture-core.json'), 'utf8')) as { date: string; metrics: Record<string, number> };
    const metrics = {
      request_to_complete_s: round(requestToComplete),
      sinks_checked: scans.length,
      residual_identifiers: residual,
      subject_changes: subjectEvents.length,
      subject_authored_rows: ids.authored.length,
      load_changes_during_erasure: loadDuring,
      seed_s: round(seedSeconds),
      ...Object.fromEntries(Object.entries(cpu).map(([k, v]) => [`cpu_s_${k}`, v])),
      cpu_us_per_change: cpuUsPerChange(cpu.gdpr + cpu.loader, subjectEvents.length),
      cpu_us_per_change_with_stack: cpuUsPerChange(cpu.gdpr + cpu.loader + cpu.stack, subjectEvents.length),
      capture_drain_rate_ratio_encrypted: captureCore.metrics.insert_encrypted_rate_ratio ?? null,
      capture_mixed_rate_ratio_encrypted: captureCore.metrics.mixed_encrypted_rate_ratio ?? null,
      load_average_during: round(loadAverage),
    };
    const path = writeBenchResult('gdpr', {
      ...PARAMS,
      load_average_at_start: round(loadAtStart),
      host: 'shared with other sessions running tests: figures include their load',
      per_sink: perSink,
      scans,
      cpu_note: 'cpu_s_stack = Postgres, dynalite, kinesalite (one process tree); cpu_us_per_change counts the gdpr processor + the loader (the warehouse purge runs there) per subject change erased',
      capture_drain_note: `capture_*_rate_ratio_encrypted: events/s with CAPTURE_ENCRYPT_PERSONAL_FIELDS on ÷ off, from bench:capture-core (${captureCore.date}); not re-measured by this bench`,
    }, metrics);
    console.log(`bench:gdpr: ${JSON.stringify(metrics)}\n${JSON.stringify(scans)}\nwritten to ${path}`);
  } finally {
    for (const s of services.reverse()) await s.stop().catch(() => {});
    dynamo.destroy();
    rmSync(dir, { recursive: true, force: true });
    await stopStackProcess();
  }
}

await main();
