// Builds the package: dist/esm (ESM), dist/cjs (CommonJS), each with .d.ts; dist/browser (minified
// bundles with mqtt.js inside, ESM and IIFE `TaskflowRealtime`). esbuild bundles the JavaScript;
// tsc emits declarations, and the event types they use (schemas/generated, outside this package)
// are shipped inside dist as `generated/` so the package is self-contained.
// Run: npm run build -w @taskflow/realtime   (or node scripts/build.mjs <outDir>)
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(packageDir, 'src', 'index.ts');
const target = ['es2020', 'chrome100', 'firefox100', 'safari15', 'node18'];

/** esbuild options of each JavaScript output; `mqtt` stays external except in the browser bundles. */
export function bundleOptions(outDir) {
  const common = { entryPoints: [entry], bundle: true, target, sourcemap: true, legalComments: 'none', logLevel: 'warning' };
  return {
    esm: { ...common, format: 'esm', platform: 'neutral', external: ['mqtt'], outfile: join(outDir, 'esm', 'index.js') },
    cjs: { ...common, format: 'cjs', platform: 'node', external: ['mqtt'], outfile: join(outDir, 'cjs', 'index.js') },
    browser: { ...common, format: 'esm', platform: 'browser', minify: true, outfile: join(outDir, 'browser', 'taskflow-realtime.min.js') },
    iife: {
      ...common,
      format: 'iife',
      globalName: 'TaskflowRealtime',
      platform: 'browser',
      minify: true,
      outfile: join(outDir, 'browser', 'taskflow-realtime.iife.min.js'),
    },
  };
}

/** The SDK's own code as a browser would load it (minified, mqtt.js excluded): what the size budget counts. */
export function budgetOptions() {
  return { entryPoints: [entry], bundle: true, target, format: 'esm', platform: 'browser', minify: true, external: ['mqtt'], write: false, logLevel: 'warning' };
}

export async function buildJavaScript(outDir) {
  const options = bundleOptions(outDir);
  await Promise.all(Object.values(options).map((o) => build(o)));
  // dist/cjs holds CommonJS although the package is "type": "module".
  writeFileSync(join(outDir, 'cjs', 'package.json'), '{ "type": "commonjs" }\n');
}

export function buildDeclarations(outDir) {
  const tmp = join(outDir, '.types');
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(packageDir, 'tsconfig.build.json'), '--outDir', tmp], { stdio: 'inherit' });
  const own = join(tmp, 'clients', 'web-sdk', 'src');
  const generated = join(tmp, 'schemas', 'generated');
  for (const flavour of ['esm', 'cjs']) {
    const dir = join(outDir, flavour);
    cpSync(generated, join(dir, 'generated'), { recursive: true });
    for (const file of readdirSync(own)) {
      const text = readFileSync(join(own, file), 'utf8').replaceAll('../../../schemas/generated/', './generated/');
      writeFileSync(join(dir, file), text);
    }
  }
  rmSync(tmp, { recursive: true, force: true });
}

async function main() {
  const outDir = process.argv[2] ?? join(packageDir, 'dist');
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  await buildJavaScript(outDir);
  buildDeclarations(outDir);
  // On stderr, so `npm pack --json` (whose prepack runs this) keeps a clean stdout.
  console.error(`built ${outDir}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
