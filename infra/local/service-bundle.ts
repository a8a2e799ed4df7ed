// The services the supervisor runs start from an esbuild bundle built once at launch, not through
// tsx. A restart after a crash is on the recovery path (bench:recovery): through tsx's loader
// hooks, resolving and transpiling our ~60 modules cost the router ≈ 0.7 s of CPU per start
// (1.7 s against 1.0 s for the bundle, `router --help`), several seconds of wall time on a loaded
// host. Packages stay external — Node loads them from node_modules as usual — so the bundle is
// written inside the repository (.taskflow/build/…), where Node's resolution finds node_modules.
// A command whose code finds files next to its sources (import.meta.url: the board's static
// files) cannot be bundled and keeps running through bin/taskflow.js.
import { build } from 'esbuild';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ServiceBundle {
  readonly dir: string;
  /** node's arguments to run `taskflow <command...>` from the bundle. */
  args(command: readonly string[]): string[];
  remove(): void;
}

/** Bundles `cli/commands/<name>.ts` of each name (code they share goes into common chunks). */
export async function bundleCommands(root: string, names: readonly string[]): Promise<ServiceBundle> {
  const parent = join(root, '.taskflow', 'build');
  mkdirSync(parent, { recursive: true });
  // Its own folder: several launchers (tests, benches) may bundle the same checkout at once.
  const dir = mkdtempSync(join(parent, 'services-'));
  const entries = join(dir, 'entries');
  mkdirSync(entries);
  const entryPoints = names.map((name) => {
    const file = join(entries, `${name}.ts`);
    const from = (path: string) => JSON.stringify(join(root, path));
    writeFileSync(file, `import { command } from ${from(`cli/commands/${name}.ts`)};\nimport { finish } from ${from('cli/finish.ts')};\nfinish(command.run(process.argv.slice(2)), ${JSON.stringify(name)});\n`);
    return { in: file, out: name };
  });
  try {
    await build({
      entryPoints,
      outdir: dir,
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node22',
      packages: 'external',
      tsconfig: join(root, 'tsconfig.json'),
      outExtension: { '.js': '.mjs' },
      logLevel: 'silent',
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    args: ([name, ...rest]) => {
      if (!name || !names.includes(name)) throw new Error(`command "${name}" is not in the bundle (${names.join(', ')})`);
      return [join(dir, `${name}.mjs`), ...rest];
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
