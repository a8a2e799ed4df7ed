// `taskflow <command> [...]`: each file in cli/commands/ is one command (cli/command.ts).
import { commandNames, loadCommand } from './command.js';
import { finish } from './finish.js';

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

finish(main(process.argv.slice(2)), process.argv[2]);
