// `taskflow capture`: the CDC service (Postgres logical replication -> Kinesis), long-running.
import { parseArgs } from 'node:util';
import { loadConfig } from '../../capture/config.js';
import { startCapture } from '../../capture/main.js';
import { createLogger } from '../../lib/logger.js';
import type { Command } from '../main.js';

const usage = `usage:
  taskflow capture        stream every committed change of tasks, comments, memberships and projects to Kinesis
Configuration from the environment: DATABASE_URL, CHANGE_STREAM_NAME, AWS_REGION, KINESIS_ENDPOINT,
DYNAMODB_ENDPOINT, DYNAMODB_TABLE_DLQ, DYNAMODB_TABLE_CHECKPOINTS, CAPTURE_SLOT, CAPTURE_PUBLICATION,
CAPTURE_AGGREGATE (true), CAPTURE_COMPRESSION (none|gzip), CAPTURE_MAX_IN_FLIGHT_BATCHES,
CAPTURE_MAX_BUFFERED_EVENTS, CAPTURE_ACK_INTERVAL_MS, CAPTURE_HEARTBEAT_INTERVAL_MS,
CAPTURE_INITIAL_SNAPSHOT, CAPTURE_ACCEPT_SLOT_GAP, METRICS_PORT, LOG_LEVEL (see capture/README.md).`;

async function runService(): Promise<number> {
  const config = loadConfig(process.env);
  const logger = createLogger('capture');
  const capture = await startCapture(config, logger);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping: draining to Kinesis and confirming the slot');
    void capture.close().then(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  await capture.service.start();
  return 0;
}

export const command: Command = {
  summary: 'CDC service: Postgres changes -> Kinesis (see `taskflow capture --help`)',
  async run(argv) {
    const { positionals, values } = parseArgs({ args: argv, options: { help: { type: 'boolean' } }, allowPositionals: true, strict: false });
    if (values.help) {
      console.log(usage);
      return 0;
    }
    if (positionals.length === 0) return runService();
    console.error(usage);
    return 2;
  },
};
