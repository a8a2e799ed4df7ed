// `taskflow <command> [...]`: each file in cli/commands/ is one command (cli/command.ts).
import { TaskflowError } from '../lib/errors.js';
import { SchemaError } from '../schemas/errors.js';
import { commandNames, loadCommand } from './command.js';

/** node:util parseArgs refusing an option or argument: a usage mistake, not a crash. */
function isUsageError(err: unknown): err is Error {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof TypeError && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const names = commandNames();
  if (!name || name === '--help' || name === 'help') {
    console.log('usage: taskflow <command> [options]\n\ncommands:');
    for (const n of names) console.log(`  ${n.padEnd(10)} ${(await loadCommand(n)).summary}`);
    console.log('\n`taskflow <command> --help` describes a command, its subcommands and the settings it reads.');
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
    if (err instanceof TaskflowError || err instanceof SchemaError) console.error(`taskflow: ${err.code}: ${err.message}`);
    else if (isUsageError(err)) {
      console.error(`taskflow: ${err.message} (see \`taskflow ${process.argv[2] ?? ''} --help\`)`);
      process.exitCode = 2;
      return;
    } else console.error(err);
    process.exitCode = 1;
  },
);
