import { describe, expect, it } from '@jest/globals';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { PERSONAL_FIELDS, PROCESSOR_SINKS, SINKS } from './policy.js';

const root = join(import.meta.dirname, '..');
const policy = readFileSync(join(root, 'gdpr/POLICY.md'), 'utf8');

/** The rows of the markdown table between `<!-- name:begin -->` and `<!-- name:end -->`. */
function table(name: string): string[][] {
  const body = policy.split(`<!-- ${name}:begin -->`)[1]?.split(`<!-- ${name}:end -->`)[0];
  if (!body) throw new Error(`POLICY.md has no ${name} table`);
  return body.trim().split('\n').slice(2).map((line) => line.split('|').slice(1, -1).map((c) => c.trim().replace(/^`|`$/g, '')));
}

/** `<service>/erasure-sink.ts` files: where the purge steps and scans live. */
function sinkModules(): string[] {
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(root, d.name, 'erasure-sink.ts')))
    .map((d) => join(root, d.name, 'erasure-sink.ts'));
}

describe('gdpr/POLICY.md and the code', () => {
  it('the catalog mirrors the policy tables (sink, method, reached by; every personal field)', () => {
    expect(table('sinks').map(([sink, , method, , reachedBy]) => ({ sink, method, reachedBy }))).toEqual(SINKS.map((s) => ({ ...s })));
    expect(table('fields').map(([field]) => field)).toEqual([...PERSONAL_FIELDS]);
  });

  it('every sink the processor reaches has a purge step and a scan in code, and code purges no other sink', async () => {
    const implemented: string[] = [];
    for (const file of sinkModules()) {
      const mod = (await import(file)) as { ERASURE_SINKS?: readonly { sink: string; purge: unknown; scan: unknown }[] };
      expect(mod.ERASURE_SINKS).toBeDefined();
      for (const s of mod.ERASURE_SINKS!) {
        expect(typeof s.purge).toBe('function');
        expect(typeof s.scan).toBe('function');
        implemented.push(s.sink);
      }
    }
    expect(implemented.sort()).toEqual([...PROCESSOR_SINKS].sort());
  });
});
