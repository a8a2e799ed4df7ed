// The schema files on disk: schemas/<name>/v<version>.json, each with a matching `$id`.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SchemaError } from './errors.js';
import { schemaId } from './schema-id.js';

export interface SchemaFile {
  name: string;
  version: number;
  path: string;
  schema: { [keyword: string]: unknown };
}

const VERSION_FILE = /^v(\d+)\.json$/;

export function readSchemaFile(path: string): { [keyword: string]: unknown } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new SchemaError('SCHEMA_UNREADABLE', `${path}: ${(err as Error).message}`, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new SchemaError('SCHEMA_UNREADABLE', `${path}: a schema file must hold a JSON object`);
  }
  return parsed as { [keyword: string]: unknown };
}

/** Every versioned schema under `dir`, sorted by name then version; fails on an `$id` that does not match its path. */
export function loadSchemaDir(dir: string): SchemaFile[] {
  const files: SchemaFile[] = [];
  for (const name of readdirSync(dir).sort()) {
    const folder = join(dir, name);
    if (name === 'generated' || !statSync(folder).isDirectory()) continue;
    for (const file of readdirSync(folder)) {
      const m = VERSION_FILE.exec(file);
      if (!m) continue;
      const path = join(folder, file);
      const schema = readSchemaFile(path);
      const version = Number(m[1]);
      const expected = schemaId({ name, version });
      if (schema.$id !== expected) {
        throw new SchemaError('SCHEMA_ID_MISMATCH', `${path}: $id must be "${expected}", found ${JSON.stringify(schema.$id)}`);
      }
      if (schema['x-version'] !== version) {
        throw new SchemaError('SCHEMA_ID_MISMATCH', `${path}: x-version must be ${version}, found ${JSON.stringify(schema['x-version'])}`);
      }
      files.push({ name, version, path, schema });
    }
  }
  return files.sort((a, b) => a.name.localeCompare(b.name) || a.version - b.version);
}
