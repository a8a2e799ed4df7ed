// `taskflow notifications`: the notifications service (change stream → per-user notifications in
// the inbox, published live on the users' topics; the inbox API), long-running; and its operator
// commands.
import { parseArgs } from 'node:util';
import { createDynamoClient } from '../../lib/aws.js';
import { DynamoDeadLetterStore } from '../../lib/dlq.js';
import { settingsHelp } from '../../lib/config.js';
import { DEVELOPMENT, ENV_VAR } from '../../lib/dev-mode.js';
import { createLogger } from '../../lib/logger.js';
import { loadConfig, NOTIFICATION_SETTING_LIST } from '../../notifications/config.js';
import { consumerPreparation } from '../../lib/consumer-reading.js';
import { redriveNotificationDeadLetters } from '../../notifications/redrive.js';
import { connectPublisher, pipelineDeps, startNotifications } from '../../notifications/service.js';
import { validateEvent } from '../../schemas/validate.js';
import type { Command } from '../command.js';
import { runUntilSignalled } from '../long-running.js';
import { operatorEnvironment } from '../operator-env.js';

const usage = `usage:
  taskflow notifications                                 notify users of the changes on the stream; serve the inbox API
  taskflow notifications inbox --user U --workspace W    U's notifications in W, newest first (straight from the inbox)
  taskflow notifications redrive [--reason R] [--id ID]  run the service's dead letters through it again
Settings (environment; see notifications/README.md):
${settingsHelp(NOTIFICATION_SETTING_LIST)}
The operator commands fall back to the running local stack (.taskflow/stack.json).`;

async function runService(): Promise<never> {
  const logger = createLogger('notifications');
  const service = await startNotifications(loadConfig(process.env), logger);
  return runUntilSignalled(logger, 'stopping: releasing leases', () => service.stop('graceful'));
}

export const command: Command = {
  summary: 'notifications: change stream -> per-user inbox + live messages on users/{u}; inbox API | inbox | redrive',
  subcommands: ['inbox', 'redrive'],
  async run(argv) {
    const { positionals, values } = parseArgs({
      args: argv,
      options: { help: { type: 'boolean' }, user: { type: 'string' }, workspace: { type: 'string' }, reason: { type: 'string' }, id: { type: 'string' } },
      allowPositionals: true,
    });
    if (values.help) {
      console.log(usage);
      return 0;
    }
    const [sub] = positionals;
    if (sub === undefined) return runService();
    if (sub !== 'inbox' && sub !== 'redrive') {
      console.error(usage);
      return 2;
    }
    // The local stack runs in development mode: its subject keys (the local KEK) decrypt a redriven letter as the service does.
    const config = loadConfig(operatorEnvironment({ localDefaults: () => ({ [ENV_VAR]: DEVELOPMENT }) }));
    const dynamo = createDynamoClient(config.aws);
    try {
      if (sub === 'inbox') {
        if (!values.user || !values.workspace) {
          console.error(usage);
          return 2;
        }
        const { inbox } = pipelineDeps(config, dynamo, { publish: () => Promise.resolve(), close: () => Promise.resolve() });
        const page = await inbox.list(values.workspace, values.user, 'all', { limit: config.maxPage });
        for (const n of page.notifications) console.log(`${n.id}  ${n.read ? '    ' : 'NEW '} ${n.kind.padEnd(9)} task ${n.taskId}  ${n.text ?? ''}`);
        console.log(`${page.notifications.length} notification(s)${page.next ? ' (more: older ones not shown)' : ''}`);
        return 0;
      }
      const store = new DynamoDeadLetterStore(dynamo, config.tables.dlq);
      const publisher = await connectPublisher(config, `redrive-${process.pid}`);
      try {
        const prepare = consumerPreparation(config.subjectKeys, dynamo, config.aws, (err) => console.error(`a comment body does not decrypt; read as empty: ${err.message}`));
        const result = await redriveNotificationDeadLetters({ store, pipeline: pipelineDeps(config, dynamo, publisher), validate: validateEvent, prepare, ...(values.reason ? { reason: values.reason } : {}), ...(values.id ? { id: values.id } : {}) });
        for (const d of result.redriven) console.log(`redriven ${d.id} (${d.reason})`);
        for (const r of result.refused) console.log(`still refused ${r.letter.id}: ${r.message}`);
        console.log(`${result.redriven.length} dead letter(s) redriven, ${result.refused.length} still refused`);
        return result.refused.length > 0 ? 1 : 0;
      } finally {
        await publisher.close();
      }
    } finally {
      dynamo.destroy();
    }
  },
};
