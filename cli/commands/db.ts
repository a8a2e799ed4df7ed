// `taskflow db migrate | backfill | seed | workload`: the TaskFlow source database — apply
// migrations, backfill a column in batches, load the demo data, or generate realistic writes.
import { parseArgs } from 'node:util';
import { backfillDueAt } from '../../db/backfill.js';
import { migrate } from '../../db/migrate.js';
import { DEMO, seedDemo } from '../../db/seed.js';
import { runWorkload } from '../../db/workload.js';
import { TaskflowError } from '../../lib/errors.js';
import { readStackInfo } from '../../lib/stack-info.js';
import type { Command } from '../command.js';

const usage = `usage:
  taskflow db migrate  [--database-url URL]     apply db/migrations/*.sql that are not applied yet
  taskflow db backfill due-at [--database-url URL] [--batch 1000] [--pause 20ms]
                       fill tasks.due_at from due_date (migration 0006) in short batches, resumable;
                       run it before migration 0007 (docs/SCHEMA-CHANGES.md)
  taskflow db seed     [--database-url URL]     insert the demo workspaces, projects, users, tasks (idempotent)
  taskflow db workload [--database-url URL] [--rate 200|max] [--duration 30s] [--transactions N]
                       [--workspaces 4] [--projects 3] [--seed 1] [--concurrency 4] [--json]
                       realistic writes at a rate until the duration or transaction count is reached (Ctrl-C stops)
The database URL defaults to $DATABASE_URL, else the postgres URL in .taskflow/stack.json (written by \`taskflow dev\`).`;

/** "30s", "2m", "500ms", "1h" or plain milliseconds → milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new TaskflowError('BAD_ARGUMENT', `not a duration: "${text}" (use e.g. 500ms, 30s, 2m)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 'ms']!;
  return Math.round(Number(m[1]) * unit);
}

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new TaskflowError('BAD_ARGUMENT', `--${name} must be a positive integer, got "${text}"`);
  return Number(text);
}

export function resolveDatabaseUrl(flag: string | undefined, env: NodeJS.ProcessEnv, readStack: () => { postgres: { url: string } } = readStackInfo): string {
  if (flag) return flag;
  if (env.DATABASE_URL) return env.DATABASE_URL;
  try {
    return readStack().postgres.url;
  } catch (err) {
    throw new TaskflowError('NO_DATABASE_URL', 'no database: pass --database-url, set DATABASE_URL, or start the local stack (npm start) so .taskflow/stack.json exists', { cause: err });
  }
}

const urlOption = { 'database-url': { type: 'string' } } as const;

async function runMigrate(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: urlOption });
  const applied = await migrate(resolveDatabaseUrl(values['database-url'], process.env));
  console.log(applied.length ? `applied ${applied.join(', ')}` : 'database is up to date');
  return 0;
}

async function runBackfill(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...urlOption, batch: { type: 'string' }, pause: { type: 'string', default: '20ms' } },
  });
  if (positionals.length !== 1 || positionals[0] !== 'due-at') {
    console.error(usage);
    return 2;
  }
  const started = Date.now();
  const result = await backfillDueAt(resolveDatabaseUrl(values['database-url'], process.env), {
    batchSize: positiveInt('batch', values.batch, 1000),
    pauseMs: parseDuration(values.pause),
    onBatch: (p) => {
      if (p.batches % 50 === 0) console.log(`  ${p.batches} batches, ${p.updated} tasks updated, at id ${p.lastId}`);
    },
  });
  console.log(`backfill due-at: ${result.updated} tasks updated in ${result.batches} batches, ${((Date.now() - started) / 1000).toFixed(1)} s; index tasks_by_assignee_due ready`);
  return 0;
}

async function runSeed(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: urlOption });
  const inserted = await seedDemo(resolveDatabaseUrl(values['database-url'], process.env));
  console.log(`demo seed: ${inserted} rows inserted; demo board workspace ${DEMO.workspaceId} project ${DEMO.projectId}`);
  return 0;
}

async function runWorkloadCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...urlOption,
      rate: { type: 'string', default: '200' },
      duration: { type: 'string' },
      transactions: { type: 'string' },
      workspaces: { type: 'string' },
      projects: { type: 'string' },
      seed: { type: 'string', default: '1' },
      concurrency: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const ratePerSec = values.rate === 'max' ? Infinity : Number(values.rate);
  if (!(ratePerSec > 0)) throw new TaskflowError('BAD_ARGUMENT', `--rate must be a positive number or "max", got "${values.rate}"`);
  const transactions = values.transactions === undefined ? undefined : positiveInt('transactions', values.transactions, 1);
  const durationMs = values.duration === undefined ? (transactions === undefined ? 30_000 : undefined) : parseDuration(values.duration);
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  try {
    const stats = await runWorkload({
      databaseUrl: resolveDatabaseUrl(values['database-url'], process.env),
      ratePerSec,
      ...(transactions !== undefined ? { transactions } : {}),
      ...(durationMs !== undefined ? { durationMs } : {}),
      workspaces: positiveInt('workspaces', values.workspaces, 4),
      projectsPerWorkspace: positiveInt('projects', values.projects, 3),
      seed: values.seed,
      concurrency: positiveInt('concurrency', values.concurrency, 4),
      signal: controller.signal,
    });
    if (values.json) {
      console.log(JSON.stringify({ ...stats, tenants: undefined }, null, 2));
    } else {
      const l = stats.commitLatencyMs;
      console.log(`${stats.committedTransactions} transactions (${stats.rowChanges} row changes) in ${(stats.elapsedMs / 1000).toFixed(1)} s = ${stats.achievedTxPerSec} tx/s`);
      console.log(`commit latency ms: p50 ${l.p50}  p95 ${l.p95}  p99 ${l.p99}  max ${l.max}`);
      for (const [table, ops] of Object.entries(stats.changesByTable)) console.log(`  ${table.padEnd(12)} +${ops.insert} ~${ops.update} -${ops.delete}`);
      if (Number.isFinite(ratePerSec) && stats.achievedTxPerSec < 0.9 * ratePerSec) {
        console.log(`warning: ${stats.achievedTxPerSec} tx/s is below the requested ${ratePerSec}: the database (commit latency) limits it; try more --concurrency`);
      }
    }
    return 0;
  } finally {
    process.off('SIGINT', stop);
  }
}

export const command: Command = {
  summary: 'source database: apply migrations (migrate), backfill a column (backfill), load demo data (seed), generate writes (workload)',
  subcommands: ['migrate', 'backfill', 'seed', 'workload'],
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === '--help' || sub === 'help' || rest.includes('--help')) {
      console.log(usage);
      return 0;
    }
    if (sub === 'migrate') return runMigrate(rest);
    if (sub === 'backfill') return runBackfill(rest);
    if (sub === 'seed') return runSeed(rest);
    if (sub === 'workload') return runWorkloadCommand(rest);
    console.error(usage);
    return 2;
  },
};
