// `taskflow analytics <subcommand>`: the analytics path (analytics/README.md).
//   archive   the archiver service: change stream -> Firehose (raw archive), long-running
import { parseArgs } from 'node:util';
import { loadArchiverConfig } from '../../analytics/config.js';
import { startArchiver } from '../../analytics/service.js';
import { createLogger } from '../../lib/logger.js';
import type { Command } from '../main.js';

const usage = `usage:
  taskflow analytics archive    read the change stream and put every event to the Firehose delivery stream (raw archive)
Configuration from the environment (archive): CHANGE_STREAM_NAME, AWS_REGION, KINESIS_ENDPOINT, DYNAMODB_ENDPOINT,
FIREHOSE_ENDPOINT, FIREHOSE_DELIVERY_STREAM, DYNAMODB_TABLE_{LEASES,DLQ}, ARCHIVER_CONSUMER_NAME (analytics-archiver),
ARCHIVER_BACKOFF_BASE_MS (100), ARCHIVER_BACKOFF_MAX_MS (5000), KINESIS_* (lib/kinesis-consumer), METRICS_PORT, LOG_LEVEL.`;

/** Runs a long-running service until SIGINT/SIGTERM, then stops it gracefully. */
async function runUntilSignalled(name: string, start: () => Promise<{ stop(mode?: 'graceful'): Promise<void> }>, logger: ReturnType<typeof createLogger>): Promise<number> {
  const service = await start();
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, `stopping ${name}`);
    void service.stop('graceful').then(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  await new Promise<never>(() => {});
  return 0;
}

export const command: Command = {
  summary: 'analytics path: `analytics archive` (stream -> Firehose raw archive)',
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
      default:
        console.error(usage);
        return 2;
    }
  },
};
