// `taskflow schemas gen-types | check`: regenerate the TypeScript from the JSON Schemas, and
// refuse schema changes that would break readers of the stream.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { Command } from '../command.js';
import { loadSchemaDir, readSchemaFile } from '../../schemas/catalog.js';
import { generateFiles } from '../../schemas/codegen.js';
import { brokenDirections, checkCompatibility, checkVersionChains, type CompatibilityReport, type Direction, type Requirement } from '../../schemas/compat.js';

const defaultDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'schemas');

const usage = `usage:
  taskflow schemas gen-types [--dir schemas]          write <dir>/generated/*.ts from the JSON Schemas
  taskflow schemas check [--dir schemas]              check every schema version against the previous one
  taskflow schemas check --old a.json --new b.json    check one schema change
options of check:
  --require both|backward|forward   which compatibility a change must keep (default both:
                                    new readers read old events AND old readers read new events)`;

const DIRECTION_LABEL: Record<Direction, string> = {
  backward: 'backward (new readers, old events)',
  forward: 'forward (old readers, new events)',
};

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

/** Problems that make a file no JSON Schema at all (a typo such as "type": "strnig"). */
function metaSchemaErrors(files: { path: string; schema: Record<string, unknown> }[]): string[] {
  const ajv = new Ajv2020({ strict: false });
  return files.flatMap((f) =>
    ajv.validateSchema(f.schema) ? [] : [`${f.path}: not a valid JSON Schema: ${ajv.errorsText(ajv.errors, { dataVar: 'schema' })}`],
  );
}

function describe(label: string, report: CompatibilityReport, broken: Direction[]): string[] {
  const lines = [`${label}: ${broken.length > 0 ? 'BREAKING' : 'ok'}`];
  for (const d of ['backward', 'forward'] as const) {
    if (report[d].compatible) continue;
    const marker = broken.includes(d) ? '' : ' (allowed by --require)';
    lines.push(`  ${DIRECTION_LABEL[d]}${marker}:`);
    for (const p of report[d].problems) lines.push(`    [${p.rule}] ${p.message}`);
  }
  return lines;
}

function check(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: { dir: { type: 'string', default: defaultDir }, old: { type: 'string' }, new: { type: 'string' }, require: { type: 'string', default: 'both' } },
  });
  const requirement = values.require as Requirement;
  if (!['both', 'backward', 'forward'].includes(requirement)) {
    console.error(`--require must be both, backward or forward, not "${values.require}"`);
    return 2;
  }
  if (values.old !== undefined || values.new !== undefined) {
    if (values.old === undefined || values.new === undefined) {
      console.error('--old and --new go together');
      return 2;
    }
    const pair = [values.old, values.new].map((path) => ({ path, schema: readSchemaFile(path) }));
    const invalid = metaSchemaErrors(pair);
    for (const e of invalid) console.error(`error: ${e}`);
    if (invalid.length > 0) return 1;
    const report = checkCompatibility(pair[0]!.schema, pair[1]!.schema);
    const broken = brokenDirections(report, requirement);
    console.log(describe(`${values.old} → ${values.new}`, report, broken).join('\n'));
    return broken.length > 0 ? 1 : 0;
  }
  const files = loadSchemaDir(values.dir);
  const chains = checkVersionChains(files, requirement);
  const { steps } = chains;
  const errors = [...metaSchemaErrors(files), ...chains.errors];
  for (const e of errors) console.error(`error: ${e}`);
  for (const step of steps) console.log(describe(`${step.name} v${step.from} → v${step.to}`, step.report, step.broken).join('\n'));
  const breaking = steps.filter((s) => s.broken.length > 0);
  console.log(
    `${files.length} schema files, ${steps.length} version steps checked: ${breaking.length === 0 && errors.length === 0 ? 'all compatible' : `${breaking.length} breaking, ${errors.length} errors`}`,
  );
  return breaking.length > 0 || errors.length > 0 ? 1 : 0;
}

export const command: Command = {
  summary: 'generate types from the JSON Schemas (gen-types) or check schema compatibility (check)',
  subcommands: ['gen-types', 'check'],
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === '--help' || sub === 'help' || rest.includes('--help')) {
      console.log(usage);
      return 0;
    }
    if (sub === 'gen-types') return genTypes(rest);
    if (sub === 'check') return check(rest);
    console.error(usage);
    return 2;
  },
};
