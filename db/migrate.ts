// Schema migrations: plain SQL files in db/migrations, named `<version>_<name>.sql`, applied in
// version order, each in its own transaction, recorded in schema_migrations with a checksum.
// A session advisory lock serializes concurrent migrators (`taskflow dev` and test setup may race).
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { TaskflowError } from '../lib/errors.js';

export const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'migrations');

/** Arbitrary constant naming the migration lock among the database's advisory locks. */
const MIGRATION_LOCK_KEY = 7_243_101_001n;

export interface MigrationFile {
  version: string;
  name: string;
  fileName: string;
  sql: string;
  checksum: string;
}

export interface AppliedMigration {
  version: string;
  name: string;
  checksum: string;
}

export function parseMigrationFileName(fileName: string): { version: string; name: string } {
  const m = /^(\d+)_([A-Za-z0-9_-]+)\.sql$/.exec(fileName);
  if (!m) {
    throw new TaskflowError('MIGRATION_BAD_NAME', `migration file "${fileName}" is not named <version>_<name>.sql`);
  }
  return { version: m[1]!, name: m[2]! };
}

export function checksum(sql: string): string {
  return createHash('sha256').update(sql).digest('hex');
}

export function readMigrationFiles(dir = MIGRATIONS_DIR): MigrationFile[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .map((fileName) => {
      const sql = readFileSync(join(dir, fileName), 'utf8');
      return { ...parseMigrationFileName(fileName), fileName, sql, checksum: checksum(sql) };
    })
    .sort((a, b) => compareVersions(a.version, b.version));
  for (let i = 1; i < files.length; i++) {
    if (compareVersions(files[i - 1]!.version, files[i]!.version) === 0) {
      throw new TaskflowError('MIGRATION_DUPLICATE_VERSION', `two migration files share version ${files[i]!.version}: ${files[i - 1]!.fileName}, ${files[i]!.fileName}`);
    }
  }
  return files;
}

/** Numeric order, so "10" sorts after "9" even without zero padding. */
function compareVersions(a: string, b: string): number {
  const d = BigInt(a) - BigInt(b);
  return d === 0n ? 0 : d < 0n ? -1 : 1;
}

/**
 * Which files still need applying. Refuses when an applied file was edited afterwards (its
 * checksum changed) or when the database has a migration this checkout does not know (it was
 * migrated by newer code): either way applying "the rest" would build a schema nobody wrote.
 */
export function pendingMigrations(files: readonly MigrationFile[], applied: readonly AppliedMigration[]): MigrationFile[] {
  const byVersion = new Map(files.map((f) => [BigInt(f.version), f]));
  for (const a of applied) {
    const file = byVersion.get(BigInt(a.version));
    if (!file) {
      throw new TaskflowError('MIGRATION_UNKNOWN', `database has migration ${a.version}_${a.name}, which is not in the migrations folder (database migrated by newer code?)`);
    }
    if (file.checksum !== a.checksum) {
      throw new TaskflowError(
        'MIGRATION_CHANGED',
        `migration ${file.fileName} was changed after it was applied (checksum ${a.checksum.slice(0, 12)}… in the database, ${file.checksum.slice(0, 12)}… on disk); add a new migration instead of editing an applied one`,
      );
    }
  }
  const done = new Set(applied.map((a) => BigInt(a.version)));
  return files.filter((f) => !done.has(BigInt(f.version)));
}

/** Applies pending migrations; returns the file names applied by this call (empty when up to date). */
export async function migrate(databaseUrl: string, options: { dir?: string } = {}): Promise<string[]> {
  const files = readMigrationFiles(options.dir);
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'taskflow-migrate' });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version     text PRIMARY KEY,
        name        text NOT NULL,
        checksum    text NOT NULL,
        applied_at  timestamptz NOT NULL DEFAULT now()
      )`);
      const { rows } = await client.query<AppliedMigration>('SELECT version, name, checksum FROM schema_migrations');
      const applied: string[] = [];
      for (const file of pendingMigrations(files, rows)) {
        await applyOne(client, file);
        applied.push(file.fileName);
      }
      return applied;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY.toString()]);
    }
  } finally {
    await client.end();
  }
}

async function applyOne(client: pg.Client, file: MigrationFile): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query(file.sql);
    await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [file.version, file.name, file.checksum]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw new TaskflowError('MIGRATION_FAILED', `migration ${file.fileName} failed: ${(err as Error).message}`, { cause: err });
  }
}
