import { describe, expect, it } from '@jest/globals';
import { checksum, parseMigrationFileName, pendingMigrations, readMigrationFiles, type MigrationFile } from './migrate.js';

function file(version: string, name: string, sql: string): MigrationFile {
  return { version, name, fileName: `${version}_${name}.sql`, sql, checksum: checksum(sql) };
}

describe('migration planning', () => {
  const files = [file('0001', 'core', 'CREATE TABLE a ();'), file('0002', 'more', 'CREATE TABLE b ();')];

  it('parses <version>_<name>.sql and rejects other names', () => {
    expect(parseMigrationFileName('0007_add_labels.sql')).toEqual({ version: '0007', name: 'add_labels' });
    expect(() => parseMigrationFileName('add_labels.sql')).toThrow(/not named/);
  });

  it('applies everything on an empty database and nothing when up to date', () => {
    expect(pendingMigrations(files, []).map((f) => f.fileName)).toEqual(['0001_core.sql', '0002_more.sql']);
    expect(pendingMigrations(files, files)).toEqual([]);
    expect(pendingMigrations(files, [files[0]!]).map((f) => f.fileName)).toEqual(['0002_more.sql']);
  });

  it('refuses when an applied file was edited', () => {
    const applied = [{ ...files[0]!, checksum: checksum('CREATE TABLE a (x int);') }];
    expect(() => pendingMigrations(files, applied)).toThrow(/0001_core.sql was changed after it was applied/);
  });

  it('refuses when the database knows a migration the checkout does not', () => {
    expect(() => pendingMigrations(files.slice(0, 1), files)).toThrow(/0002_more.*not in the migrations folder/);
  });

  it('reads the real migrations folder in version order', () => {
    const real = readMigrationFiles();
    expect(real[0]?.fileName).toBe('0001_core.sql');
    expect(real.map((f) => BigInt(f.version))).toEqual([...real.map((f) => BigInt(f.version))].sort((a, b) => (a < b ? -1 : 1)));
  });
});
