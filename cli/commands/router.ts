// `taskflow router`: the realtime router service (Kinesis → ordered, deduplicated, sequenced
// per-project MQTT messages, changelog, replay API), long-running.
import { parseArgs } from 'node:util';
import { createLogger } from '../../lib/logger.js';
import { loadConfig } from '../../router/config.js';
import { startRouter } from '../../router/service.js';
import type { Command } from '../main.js';

const usage = `usage:
  taskflow router        route the change stream to per-project MQTT topics and serve the replay API
Configuration from the environment: CHANGE_STREAM_NAME, AWS_REGION, KINESIS_ENDPOINT, DYNAMODB_ENDPOINT,
DYNAMODB_TABLE_{LEASES,CHANGELOG,DLQ,MEMBERSHIPS}, MQTT_URL, IOT_DATA_ENDPOINT, ROUTER_PUBLISHER (mqtt|iot-data),
ROUTER_BATCH_WINDOW_MS (100), ROUTER_PAYLOAD_MODE (full|thin), ROUTER_GZIP, ROUTER_MAX_MESSAGE_BYTES,
ROUTER_MQTT_CONNECTIONS (8), ROUTER_PUBLISHES_PER_SECOND (100), ROUTER_SUBSCRIPTION_EVENTS (iot|aedes|off; default iot),
ROUTER_MQTT_PASSWORD, ROUTER_CHANGELOG_TTL_SECONDS, ROUTER_POLL_INTERVAL_MS, ROUTER_FAILOVER_MS (1500), ROUTER_REVOCATION_HOLD_MS (3000),
KINESIS_WORKER_ID,
JWT_JWKS_URL | JWT_SECRET | JWT_SECRET_FILE, JWT_ISSUER, JWT_AUDIENCE, REPLAY_PORT, METRICS_PORT, LOG_LEVEL.`;

async function runService(): Promise<number> {
  const config = loadConfig(process.env);
  const logger = createLogger('router');
  // Start-up is part of recovery after a crash (bench:recovery times it from here).
  logger.info({ workerId: config.workerId }, 'starting');
  const router = await startRouter(config, logger);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping: checkpointing and releasing leases');
    void router.stop('graceful').then(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // Keep running until a signal.
  await new Promise<never>(() => {});
  return 0;
}

export const command: Command = {
  summary: 'realtime router: change stream -> per-project MQTT topics, changelog and replay API',
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
