// `taskflow analytics <subcommand>`: the analytics path (analytics/README.md).
//   archive   the archiver service: change stream -> Firehose (raw archive), long-running
//   load      the loader service: raw archive -> warehouse (raw_events, curated tables), long-running
//   dq        run the data-quality checks once and print them (exit 1 when one fails)
//   rebuild   re-create the curated tables from the raw archive;  sql  query the local warehouse
//   dlq       the archiver's dead letters and the loader's quarantine: list, redrive (redrive.ts)
import { parseArgs } from 'node:util';
import { ARCHIVER_SETTING_LIST, LOADER_SETTING_LIST, LOADER_SETTINGS, loadArchiverConfig, loadLoaderConfig } from '../../analytics/config.js';
import { DQ_CHECKS, runDataQuality } from '../../analytics/warehouse/dq.js';
import { DuckDbWarehouse } from '../../analytics/warehouse/duckdb.js';
import { createDynamoClient, createFirehoseClient, loadAwsConfig } from '../../lib/aws.js';
import { settingsHelp } from '../../lib/config.js';
import type { RedriveResult } from '@taskflow/stream';
import { type DeadLetter, DynamoDeadLetterStore, printable } from '../../lib/dlq.js';
import { validateEvent } from '../../schemas/validate.js';
import { DLQ_SOURCE as ARCHIVER_DLQ_SOURCE } from '../../analytics/archiver.js';
import { FirehoseDeliveryStream } from '../../analytics/firehose.js';
import { LOADER_DLQ_SOURCE } from '../../analytics/quarantine.js';
import { redriveArchiverDeadLetters, redriveLoaderDeadLetters } from '../../analytics/redrive.js';
import { operatorEnvironment } from '../operator-env.js';
import { TaskflowError } from '../../lib/errors.js';
import { archiveStore, startLoader } from '../../analytics/loader-service.js';
import { formatProgress, rebuild } from '../../analytics/rebuild.js';
import { startArchiver } from '../../analytics/service.js';
import { createLogger } from '../../lib/logger.js';
import type { Command } from '../command.js';
import { runUntilSignalled } from '../long-running.js';

const usage = `usage:
  taskflow analytics archive    read the change stream and put every event to the Firehose delivery stream (raw archive)
  taskflow analytics load       load each new raw archive object once into the warehouse (DuckDB)
  taskflow analytics dq [--check NAME]... [--json]
                                run the data-quality checks on the warehouse, record them in dq_results, exit 1 if one fails
  taskflow analytics rebuild [--from YYYY-MM-DD]
                                re-create the curated tables from the raw archive (objects from that day on), with progress
  taskflow analytics sql "QUERY" [--json]
                                query the local warehouse (the loader must be stopped: one process per DuckDB file)
  taskflow analytics dlq list [--source archiver|loader] [--reason R] [--all]
                                the archiver's dead letters and the loader's quarantined archive lines and objects
                                (--all: also those already redriven)
  taskflow analytics dlq redrive --source archiver|loader [--reason R] [--id ID]
                                archiver: put its dead letters that are valid now to the Firehose delivery stream;
                                loader: write its quarantined lines that are valid now as a new archive object, and copy
                                each quarantined object (once replaced by a good copy) under a new key; the running loader
                                loads them, each event once. Exit 1 when some are still refused (left in place, with why)
  dlq finds DynamoDB, Firehose and the archive through the environment or, when unset, the running local stack.
Settings of archive (environment; see analytics/README.md):
${settingsHelp(ARCHIVER_SETTING_LIST)}
Settings of load and dq:
${settingsHelp(LOADER_SETTING_LIST)}`;

const bigintSafe = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

async function openWarehouse(path: string): Promise<DuckDbWarehouse> {
  try {
    return await DuckDbWarehouse.open(path);
  } catch (err) {
    // DuckDB allows one writing process per file: the running loader holds it.
    throw new TaskflowError('WAREHOUSE_LOCKED', `cannot open ${path} (${(err as Error).message.split('\n')[0]}); while the loader runs it holds the file (its /metrics has taskflow_dq_*): stop it first`, { cause: err });
  }
}

async function runRebuild(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { from: { type: 'string' } } });
  if (values.from !== undefined && !(/^\d{4}-\d{2}-\d{2}$/.test(values.from) && !Number.isNaN(Date.parse(values.from)))) {
    throw new TaskflowError('REBUILD_BAD_DATE', `--from ${values.from} is not a date YYYY-MM-DD`);
  }
  const config = loadLoaderConfig(process.env);
  const warehouse = await openWarehouse(config.warehousePath);
  try {
    const last = await rebuild(archiveStore(config), config.archive.prefix, warehouse, createLogger('analytics-rebuild'), {
      ...(values.from ? { from: values.from } : {}),
      onProgress: (p) => console.error(formatProgress(p)),
    });
    console.log(`rebuilt: ${last.objects} objects, ${last.events} events loaded again`);
    return 0;
  } finally {
    await warehouse.close();
  }
}

async function runSql(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false } }, allowPositionals: true });
  if (positionals.length !== 1) throw new TaskflowError('SQL_USAGE', 'give one query, quoted: taskflow analytics sql "SELECT …"');
  const warehouse = await openWarehouse(loadLoaderConfig(process.env).warehousePath);
  try {
    const rows = await warehouse.query(positionals[0]!);
    if (values.json) console.log(JSON.stringify(rows, bigintSafe, 2));
    else for (const row of rows) console.log(JSON.stringify(row, bigintSafe));
    return 0;
  } finally {
    await warehouse.close();
  }
}

async function runDq(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { check: { type: 'string', multiple: true }, json: { type: 'boolean', default: false } } });
  const unknown = (values.check ?? []).filter((c) => !DQ_CHECKS.some((k) => k.name === c));
  if (unknown.length) throw new TaskflowError('DQ_UNKNOWN_CHECK', `unknown check ${unknown.join(', ')} (known: ${DQ_CHECKS.map((c) => c.name).join(', ')})`);
  const config = loadLoaderConfig(process.env);
  const warehouse = await openWarehouse(config.warehousePath);
  try {
    const results = await runDataQuality(warehouse, { ...config.dq, now: new Date() }, values.check);
    if (values.json) console.log(JSON.stringify(results, bigintSafe, 2));
    else {
      for (const r of results) {
        console.log(`${r.passed ? 'pass' : 'FAIL'}  ${r.check}${r.passed ? '' : `: ${r.failingRows} rows, e.g.`}`);
        for (const row of r.sample) console.log(`      ${JSON.stringify(row, bigintSafe)}`);
      }
    }
    return results.every((r) => r.passed) ? 0 : 1;
  } finally {
    await warehouse.close();
  }
}

const DLQ_SOURCES = { archiver: ARCHIVER_DLQ_SOURCE, loader: LOADER_DLQ_SOURCE } as const;

function letterLine(d: DeadLetter): string {
  const origin = Object.entries(d.origin).map(([k, v]) => `${k}=${v}`).join(' ');
  return printable(`${d.id}  ${d.source}  ${d.reason}  ${d.payload.length} B  ${origin}${d.redrivenAt ? `  redriven ${d.redrivenAt}` : ''}\n    ${d.message}`);
}

async function runDlq(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { source: { type: 'string' }, reason: { type: 'string' }, id: { type: 'string' }, all: { type: 'boolean', default: false } },
    allowPositionals: true,
  });
  const sub = positionals[0];
  const source = values.source === undefined ? undefined : DLQ_SOURCES[values.source as keyof typeof DLQ_SOURCES];
  if ((sub !== 'list' && sub !== 'redrive') || (values.source !== undefined && !source) || (sub === 'redrive' && !source)) {
    console.error(usage);
    return 2;
  }
  const env = operatorEnvironment({ configuredBy: ['S3_DIR', 'S3_ENDPOINT', 'FIREHOSE_ENDPOINT'] });
  const dynamo = createDynamoClient(loadAwsConfig(env));
  const store = new DynamoDeadLetterStore(dynamo, LOADER_SETTINGS.dlqTable.read(env));
  try {
    if (sub === 'list') {
      const entries = (await store.list({ includeRedriven: values.all }))
        .filter((d) => (source ? d.source === source : Object.values(DLQ_SOURCES).includes(d.source as (typeof DLQ_SOURCES)[keyof typeof DLQ_SOURCES])))
        .filter((d) => !values.reason || d.reason === values.reason);
      for (const d of entries) console.log(letterLine(d));
      console.log(`${entries.length} dead letter(s)`);
      return 0;
    }
    const filter = { store, validate: validateEvent, ...(values.reason ? { reason: values.reason } : {}), ...(values.id ? { id: values.id } : {}) };
    let result: RedriveResult;
    if (source === ARCHIVER_DLQ_SOURCE) {
      const config = loadArchiverConfig(env);
      const firehose = createFirehoseClient(config.aws);
      try {
        result = await redriveArchiverDeadLetters({ ...filter, stream: new FirehoseDeliveryStream(firehose, config.deliveryStreamName), backoff: config.backoff });
      } finally {
        firehose.destroy();
      }
    } else {
      const config = loadLoaderConfig(env);
      result = await redriveLoaderDeadLetters({ ...filter, archive: archiveStore(config), prefix: config.archive.prefix });
    }
    for (const d of result.redriven) console.log(`redriven ${d.id} (${d.reason})`);
    for (const r of result.refused) console.error(printable(`refused ${r.letter.id}: ${r.message}`));
    console.log(`${result.redriven.length} dead letter(s) redriven${result.refused.length ? `, ${result.refused.length} refused (fix the cause first)` : ''}`);
    return result.refused.length > 0 ? 1 : 0;
  } finally {
    dynamo.destroy();
  }
}

/** Starts a long-running service and keeps it until SIGINT/SIGTERM. */
async function runService(name: string, start: () => Promise<{ stop(): Promise<void> }>, logger: ReturnType<typeof createLogger>): Promise<never> {
  const service = await start();
  return runUntilSignalled(logger, `stopping ${name}`, () => service.stop());
}

export const command: Command = {
  summary: 'analytics path: `analytics archive` (stream -> Firehose raw archive), `analytics load` (archive -> warehouse), `analytics dq` (data-quality checks), `analytics dlq list|redrive`',
  subcommands: ['archive', 'load', 'dq', 'rebuild', 'sql', 'dlq'],
  async run(argv) {
    const { positionals, values } = parseArgs({ args: argv, options: { help: { type: 'boolean' } }, allowPositionals: true, strict: false });
    if (values.help) {
      console.log(usage);
      return 0;
    }
    switch (positionals[0]) {
      case 'archive': {
        const config = loadArchiverConfig(process.env);
        const logger = createLogger('analytics-archiver');
        return runService('the archiver', () => startArchiver(config, logger), logger);
      }
      case 'load': {
        const config = loadLoaderConfig(process.env);
        const logger = createLogger('analytics-loader');
        return runService('the loader', () => startLoader(config, logger), logger);
      }
      case 'dq':
        return runDq(argv.slice(argv.indexOf('dq') + 1));
      case 'rebuild':
        return runRebuild(argv.slice(argv.indexOf('rebuild') + 1));
      case 'sql':
        return runSql(argv.slice(argv.indexOf('sql') + 1));
      case 'dlq':
        return runDlq(argv.slice(argv.indexOf('dlq') + 1));
      default:
        console.error(usage);
        return 2;
    }
  },
};
