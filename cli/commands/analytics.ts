// `taskflow analytics <subcommand>`: the analytics path (analytics/README.md).
//   archive   the archiver service: change stream -> Firehose (raw archive), long-running
//   load      the loader service: raw archive -> warehouse (raw_events, curated tables), long-running
import { parseArgs } from 'node:util';
import { loadArchiverConfig, loadLoaderConfig } from '../../analytics/config.js';
import { startLoader } from '../../analytics/loader-service.js';
import { startArchiver } from '../../analytics/service.js';
import { createLogger } from '../../lib/logger.js';
import type { Command } from '../main.js';

const usage = `usage:
  taskflow analytics archive    read the change stream and put every event to the Firehose delivery stream (raw archive)
  taskflow analytics load       load each new raw archive object once into the warehouse (DuckDB)
Configuration from the environment (archive): CHANGE_STREAM_NAME, AWS_REGION, KINESIS_ENDPOINT, DYNAMODB_ENDPOINT,
FIREHOSE_ENDPOINT, FIREHOSE_DELIVERY_STREAM, DYNAMODB_TABLE_{LEASES,DLQ}, ARCHIVER_CONSUMER_NAME (analytics-archiver),
ARCHIVER_BACKOFF_BASE_MS (100), ARCHIVER_BACKOFF_MAX_MS (5000), KINESIS_* (lib/kinesis-consumer), METRICS_PORT, LOG_LEVEL.
(load): ARCHIVE_BUCKET, ARCHIVE_PREFIX (raw/), S3_DIR (a local folder per bucket) or S3_ENDPOINT/AWS, WAREHOUSE_PATH
(default <S3_DIR>/../warehouse.duckdb), LOADER_POLL_INTERVAL_MS (250), METRICS_PORT, LOG_LEVEL.`;

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
  summary: 'analytics path: `analytics archive` (stream -> Firehose raw archive), `analytics load` (archive -> warehouse)',
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
      default:
        console.error(usage);
        return 2;
    }
  },
};
