// Packaging checks that need no committed dist/: the size budget, that the browser code pulls in
// nothing but its own sources (no service code, no schemas at run time), and that the ESM and
// CJS builds load in Node.
import { afterAll, describe, expect, it } from '@jest/globals';
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { budgetOptions, buildDeclarations, buildJavaScript, packageDir } from '../scripts/build.mjs';

const BUDGET_BYTES = 15 * 1024;

describe('bundle budget', () => {
  it(`keeps the SDK's own code (mqtt excluded) within ${BUDGET_BYTES} bytes minified and gzipped`, async () => {
    const result = await build({ ...budgetOptions(), metafile: true });
    const code = result.outputFiles[0]!.contents;
    const gzipped = gzipSync(code, { level: 9 }).length;
    console.log(`@taskflow/realtime: ${code.length} B minified, ${gzipped} B min+gzip`);
    expect(gzipped).toBeLessThanOrEqual(BUDGET_BYTES);
    // Only the package's own sources are bundled; mqtt stays an import.
    const inputs = Object.keys(result.metafile.inputs).map((p) => relative(packageDir, join(process.cwd(), p)));
    expect(inputs.filter((p) => !p.startsWith('src/'))).toEqual([]);
    expect(new TextDecoder().decode(code)).toMatch(/from\s*"mqtt"/);
  });
});

describe('package outputs', () => {
  // Under the repository's node_modules so that the builds' `mqtt` import resolves.
  const cache = join(packageDir, '..', '..', 'node_modules', '.cache');
  const outDir = mkdtempSync(join(existsSync(cache) ? cache : packageDir, 'taskflow-realtime-build-'));
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));

  it('builds ESM, CJS and browser bundles that match the exports map and load in Node', async () => {
    await buildJavaScript(outDir);
    const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as {
      exports: Record<string, unknown>;
      dependencies: Record<string, string>;
      sideEffects: boolean;
    };
    expect(manifest.sideEffects).toBe(false);
    expect(Object.keys(manifest.dependencies).length).toBeLessThanOrEqual(2);
    const targets = JSON.stringify(manifest.exports).match(/\.\/dist\/[^"]+\.js/g) ?? [];
    expect(targets.length).toBeGreaterThanOrEqual(3);
    for (const target of targets) expect(existsSync(join(outDir, target.replace('./dist/', '')))).toBe(true);

    const cjs = execFileSync(process.execPath, ['-e', `console.log(typeof require(${JSON.stringify(join(outDir, 'cjs', 'index.js'))}).createClient)`]);
    expect(cjs.toString().trim()).toBe('function');
    const esmUrl = new URL(`file://${join(outDir, 'esm', 'index.js')}`).href;
    const esm = execFileSync(process.execPath, ['--input-type=module', '-e', `console.log(typeof (await import(${JSON.stringify(esmUrl)})).createClient)`]);
    expect(esm.toString().trim()).toBe('function');
  });

  it('ships declarations that need nothing outside the package, for ESM and CJS consumers', () => {
    buildDeclarations(outDir);
    writeFileSync(
      join(outDir, 'consumer.mts'),
      `import { createClient, isTableChange, type Change } from './esm/index.js';
const client = createClient({ url: 'ws://x', getToken: async () => 't', replayUrl: 'http://x' });
client.subscribeProject('w', 'p', {
  onChange: (change: Change) => {
    if (change.mode === 'full' && isTableChange(change.event, 'tasks')) {
      const status = change.event.data.after?.status;
      // @ts-expect-error a typed status (a string union) is no number; an unresolved type (any) would be
      const wrong: number = status;
      const narrowed: 'todo' | 'in_progress' | 'review' | 'done' | undefined = status;
      void wrong, void narrowed;
    }
  },
  onResync: ({ latestSeq }) => void latestSeq,
});
`,
    );
    writeFileSync(join(outDir, 'consumer.cts'), `import { createClient } from './cjs/index.js';\nexport const make = createClient;\n`);
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--lib', 'es2022,dom', '--types', 'node', '--skipLibCheck'];
    execFileSync(process.execPath, [tsc, ...args, join(outDir, 'consumer.mts'), join(outDir, 'consumer.cts')], { stdio: 'pipe' });
    const dts = readFileSync(join(outDir, 'esm', 'change-event.d.ts'), 'utf8');
    expect(dts).toContain("from './generated/envelope.v1.js'");
    expect(dts).not.toContain('../');
  }, 120_000);
});
