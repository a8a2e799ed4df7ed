// `taskflow schemas gen-types | check`: regenerate the TypeScript from the JSON Schemas, and
// refuse schema changes that would break readers of the stream.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Command } from '../main.js';
import { loadSchemaDir } from '../../schemas/catalog.js';
import { generateFiles } from '../../schemas/codegen.js';

const defaultDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'schemas');

const usage = `usage:
  taskflow schemas gen-types [--dir schemas]          write schemas/generated/*.ts from the JSON Schemas
  taskflow schemas check [--dir schemas]              check every schema version against the previous one
  taskflow schemas check --old a.json --new b.json    check one schema change`;

async function genTypes(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { dir: { type: 'string', default: defaultDir } } });
  const outDir = join(values.dir, 'generated');
  const files = await generateFiles(loadSchemaDir(values.dir));
  mkdirSync(outDir, { recursive: true });
  // Drop generated files whose schema is gone, so the folder mirrors the schemas exactly.
  for (const old of readdirSync(outDir)) if (old.endsWith('.ts') && !files.has(old)) rmSync(join(outDir, old));
  for (const [name, content] of files) writeFileSync(join(outDir, name), content);
  console.log(`wrote ${files.size} files to ${outDir}`);
  return 0;
}

export const command: Command = {
  summary: 'generate types from the JSON Schemas (gen-types) or check schema compatibility (check)',
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === 'gen-types') return genTypes(rest);
    console.error(usage);
    return sub === undefined || sub === '--help' ? 0 : 2;
  },
};
