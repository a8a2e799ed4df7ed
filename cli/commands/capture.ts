// `taskflow capture`: the CDC service (Postgres logical replication -> Kinesis), long-running.
import { parseArgs } from 'node:util';
import pg from 'pg';
import { CAPTURE_SETTING_LIST, loadConfig } from '../../capture/config.js';
import { snapshotJobStore, startCapture } from '../../capture/main.js';
import { CAPTURED_TABLES } from '../../capture/slot-setup.js';
import { isConsumerName, SIGNAL_PREFIX, type Signal, type SnapshotJob } from '../../capture/snapshot.js';
import { createDynamoClient } from '../../lib/aws.js';
import { settingsHelp } from '../../lib/config.js';
import { TaskflowError } from '../../lib/errors.js';
import { createLogger } from '../../lib/logger.js';
import type { Command } from '../command.js';
import { stopOnSignal } from '../long-running.js';

const usage = `usage:
  taskflow capture        stream every committed change of tasks, comments, memberships and projects to Kinesis
  taskflow capture snapshot [--table tasks ...] [--workspace W] [--for CONSUMER] [--stop]
                          re-snapshot tables (default: all four) or one workspace while capture streams
                          (watermarks, no locks); shows progress; Ctrl-C or --stop stops it, running it
                          again resumes. --for NAME aims it at one consumer (its *_CONSUMER_NAME, e.g.
                          search): every other reader skips its events (no publish to browsers, no
                          changelog, no notification, no audit record, not archived)
Settings (environment; see capture/README.md):
${settingsHelp(CAPTURE_SETTING_LIST)}`;

async function runService(): Promise<number> {
  const config = loadConfig(process.env);
  const logger = createLogger('capture');
  // Start-up is part of recovery after a crash (bench:recovery times its phases from here).
  logger.info({ instanceId: config.instanceId, processStartedAt: Math.round(performance.timeOrigin) }, 'starting');
  const capture = await startCapture(config, logger);
  stopOnSignal(logger, 'stopping: draining to Kinesis and confirming the slot', () => capture.close());
  await capture.service.start();
  return 0;
}

function progressLine(job: SnapshotJob, startedMs: number, startRows: number): string {
  const elapsed = (Date.now() - startedMs) / 1000;
  const rate = elapsed > 0 ? (job.rowsDone - startRows) / elapsed : 0;
  const left = Math.max(0, job.rowsEstimated - job.rowsDone);
  const eta = rate > 0 ? `${Math.ceil(left / rate)} s left` : 'estimating';
  const table = job.tables[job.tableIndex] ?? 'done';
  return `${table} (${Math.min(job.tableIndex + 1, job.tables.length)}/${job.tables.length}): ${job.rowsDone.toLocaleString('en')} of ~${job.rowsEstimated.toLocaleString('en')} rows, ${Math.round(rate).toLocaleString('en')} rows/s, ${eta}`;
}

async function runSnapshot(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { table: { type: 'string', multiple: true }, workspace: { type: 'string' }, for: { type: 'string' }, stop: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } } });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const tables = values.table ?? [...CAPTURED_TABLES];
  for (const t of tables) if (!(CAPTURED_TABLES as readonly string[]).includes(t)) throw new TaskflowError('BAD_ARGUMENT', `--table must be one of ${CAPTURED_TABLES.join(', ')}, got "${t}"`);
  if (values.for !== undefined && !isConsumerName(values.for)) throw new TaskflowError('BAD_ARGUMENT', `--for must be a consumer's name (letters, digits, . _ -), got "${values.for}"`);
  const config = loadConfig(process.env);
  const db = new pg.Client({ connectionString: config.databaseUrl, application_name: 'taskflow-capture-snapshot' });
  await db.connect();
  const dynamo = createDynamoClient(config.aws);
  const store = snapshotJobStore(dynamo, config);
  // The running capture service reads this request from its own stream (capture/snapshot.ts).
  const signal = (s: Signal) => db.query('SELECT pg_logical_emit_message(false, $1, $2)', [SIGNAL_PREFIX, JSON.stringify(s)]);
  try {
    const requestedAt = new Date().toISOString();
    if (values.stop) {
      await signal({ action: 'stop-snapshot' });
      console.log('asked capture to stop the snapshot');
      return 0;
    }
    await signal({ action: 'snapshot', request: { tables, ...(values.workspace ? { workspace: values.workspace } : {}), ...(values.for ? { target: values.for } : {}) } });
    let stopping = false;
    process.once('SIGINT', () => {
      stopping = true;
      void signal({ action: 'stop-snapshot' });
    });
    const started = Date.now();
    let startRows: number | undefined;
    for (;;) {
      await new Promise((r) => setTimeout(r, 1000));
      const job = await store.get();
      if (!job || job.updatedAt < requestedAt) {
        if (Date.now() - started > 30_000) throw new TaskflowError('SNAPSHOT_NOT_STARTED', 'capture did not pick up the snapshot request within 30 s: is `taskflow capture` running for this database and slot?');
        continue;
      }
      startRows ??= job.rowsDone;
      process.stdout.write(`\r${progressLine(job, started, startRows)}\x1b[K`);
      if (job.status === 'done') {
        process.stdout.write(`\nsnapshot done: ${job.rowsDone} rows\n`);
        return 0;
      }
      if (job.status === 'stopped') {
        process.stdout.write(`\nsnapshot stopped after ${job.rowsDone} rows${stopping ? '' : ' (by another request)'}; run the same command again to resume\n`);
        return stopping ? 130 : 1;
      }
    }
  } finally {
    await db.end();
    dynamo.destroy();
  }
}

export const command: Command = {
  summary: 'CDC service: Postgres changes -> Kinesis (see `taskflow capture --help`)',
  subcommands: ['snapshot'],
  async run(argv) {
    if (argv[0] === '--help' || argv[0] === 'help') {
      console.log(usage);
      return 0;
    }
    if (argv.length === 0) return runService();
    if (argv[0] === 'snapshot') return runSnapshot(argv.slice(1));
    console.error(usage);
    return 2;
  },
};
