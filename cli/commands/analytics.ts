// `taskflow analytics <subcommand>`: the analytics path (analytics/README.md).
//   archive   the archiver service: change stream -> Firehose (raw archive), long-running
//   load      the loader service: raw archive -> warehouse (raw_events, curated tables), long-running
//   dq        run the data-quality checks once and print them (exit 1 when one fails)
import { parseArgs } from 'node:util';
import { ARCHIVER_SETTING_LIST, LOADER_SETTING_LIST, loadArchiverConfig, loadLoaderConfig } from '../../analytics/config.js';
import { DQ_CHECKS, runDataQuality } from '../../analytics/warehouse/dq.js';
import { DuckDbWarehouse } from '../../analytics/warehouse/duckdb.js';
import { settingsHelp } from '../../lib/config.js';
import { TaskflowError } from '../../lib/errors.js';
import { startLoader } from '../../analytics/loader-service.js';
import { startArchiver } from '../../analytics/service.js';
import { createLogger } from '../../lib/logger.js';
import type { Command } from '../command.js';

const usage = `usage:
  taskflow analytics archive    read the change stream and put every event to the Firehose delivery stream (raw archive)
  taskflow analytics load       load each new raw archive object once into the warehouse (DuckDB)
  taskflow analytics dq [--check NAME]... [--json]
                                run the data-quality checks on the warehouse, record them in dq_results, exit 1 if one fails
Settings of archive (environment; see analytics/README.md):
${settingsHelp(ARCHIVER_SETTING_LIST)}
Settings of load and dq:
${settingsHelp(LOADER_SETTING_LIST)}`;

async function runDq(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { check: { type: 'string', multiple: true }, json: { type: 'boolean', default: false } } });
  const unknown = (values.check ?? []).filter((c) => !DQ_CHECKS.some((k) => k.name === c));
  if (unknown.length) throw new TaskflowError('DQ_UNKNOWN_CHECK', `unknown check ${unknown.join(', ')} (known: ${DQ_CHECKS.map((c) => c.name).join(', ')})`);
  const config = loadLoaderConfig(process.env);
  let warehouse: DuckDbWarehouse;
  try {
    warehouse = await DuckDbWarehouse.open(config.warehousePath);
  } catch (err) {
    // DuckDB allows one writing process per file: the running loader holds it.
    throw new TaskflowError('WAREHOUSE_LOCKED', `cannot open ${config.warehousePath} (${(err as Error).message.split('\n')[0]}); while the loader runs, it runs the checks itself: see its /metrics (taskflow_dq_*) or stop it first`, { cause: err });
  }
  try {
    const results = await runDataQuality(warehouse, { ...config.dq, now: new Date() }, values.check);
    if (values.json) console.log(JSON.stringify(results, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2));
    else {
      for (const r of results) {
        console.log(`${r.passed ? 'pass' : 'FAIL'}  ${r.check}${r.passed ? '' : `: ${r.failingRows} rows, e.g.`}`);
        for (const row of r.sample) console.log(`      ${JSON.stringify(row, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`);
      }
    }
    return results.every((r) => r.passed) ? 0 : 1;
  } finally {
    await warehouse.close();
  }
}

/** Runs a long-running service until SIGINT/SIGTERM, then stops it gracefully. */
async function runUntilSignalled(name: string, start: () => Promise<{ stop(): Promise<void> }>, logger: ReturnType<typeof createLogger>): Promise<number> {
  const service = await start();
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, `stopping ${name}`);
    void service.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  await new Promise<never>(() => {});
  return 0;
}

export const command: Command = {
  summary: 'analytics path: `analytics archive` (stream -> Firehose raw archive), `analytics load` (archive -> warehouse), `analytics dq` (data-quality checks)',
  subcommands: ['archive', 'load', 'dq'],
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
        return runUntilSignalled('the archiver', () => startArchiver(config, logger), logger);
      }
      case 'load': {
        const config = loadLoaderConfig(process.env);
        const logger = createLogger('analytics-loader');
        return runUntilSignalled('the loader', () => startLoader(config, logger), logger);
      }
      case 'dq':
        return runDq(argv.slice(argv.indexOf('dq') + 1));
      default:
        console.error(usage);
        return 2;
    }
  },
};
