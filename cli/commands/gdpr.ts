// `taskflow gdpr`: the erasure processor service, and the tools compliance uses (issue 13).
//   taskflow gdpr                                           run the processor (long-running)
//   taskflow gdpr request --user <id|email> --ticket REF [--reason R] [--by WHO] [--json]
//   taskflow gdpr status <request id | user id> [--json]
//   taskflow gdpr list [--overdue] [--json]
//   taskflow gdpr verify <request id | user id> [--json]
//   taskflow gdpr proof <request id | user id> --out FILE [--json]
// The launcher of the processor: it opens every <service>/erasure-sink.ts module's sinks on the
// services' own stores (lib/erasure.ts ErasureSinkModule) and hands them to gdpr/service.ts.
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { DEV_AUDIT_KEY_FILE, loadAuditKey, loadAuditStoreConfig } from '../../audit/config.js';
import { openAuditStore } from '../../audit/open-store.js';
import { GDPR_SETTING_LIST, loadConfig } from '../../gdpr/config.js';
import { oldestOpenAgeSeconds } from '../../gdpr/metrics.js';
import { PROCESSOR_SINKS, SINKS } from '../../gdpr/policy.js';
import { newRequest, type ErasureRequest } from '../../gdpr/processor.js';
import { buildProof, signProof } from '../../gdpr/proof.js';
import { DynamoRequestStore } from '../../gdpr/request-store.js';
import { startGdpr } from '../../gdpr/service.js';
import { captureIdentifiers, recordOnStream, resolveSubject } from '../../gdpr/subjects.js';
import { createDynamoClient, createKmsClient, loadAwsConfig } from '../../lib/aws.js';
import { type Env, settingsHelp } from '../../lib/config.js';
import { DEVELOPMENT, ENV_VAR } from '../../lib/dev-mode.js';
import type { ErasureSink, ErasureSinkModule } from '../../lib/erasure.js';
import { TaskflowError } from '../../lib/errors.js';
import { createLogger } from '../../lib/logger.js';
import { createSubjectKeyStore, DEV_KEK_FILE } from '../../lib/subject-keys.js';
import type { Command } from '../command.js';
import { runUntilSignalled } from '../long-running.js';
import { operatorEnvironment } from '../operator-env.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const usage = `usage:
  taskflow gdpr                                            run the erasure processor
  taskflow gdpr request --user <id|email> --ticket REF [--reason R] [--by WHO] [--json]
                        record an erasure request (72 h deadline); one per person: a repeat shows the first
  taskflow gdpr status <request id | user id> [--json]    per sink: pending / purged / verified, with counts
  taskflow gdpr list [--overdue] [--json]                 every request (--overdue: open past its deadline)
  taskflow gdpr verify <request id | user id> [--json]    scan every sink for the person's identifiers now; exit 1 if any is found
  taskflow gdpr proof <request id | user id> --out FILE   the signed proof of a complete request, also kept in the audit store
Settings (environment; see gdpr/README.md):
${settingsHelp(GDPR_SETTING_LIST)}
The tools find Postgres and DynamoDB through the same variables or, when unset, the running local stack (.taskflow/stack.json).
The proof is signed with the audit key (AUDIT_KEY or AUDIT_KEY_FILE, audit/README.md).`;

const SUBCOMMANDS = ['request', 'status', 'list', 'verify', 'proof'] as const;

function environment(): Env {
  // Local stack: the dev audit key signs the proof, and the subject keys use the local KEK.
  // The sinks' stores too: the search index file under the stack's data dir (as taskflow dev gives it to search),
  // and the loader's erasure endpoint (the warehouse is the loader's).
  return operatorEnvironment({
    localDefaults: (info) => ({
      AUDIT_KEY_FILE: join(ROOT, DEV_AUDIT_KEY_FILE),
      SUBJECT_KEYS_LOCAL_KEK_FILE: join(ROOT, DEV_KEK_FILE),
      SEARCH_DB_PATH: join(info.dataDir, 'search', 'search.db'),
      ...(info.http['warehouse-erasure'] ? { WAREHOUSE_ERASURE_URL: info.http['warehouse-erasure'] } : {}),
      [ENV_VAR]: DEVELOPMENT,
    }),
  });
}

/** Every <service>/erasure-sink.ts, opened on its service's stores; every sink the policy gives the processor must be among them. */
export async function openSinks(env: Env): Promise<{ sinks: ErasureSink[]; close(): Promise<void> }> {
  const opened: { sinks: ErasureSink[]; close(): Promise<void> }[] = [];
  for (const d of readdirSync(ROOT, { withFileTypes: true })) {
    const file = join(ROOT, d.name, 'erasure-sink.ts');
    if (!d.isDirectory() || !existsSync(file)) continue;
    const mod = (await import(file)) as Partial<ErasureSinkModule>;
    if (typeof mod.openErasureSinks !== 'function') throw new TaskflowError('GDPR_SINK_MODULE', `${d.name}/erasure-sink.ts exports no openErasureSinks(env) (lib/erasure.ts ErasureSinkModule)`);
    opened.push(await mod.openErasureSinks(env));
  }
  const sinks = opened.flatMap((o) => o.sinks);
  const order = new Map(PROCESSOR_SINKS.map((s, i) => [s, i]));
  const missing = PROCESSOR_SINKS.filter((s) => !sinks.some((k) => k.sink === s));
  if (missing.length) throw new TaskflowError('GDPR_SINK_MISSING', `the policy has the processor purge ${missing.join(', ')}, but no erasure-sink.ts opens it`);
  return {
    sinks: sinks.filter((s) => order.has(s.sink)).sort((a, b) => order.get(a.sink)! - order.get(b.sink)!),
    close: async () => void (await Promise.all(opened.map((o) => o.close()))),
  };
}

async function runService(): Promise<number> {
  const env = process.env;
  const config = loadConfig(env);
  const logger = createLogger('gdpr');
  const { sinks, close } = await openSinks(env);
  const gdpr = await startGdpr(config, logger, sinks);
  return runUntilSignalled(logger, 'stopping', async () => {
    await gdpr.stop();
    await close();
  });
}

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const hours = (ms: number) => `${(ms / 3_600_000).toFixed(1)} h`;
const isOverdue = (r: ErasureRequest, now: Date) => r.step !== 'complete' && Date.parse(r.deadline) < now.getTime();
/** What the CLI shows of a request: never the captured identifiers (personal data). */
const shown = (r: ErasureRequest) => {
  const { identifiers: _hidden, ...rest } = r;
  return rest;
};

async function findRequest(store: DynamoRequestStore, ref: string | undefined): Promise<ErasureRequest> {
  if (!ref) throw new TaskflowError('BAD_ARGUMENT', 'a request id (or the user id it erases) is required');
  const r = (await store.get(ref)) ?? (await store.forSubject(ref));
  if (!r) throw new TaskflowError('GDPR_UNKNOWN_REQUEST', `no erasure request ${ref} (neither a request id nor a user id with a request)`);
  return r;
}

function statusText(r: ErasureRequest, now: Date): string {
  const left = Date.parse(r.deadline) - now.getTime();
  const head = [
    `request   ${r.requestId}  (ticket ${r.ticket})`,
    `subject   users/${r.subject}`,
    `requested ${r.requestedAt} by ${r.requestedBy}${r.reason ? ` — ${r.reason}` : ''}`,
    `deadline  ${r.deadline}  (${r.step === 'complete' ? `completed ${r.completedAt}` : left < 0 ? `OVERDUE by ${hours(-left)}` : `${hours(left)} left`})`,
    `step      ${r.step}   policy ${r.policyVersion}`,
    `keys      ${r.keyDestruction ? `destroyed ${r.keyDestruction.destroyedAt} (${r.keyDestruction.kids.length} key(s), ${r.keyDestruction.store})` : 'not destroyed yet'}`,
  ];
  const rows = SINKS.map((p) => {
    const s = r.sinks[p.sink];
    if (p.reachedBy === 'none held') return [p.sink, 'none held', '-', '-', '-', 'written without identifiers (gdpr/POLICY.md)'];
    if (p.reachedBy === 'keys') return [p.sink, r.keyDestruction ? 'shredded' : 'pending', '-', '-', '-', 'key destruction'];
    if (!s) return [p.sink, 'not covered', '-', '-', '-', p.reachedBy === 'processor' ? 'added to the policy after this request' : 'no purge step yet (gdpr/POLICY.md)'];
    return [p.sink, s.state, String(s.changed), s.scanned === undefined ? '-' : String(s.scanned), s.found === undefined ? '-' : String(s.found), s.scannedAt ?? '-'];
  });
  return `${head.join('\n')}\n\n${table(['sink', 'state', 'purged', 'scanned', 'found', 'scanned at / by'], rows)}`;
}

async function request(values: Record<string, string | boolean | undefined>, env: Env, store: DynamoRequestStore): Promise<number> {
  const user = values.user as string | undefined;
  const ticket = values.ticket as string | undefined;
  if (!user) throw new TaskflowError('BAD_ARGUMENT', '--user <id|email> is required');
  if (!ticket) throw new TaskflowError('BAD_ARGUMENT', '--ticket REF is required (the compliance ticket the request answers)');
  const db = new pg.Client({ connectionString: loadConfig(env).databaseUrl });
  await db.connect();
  try {
    // A subject already erased is no longer in users: its request is found by its id first.
    let existing = await store.forSubject(user);
    const subject = existing?.subject ?? (await resolveSubject(db, user));
    existing ??= await store.forSubject(subject);
    const r =
      existing ??
      (await store.create(
        newRequest({
          requestId: randomUUID(),
          ids: await captureIdentifiers(db, subject),
          ticket,
          requestedBy: (values.by as string | undefined) ?? env.USER ?? userInfo().username,
          ...(values.reason ? { reason: values.reason as string } : {}),
          now: new Date(),
          sinks: PROCESSOR_SINKS,
        }),
      ));
    // Also for a repeat: a request whose first recording stopped before this reaches the stream now.
    await recordOnStream(db, r);
    const repeat = existing !== null;
    if (values.json) console.log(JSON.stringify({ repeat, request: shown(r) }, null, 2));
    else console.log(`${repeat ? `already requested: users/${r.subject} has request ${r.requestId} (ticket ${r.ticket}); nothing new recorded` : `recorded erasure request ${r.requestId} for users/${r.subject}`}\ndeadline ${r.deadline} (72 h)   step ${r.step}\nfollow it with: taskflow gdpr status ${r.requestId}`);
    return 0;
  } finally {
    await db.end();
  }
}

async function verify(r: ErasureRequest, env: Env, json: boolean): Promise<number> {
  const dynamo = createDynamoClient(loadConfig(env).aws);
  const { sinks, close } = await openSinks(env);
  try {
    // Once complete, the captured email, name and authored text are gone (they are personal data):
    // the processor's scans used them; this scan can look for the subject id only.
    const ids = r.identifiers ?? { subject: r.subject, email: null, displayName: null, authored: [] };
    const keys = createSubjectKeyStore(loadConfig(env).subjectKeys, dynamo, () => createKmsClient(loadConfig(env).aws));
    const keyDestroyed = await keys.isDestroyed(r.subject);
    const results = [];
    for (const s of sinks) {
      const at = new Date().toISOString();
      results.push({ sink: s.sink, ...(await s.scan(ids)), at });
    }
    const found = results.reduce((n, x) => n + x.found, 0);
    const lookedFor = r.identifiers ? `id, email, display name, ${ids.authored.length} authored text(s)` : 'the subject id (the other identifiers were dropped when the request completed)';
    const notCovered = SINKS.filter((p) => p.reachedBy === 'not yet').map((p) => p.sink);
    if (json) console.log(JSON.stringify({ requestId: r.requestId, subject: r.subject, lookedFor, keyDestroyed, found, sinks: results, notCovered }, null, 2));
    else {
      console.log(`verify ${r.requestId} (users/${r.subject}); looked for: ${lookedFor}`);
      console.log(table(['sink', 'scanned', 'found', 'at'], [...results.map((x) => [x.sink, String(x.scanned), String(x.found), x.at]), ['subject-keys', '1', keyDestroyed ? '0' : '1 (key not destroyed)', new Date().toISOString()]]));
      if (notCovered.length) console.log(`not covered by any purge step yet (gdpr/POLICY.md): ${notCovered.join(', ')}`);
      console.log(found === 0 && keyDestroyed ? `nothing found: ${results.length} sink(s) scanned, key destroyed` : `FOUND ${found} item(s)${keyDestroyed ? '' : '; the key is not destroyed'}`);
    }
    return found === 0 && keyDestroyed ? 0 : 1;
  } finally {
    await close();
    dynamo.destroy();
  }
}

async function proof(r: ErasureRequest, out: string | undefined, env: Env, json: boolean): Promise<number> {
  if (!out) throw new TaskflowError('BAD_ARGUMENT', '--out FILE is required');
  const signed = signProof(buildProof(r, new Date()), loadAuditKey(env));
  const body = `${JSON.stringify(signed, null, 2)}\n`;
  writeFileSync(out, body);
  // Kept write-once beside the trail's segments (Object Lock in production): the first proof of a
  // request stays; a later one is only in its file.
  const kept = await openAuditStore(loadAuditStoreConfig(env), loadAwsConfig(env)).create(`gdpr-proofs/${r.requestId}.json`, new TextEncoder().encode(body));
  if (json) console.log(JSON.stringify({ out, keptInAuditStore: kept, signature: signed.signature }, null, 2));
  else console.log(`wrote the proof of ${r.requestId} to ${out}, signed (HMAC-SHA256, audit key ${signed.signature!.keyId})${kept ? `; kept in the audit store as gdpr-proofs/${r.requestId}.json` : '; the audit store already keeps its first proof'}`);
  return 0;
}

export const command: Command = {
  summary: 'GDPR erasure: run the processor | request --user U --ticket T | status ID | list [--overdue] | verify ID | proof ID --out F',
  subcommands: SUBCOMMANDS,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === undefined) return runService();
    if (sub === '--help' || sub === 'help' || rest.includes('--help')) {
      console.log(usage);
      return 0;
    }
    if (!(SUBCOMMANDS as readonly string[]).includes(sub)) {
      console.error(usage);
      return 2;
    }
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: { user: { type: 'string' }, ticket: { type: 'string' }, reason: { type: 'string' }, by: { type: 'string' }, overdue: { type: 'boolean', default: false }, out: { type: 'string' }, json: { type: 'boolean', default: false } },
    });
    const env = environment();
    const dynamo = createDynamoClient(loadConfig(env).aws);
    const store = new DynamoRequestStore(dynamo, loadConfig(env).requestsTable);
    try {
      if (sub === 'request') return await request(values, env, store);
      if (sub === 'list') {
        const now = new Date();
        const all = (await store.all()).filter((r) => !values.overdue || isOverdue(r, now));
        if (values.json) console.log(JSON.stringify(all.map(shown), null, 2));
        else {
          const rows = all.map((r) => [r.requestId, r.subject, r.ticket, r.step, r.requestedAt, r.deadline, r.step === 'complete' ? 'complete' : isOverdue(r, now) ? 'OVERDUE' : `${hours(Date.parse(r.deadline) - now.getTime())} left`]);
          console.log(all.length === 0 ? `no ${values.overdue ? 'overdue ' : ''}erasure requests` : table(['request', 'user', 'ticket', 'step', 'requested', 'deadline', 'due'], rows));
          const open = all.filter((r) => r.step !== 'complete');
          if (all.length) console.log(`${all.length} request(s), ${open.length} open${open.length ? `, oldest open ${hours(oldestOpenAgeSeconds(open, now) * 1000)} old` : ''}`);
        }
        return 0;
      }
      const r = await findRequest(store, positionals[0]);
      if (sub === 'status') {
        console.log(values.json ? JSON.stringify(shown(r), null, 2) : statusText(r, new Date()));
        return 0;
      }
      if (sub === 'verify') return await verify(r, env, values.json);
      return await proof(r, values.out, env, values.json);
    } finally {
      dynamo.destroy();
    }
  },
};
