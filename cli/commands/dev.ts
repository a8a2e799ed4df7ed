// `taskflow dev` (= `npm start`): the whole pipeline on the embedded local stack. Starts the
// engines on their dev ports with data under a per-checkout directory (reused by the next run),
// applies migrations, seeds the demo, starts every pipeline service that exists, prints where
// everything listens and writes it to .taskflow/stack.json. Ctrl-C stops services, then engines.
//
//   taskflow dev [--data-dir DIR] [--state-file PATH] [--free-ports] [--reset] [--shards N]
import { createHash } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { migrate } from '../../db/migrate.js';
import { seedDemo } from '../../db/seed.js';
import { stackEnv } from '../../lib/stack-info.js';
import { untilStopRequested, writeStateFile } from '../../infra/local/lifecycle.js';
import { EPHEMERAL_PORTS } from '../../infra/local/ports.js';
import { describeStack, startStack } from '../../infra/local/stack.js';
import { superviseServices, type ServiceSpec } from '../../infra/local/supervisor.js';
import type { Command } from '../main.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The pipeline services `taskflow dev` runs, in start order, each as `taskflow <name>`. A service
 * is started only once its command exists (cli/commands/<name>.ts), so this list can name
 * services before they are written.
 */
const PIPELINE_SERVICES = ['capture', 'router'] as const;

/**
 * Per-checkout data directory outside the checkout: Postgres runs as the `postgres` OS user when
 * we are root and could not reach a checkout under /root. Hashing the path keeps two checkouts apart.
 */
export function defaultDataDir(root = ROOT): string {
  return join('/var/tmp', `taskflow-${createHash('sha256').update(root).digest('hex').slice(0, 10)}`);
}

function availableServices(): string[] {
  return PIPELINE_SERVICES.filter((name) => existsSync(join(ROOT, 'cli', 'commands', `${name}.ts`)));
}

async function runDev(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'data-dir': { type: 'string', default: process.env.TASKFLOW_DATA_DIR ?? defaultDataDir() },
      'state-file': { type: 'string', default: join(ROOT, '.taskflow', 'stack.json') },
      'free-ports': { type: 'boolean', default: false },
      reset: { type: 'boolean', default: false },
      shards: { type: 'string' },
    },
  });
  const started = Date.now();
  const dataDir = resolve(values['data-dir']);
  const stateFile = resolve(values['state-file']);
  if (values.reset) {
    console.log(`taskflow dev: --reset: deleting ${dataDir}`);
    rmSync(dataDir, { recursive: true, force: true });
  }

  const stack = await startStack({
    ephemeral: false,
    dataDir,
    ...(values['free-ports'] ? { ports: EPHEMERAL_PORTS } : {}),
    ...(values.shards ? { shardCount: Number(values.shards) } : {}),
  });
  let services: ReturnType<typeof superviseServices> | undefined;
  try {
    const { info } = stack;
    const applied = await migrate(info.postgres.url);
    const seeded = await seedDemo(info.postgres.url);
    const env = { ...process.env, ...stackEnv(info) };
    const specs: ServiceSpec[] = availableServices().map((name) => ({
      name,
      command: process.execPath,
      args: [join(ROOT, 'bin', 'taskflow.js'), name],
      env,
      cwd: ROOT,
    }));
    services = superviseServices(specs);
    writeStateFile(stateFile, info);

    console.log(`\ntaskflow dev ready in ${((Date.now() - started) / 1000).toFixed(1)} s (pid ${process.pid})`);
    for (const line of describeStack(info)) console.log(`  ${line}`);
    console.log(`  database   ${stack.freshDatabase ? 'new' : 'reused'}; migrations applied now: ${applied.length ? applied.join(', ') : 'none'}; demo rows inserted: ${seeded}`);
    console.log(`  services   ${specs.length ? specs.map((s) => s.name).join(', ') : '(none written yet)'}`);
    console.log(`  state      ${stateFile}`);
    console.log('Ctrl-C stops everything.\n');

    const reason = await untilStopRequested();
    console.log(`taskflow dev stopping (${reason})`);
  } finally {
    rmSync(stateFile, { force: true });
    await services?.stop();
    await stack.stop();
  }
  console.log('taskflow dev stopped');
  return 0;
}

export const command: Command = {
  summary: 'run the whole pipeline on the embedded local stack (npm start)',
  async run(argv) {
    return runDev(argv);
  },
};
