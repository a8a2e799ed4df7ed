// `taskflow schemas gen-types | check | publish`: regenerate the TypeScript from the JSON Schemas,
// refuse schema changes that would break readers of the stream or edit a published version, and
// record new versions as published.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { Command } from '../command.js';
import { loadSchemaDir, readSchemaFile } from '../../schemas/catalog.js';
import { generateFiles } from '../../schemas/codegen.js';
import { brokenDirections, checkCompatibility, checkVersionChains, removedProperties, type CompatibilityReport, type Direction, type Requirement } from '../../schemas/compat.js';
import { checkPublished, LOCK_FILE, publish, readLock, writeLock } from '../../schemas/published.js';
import { UPCASTERS } from '../../schemas/upcasters.js';

const defaultDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'schemas');

const usage = `usage:
  taskflow schemas gen-types [--dir schemas]          write <dir>/generated/*.ts from the JSON Schemas
  taskflow schemas check [--dir schemas]              check every schema version against the previous one, and
                                                      every published version against <dir>/${LOCK_FILE}
  taskflow schemas check --old a.json --new b.json    check one schema change
  taskflow schemas publish [--dir schemas]            record the versions not published yet in <dir>/${LOCK_FILE}
                                                      (once a writer may emit them; a published version never changes)
options of check:
  --require both|backward|forward   which compatibility a change must keep (default both:
                                    new readers read old events AND old readers read new events)`;

const SUBCOMMANDS = ['gen-types', 'check', 'publish'] as const;

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

interface StepFacts {
  /** Properties the old version declared and the new one does not. */
  removed?: string[];
  /** "<name> v<from>" when a step is checked against the registered upcasters, with whether one is registered. */
  upcaster?: { from: string; registered: boolean };
}

function describe(label: string, report: CompatibilityReport, broken: Direction[], facts: StepFacts = {}): string[] {
  const lines = [`${label}: ${broken.length > 0 ? 'BREAKING' : 'ok'}`];
  const removed = facts.removed ?? [];
  const carried = facts.upcaster?.registered === true;
  for (const d of ['backward', 'forward'] as const) {
    const lost = d === 'backward' ? removed : [];
    if (report[d].compatible && lost.length === 0) continue;
    const marker = broken.includes(d) ? '' : d === 'backward' && carried ? ` (carried by the upcaster from ${facts.upcaster!.from})` : ' (allowed by --require)';
    lines.push(`  ${DIRECTION_LABEL[d]}${marker}:`);
    for (const p of report[d].problems) lines.push(`    [${p.rule}] ${p.message}`);
    for (const field of lost) {
      const fix = carried ? `the upcaster from ${facts.upcaster!.from} carries it over` : `register an upcaster from ${facts.upcaster?.from ?? 'the old version'} in schemas/upcasters.ts`;
      lines.push(`    [removed] ${field}: declared by the old version, not by the new one: new readers would drop the value old events carry (a rename or a retype); ${fix}`);
    }
  }
  if (removed.length > 0) {
    lines.push(`  note: readers still on the old version stop seeing ${removed.join(', ')} once writers stop emitting it: keep it on the stream through the deprecation window (schemas/CONTRACTS.md)`);
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
    const removed = removedProperties(pair[0]!.schema, pair[1]!.schema);
    // No upcaster can be named for a pair of files: a removed property breaks new readers.
    const broken = brokenDirections(report, requirement);
    if (removed.length > 0 && requirement !== 'forward' && !broken.includes('backward')) broken.unshift('backward');
    console.log(describe(`${values.old} → ${values.new}`, report, broken, { removed }).join('\n'));
    return broken.length > 0 ? 1 : 0;
  }
  const files = loadSchemaDir(values.dir);
  const chains = checkVersionChains(files, requirement, new Set(UPCASTERS.map((u) => `${u.schema}/v${u.fromVersion}`)));
  const { steps } = chains;
  const published = checkPublished(readLock(values.dir), files);
  const errors = [...metaSchemaErrors(files), ...chains.errors, ...published.errors];
  for (const e of errors) console.error(`error: ${e}`);
  for (const step of steps) {
    const facts = { removed: step.removed, upcaster: { from: `${step.name} v${step.from}`, registered: step.upcaster } };
    console.log(describe(`${step.name} v${step.from} → v${step.to}`, step.report, step.broken, facts).join('\n'));
  }
  if (published.unpublished.length > 0) console.log(`not published yet: ${published.unpublished.join(', ')} (\`taskflow schemas publish\` once a writer may emit them)`);
  const breaking = steps.filter((s) => s.broken.length > 0);
  console.log(
    `${files.length} schema files (${files.length - published.unpublished.length} published), ${steps.length} version steps checked: ${breaking.length === 0 && errors.length === 0 ? 'all compatible' : `${breaking.length} breaking, ${errors.length} errors`}`,
  );
  return breaking.length > 0 || errors.length > 0 ? 1 : 0;
}

/** Publishing is safe only for files that pass check: a broken version must not become immutable. */
function publishCommand(argv: string[]): number {
  const { values } = parseArgs({ args: argv, options: { dir: { type: 'string', default: defaultDir } } });
  if (check(['--dir', values.dir]) !== 0) {
    console.error('nothing published: fix the errors above first');
    return 1;
  }
  const { lock, added } = publish(readLock(values.dir), loadSchemaDir(values.dir));
  if (added.length === 0) {
    console.log('every schema version is already published');
    return 0;
  }
  writeLock(values.dir, lock);
  console.log(`published ${added.join(', ')} in ${join(values.dir, LOCK_FILE)}`);
  return 0;
}

export const command: Command = {
  summary: 'JSON Schemas: generate types (gen-types), check compatibility and immutability (check), publish versions (publish)',
  subcommands: SUBCOMMANDS,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === '--help' || sub === 'help' || rest.includes('--help')) {
      console.log(usage);
      return 0;
    }
    if (sub === 'gen-types') return genTypes(rest);
    if (sub === 'check') return check(rest);
    if (sub === 'publish') return publishCommand(rest);
    console.error(usage);
    return 2;
  },
};
