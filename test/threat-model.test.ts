// The threat model maps every threat to a test or an accepted risk: this keeps the map honest —
// every row says which, every file it names exists, and every test it names by title is in that
// file, so a renamed, moved or deleted test fails here instead of leaving a row pointing at nothing.
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

/** Repository paths in backticks (`lib/authz.ts`, `runbooks/x.md`, `scripts/audit-allowlist.json`). */
const pathsIn = (text: string): string[] => [...text.matchAll(/`([\w.-]+(?:\/[\w.-]+)+\.(?:ts|md|json|mjs|yml))`/g)].map((m) => m[1]!);

/** `file.test.ts` ("title") pairs: a test named by (part of) its title. */
const namedTests = (text: string): { file: string; title: string }[] => [...text.matchAll(/`([\w./-]+\.test\.ts)` \("([^"]+)"\)/g)].map((m) => ({ file: m[1]!, title: m[2]! }));

/** The titles of a test file's describe/it/test blocks. */
function titlesOf(file: string): string[] {
  const source = readFileSync(join(root, file), 'utf8');
  return [...source.matchAll(/\b(?:describe|it|test)(?:\.each\([\s\S]*?\))?\(\s*(['"`])((?:\\.|(?!\1).)*)\1/g)].map((m) => m[2]!.replace(/\\(.)/g, '$1'));
}

/** Why a row's status points to nothing, or undefined when it names an existing test, runbook or a stated risk. */
function statusProblem(status: string, exists: (path: string) => boolean = (p) => existsSync(join(root, p))): string | undefined {
  if (/^accepted\b/.test(status) && status.length > 'accepted risk'.length) return undefined;
  if (/^accepted\b/.test(status) || /^open\b/.test(status)) return /^open: issue \d+/.test(status) ? undefined : 'an accepted risk or open item without its reason or issue';
  const evidence = pathsIn(status).filter((p) => /\.test\.ts$|^runbooks\/.+\.md$/.test(p));
  if (evidence.length === 0) return 'names no test or runbook (nor says "accepted" with a reason, or "open: issue N")';
  const missing = evidence.filter((p) => !exists(p));
  return missing.length > 0 ? `names ${missing.join(', ')}, which does not exist` : undefined;
}

describe('docs/THREAT_MODEL.md', () => {
  it('maps every threat to an existing test or runbook, an accepted risk with its reason, or an open issue', () => {
    const rows = threatRows();
    expect(rows.length).toBeGreaterThan(30);
    const problems = rows.flatMap((row) => {
      if (row.length !== 4) return [`${row.join(' | ')}: not four cells`];
      const problem = statusProblem(row[3]!);
      return problem ? [`${row[1]}: ${problem}`] : [];
    });
    expect(problems).toEqual([]);
  });

  it('names only files that exist (tests, runbooks and the controls of the defence column)', () => {
    const paths = pathsIn(doc);
    expect(paths.length).toBeGreaterThan(30);
    expect(paths.filter((p) => !existsSync(join(root, p)))).toEqual([]);
  });

  it('names only tests whose titles are in the files it names', () => {
    const named = namedTests(doc);
    expect(named.length).toBeGreaterThan(2);
    const missing = named.filter(({ file, title }) => !existsSync(join(root, file)) || !titlesOf(file).some((t) => t.includes(title)));
    expect(missing).toEqual([]);
  });

  it('refuses a row that points to nothing', () => {
    const exists = (p: string) => p === 'lib/authz.test.ts';
    expect(statusProblem('`lib/authz.test.ts`', exists)).toBeUndefined();
    expect(statusProblem('`lib/gone.test.ts`', exists)).toMatch(/lib\/gone\.test\.ts, which does not exist/);
    expect(statusProblem('infra/aws IAM', exists)).toMatch(/names no test/);
    expect(statusProblem('least-privilege table', exists)).toMatch(/names no test/);
    expect(statusProblem('accepted', exists)).toMatch(/without its reason/);
    expect(statusProblem('accepted risk: a held connection costs a socket', exists)).toBeUndefined();
    expect(statusProblem('open: issue 16', exists)).toBeUndefined();
  });
});
