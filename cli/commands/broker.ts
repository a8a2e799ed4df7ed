// `taskflow broker`: one MQTT broker node, the production broker tier (broker/README.md), long-running.
import { settingsHelp } from '../../lib/config.js';
import { createLogger } from '../../lib/logger.js';
import { BROKER_SETTING_LIST, loadConfig } from '../../broker/config.js';
import { startBrokerService } from '../../broker/service.js';
import type { Command } from '../command.js';
import { runUntilSignalled } from '../long-running.js';

const usage = `usage:
  taskflow broker         run one MQTT broker node: MQTT over TCP and WebSocket, the router's HTTP routes, /metrics
Settings (environment; see broker/README.md):
${settingsHelp(BROKER_SETTING_LIST)}`;

async function runService(): Promise<never> {
  const logger = createLogger('broker');
  const service = await startBrokerService(loadConfig(process.env), logger);
  return runUntilSignalled(logger, 'stopping: draining the broker', () => service.drain());
}

export const command: Command = {
  summary: 'MQTT broker node (production broker tier): MQTT over TCP/WebSocket, HTTP routes for the router (see `taskflow broker --help`)',
  async run(argv) {
    if (argv[0] === '--help' || argv[0] === 'help') {
      console.log(usage);
      return 0;
    }
    if (argv.length === 0) return runService();
    console.error(usage);
    return 2;
  },
};
