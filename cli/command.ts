// One `taskflow` command: each file in cli/commands/ exports one, loaded only when used, so
// adding a command never touches cli/main.ts.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Command {
  summary: string;
  /** Its subcommands: `taskflow <command> <sub> --help` works for each (cli/help.test.ts runs them all). */
  subcommands?: readonly string[];
  run(argv: string[]): Promise<number | void>;
}

const commandsDir = join(dirname(fileURLToPath(import.meta.url)), 'commands');

export function commandNames(): string[] {
  return readdirSync(commandsDir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .map((f) => f.slice(0, -3))
    .sort();
}

export async function loadCommand(name: string): Promise<Command> {
  const mod = (await import(join(commandsDir, `${name}.ts`))) as { command: Command };
  return mod.command;
}
