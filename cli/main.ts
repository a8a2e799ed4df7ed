// `taskflow <command> [...]`: each file in cli/commands/ is one command, loaded only when used,
// so adding a command never touches this file.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TaskflowError } from '../lib/errors.js';

export interface Command {
  summary: string;
  run(argv: string[]): Promise<number | void>;
}

const commandsDir = join(dirname(fileURLToPath(import.meta.url)), 'commands');

function commandNames(): string[] {
  return readdirSync(commandsDir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .map((f) => f.slice(0, -3))
    .sort();
}

async function loadCommand(name: string): Promise<Command> {
  const mod = (await import(join(commandsDir, `${name}.ts`))) as { command: Command };
  return mod.command;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const names = commandNames();
  if (!name || name === '--help' || name === 'help') {
    console.log('usage: taskflow <command> [options]\n\ncommands:');
    for (const n of names) console.log(`  ${n.padEnd(10)} ${(await loadCommand(n)).summary}`);
    return name ? 0 : 1;
  }
  if (!names.includes(name)) {
    console.error(`taskflow: unknown command "${name}" (known: ${names.join(', ')})`);
    return 2;
  }
  return (await (await loadCommand(name)).run(rest)) ?? 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof TaskflowError) console.error(`taskflow: ${err.code}: ${err.message}`);
    else console.error(err);
    process.exitCode = 1;
  },
);
