// How a `taskflow` command ends: its exit code, or its error printed the way an operator reads it
// (cli/main.ts, and the service bundles the supervisor runs: infra/local/service-bundle.ts).
import { TaskflowError } from '../lib/errors.js';
import { SchemaError } from '../schemas/errors.js';

/** node:util parseArgs refusing an option or argument: a usage mistake, not a crash. */
function isUsageError(err: unknown): err is Error {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof TypeError && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

/** Sets the process's exit code from the command's outcome. */
export function finish(run: Promise<number | void>, commandName: string | undefined): void {
  run.then(
    (code) => {
      process.exitCode = code ?? 0;
    },
    (err: unknown) => {
      if (err instanceof TaskflowError || err instanceof SchemaError) console.error(`taskflow: ${err.code}: ${err.message}`);
      else if (isUsageError(err)) {
        console.error(`taskflow: ${err.message} (see \`taskflow ${commandName ?? ''} --help\`)`);
        process.exitCode = 2;
        return;
      } else console.error(err);
      process.exitCode = 1;
    },
  );
}
