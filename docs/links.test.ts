// The repository's docs stand alone: every relative link in a tracked Markdown file resolves to a
// file or folder inside the repository, and no tracked file refers to material outside it.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from '@jest/globals';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..');
const tracked = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
const markdown = tracked.filter((f) => f.endsWith('.md') && existsSync(join(ROOT, f)));

/** Relative link targets of a Markdown text: `[text](target)`, without a `#fragment`. */
export function relativeLinks(text: string): string[] {
  const targets: string[] = [];
  for (const match of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    const target = match[1]!;
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) continue;
    const path = target.split('#')[0]!;
    if (path !== '') targets.push(decodeURIComponent(path));
  }
  return targets;
}

describe('docs', () => {
  it('finds relative links and skips URLs and fragments', () => {
    expect(relativeLinks('[a](docs/A.md) [b](https://x.org/y) [c](#top) [d](../x.md#part "t")')).toEqual(['docs/A.md', '../x.md']);
  });

  it('has a README, an architecture page and an operations page', () => {
    for (const f of ['README.md', 'docs/ARCHITECTURE.md', 'docs/OPERATIONS.md']) expect(markdown).toContain(f);
  });

  it('links only to files inside the repository', () => {
    const broken: string[] = [];
    for (const file of markdown) {
      for (const target of relativeLinks(readFileSync(join(ROOT, file), 'utf8'))) {
        const abs = resolve(ROOT, dirname(file), target);
        const inside = !relative(ROOT, abs).startsWith('..');
        if (!inside || !existsSync(abs)) broken.push(`${file} → ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('never points to the design notes outside the repository', () => {
    const outside = /\.\.\/shared\b|\bDESIGN\.md\b/;
    const offenders = tracked.filter((f) => f !== 'docs/links.test.ts' && existsSync(join(ROOT, f)) && !f.endsWith('.gz') && !f.endsWith('package-lock.json') && outside.test(readFileSync(join(ROOT, f), 'utf8')));
    expect(offenders).toEqual([]);
  });
});
