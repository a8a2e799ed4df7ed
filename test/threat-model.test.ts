// The threat model maps every threat to a test or an accepted risk: this keeps the map honest —
// every row says which, and every test or runbook it names exists.
import { describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const doc = readFileSync(join(root, 'docs', 'THREAT_MODEL.md'), 'utf8');

/** Rows of the STRIDE tables: `| letter | threat | defence | test / status |`. */
function threatRows(): string[][] {
  return doc
    .split('\n')
    .filter((line) => /^\| [STRIDE] \|/.test(line))
    .map((line) => line.split('|').slice(1, -1).map((cell) => cell.trim()));
}

describe('docs/THREAT_MODEL.md', () => {
  it('maps every threat to a test, an accepted risk or an open item', () => {
    const rows = threatRows();
    expect(rows.length).toBeGreaterThan(30);
    for (const row of rows) {
      expect(row).toHaveLength(4);
      const status = row[3]!;
      expect(`${row[1]} → ${status}`).toMatch(/\.test\.ts`|accepted|open: issue \d+|runbooks\/|IAM|least-privilege table/);
    }
  });

  it('names only tests and runbooks that exist', () => {
    const paths = [...doc.matchAll(/`([\w./-]+\.(?:test\.ts|md))`/g)].map((m) => m[1]!);
    expect(paths.length).toBeGreaterThan(10);
    const missing = paths.filter((p) => p.includes('/') && !existsSync(join(root, p)));
    expect(missing).toEqual([]);
  });
});
