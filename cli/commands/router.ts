// `taskflow router`: the realtime router service (Kinesis → ordered, deduplicated, sequenced
// per-project MQTT messages, changelog, replay API), long-running.
import { parseArgs } from 'node:util';
import { settingsHelp } from '../../lib/config.js';
import { createLogger } from '../../lib/logger.js';
import { ROUTER_SETTING_LIST, loadConfig } from '../../router/config.js';
import { startRouter } from '../../router/service.js';
import type { Command } from '../command.js';
import { runUntilSignalled } from '../long-running.js';

const usage = `usage:
  taskflow router        route the change stream to per-project MQTT topics and serve the replay API
Settings (environment; see router/README.md):
${settingsHelp(ROUTER_SETTING_LIST)}`;

async function runService(): Promise<number> {
  const config = loadConfig(process.env);
  const logger = createLogger('router');
  // Start-up is part of recovery after a crash (bench:recovery times its phases from the
  // process's own start, performance.timeOrigin, through module loading to here and on).
  logger.info({ workerId: config.workerId, processStartedAt: Math.round(performance.timeOrigin) }, 'starting');
  const router = await startRouter(config, logger);
  return runUntilSignalled(logger, 'stopping: checkpointing and releasing leases', () => router.stop('graceful'));
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
