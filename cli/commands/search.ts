// `taskflow search`: the search indexer and API (change stream → per-workspace index of tasks
// and comments; GET /v1/workspaces/{ws}/search), long-running; and its operator commands.
import { parseArgs } from 'node:util';
import { readableProjects } from '../../lib/authz.js';
import { createDynamoClient } from '../../lib/aws.js';
import { DynamoDeadLetterStore } from '../../lib/dlq.js';
import { settingsHelp } from '../../lib/config.js';
import { DEVELOPMENT, ENV_VAR } from '../../lib/dev-mode.js';
import { createLogger } from '../../lib/logger.js';
import { validateEvent } from '../../schemas/validate.js';
import { SEARCH_SETTING_LIST, loadConfig } from '../../search/config.js';
import { openSearchIndex } from '../../search/engines.js';
import { consumerPreparation } from '../../lib/consumer-reading.js';
import { redriveSearchDeadLetters } from '../../search/redrive.js';
import { parseQueryTerms } from '../../search/search-index.js';
import { startSearch } from '../../search/service.js';
import type { Command } from '../command.js';
import { runUntilSignalled } from '../long-running.js';
import { operatorEnvironment } from '../operator-env.js';

const usage = `usage:
  taskflow search                                   index the change stream and serve the search API
  taskflow search query --user U --workspace W Q    what user U finds for Q (straight from the index)
  taskflow search redrive [--reason R] [--id ID]    re-apply search's dead letters to the index
Settings (environment; see search/README.md):
${settingsHelp(SEARCH_SETTING_LIST)}
The operator commands fall back to the running local
stack (.taskflow/stack.json; SEARCH_DB_PATH = <its data dir>/search/search.db).`;

async function runService(): Promise<never> {
  const logger = createLogger('search');
  const search = await startSearch(loadConfig(process.env), logger);
  return runUntilSignalled(logger, 'stopping: releasing leases', () => search.stop('graceful'));
}

export const command: Command = {
  summary: 'search indexer + API: change stream -> per-workspace index of tasks and comments; query | redrive',
  subcommands: ['query', 'redrive'],
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
    const [sub, ...words] = positionals;
    if (sub === undefined) return runService();
    if (sub !== 'query' && sub !== 'redrive') {
      console.error(usage);
      return 2;
    }
    // The local stack runs in development mode: its subject keys (the local KEK) decrypt a redriven letter as the service does.
    const config = loadConfig(operatorEnvironment({ localDefaults: (info) => ({ SEARCH_DB_PATH: `${info.dataDir}/search/search.db`, [ENV_VAR]: DEVELOPMENT }) }));
    const index = await openSearchIndex(config.engine);
    try {
      if (sub === 'query') {
        if (!values.user || !values.workspace || words.length === 0) {
          console.error(usage);
          return 2;
        }
        const projects = readableProjects(values.user, await index.memberships(values.user), values.workspace);
        const hits = projects !== 'all' && projects.length === 0 ? [] : await index.search({ workspaceId: values.workspace, terms: parseQueryTerms(words.join(' ')), projects, limit: config.maxResults });
        if (projects !== 'all' && projects.length === 0) console.log(`${values.user} has no membership in ${values.workspace}`);
        for (const h of hits) console.log(`${h.score.toFixed(2).padStart(7)}  ${h.table === 'tasks' ? 'task   ' : 'comment'} ${h.id}  ${h.title || h.text.slice(0, 60)}`);
        console.log(`${hits.length} hit(s)`);
        return 0;
      }
      const dynamo = createDynamoClient(config.aws);
      try {
        const store = new DynamoDeadLetterStore(dynamo, config.dlqTable);
        const prepare = consumerPreparation(config.subjectKeys, dynamo, config.aws, (err) => console.error(`a personal field does not decrypt; indexed without it: ${err.message}`));
        const result = await redriveSearchDeadLetters({ store, index, validate: validateEvent, prepare, ...(values.reason ? { reason: values.reason } : {}), ...(values.id ? { id: values.id } : {}) });
        for (const d of result.redriven) console.log(`redriven ${d.id} (${d.reason})`);
        for (const r of result.refused) console.log(`still refused ${r.letter.id}: ${r.message}`);
        console.log(`${result.redriven.length} dead letter(s) re-applied, ${result.refused.length} still refused`);
        return result.refused.length > 0 ? 1 : 0;
      } finally {
        dynamo.destroy();
      }
    } finally {
      await index.close();
    }
  },
};
