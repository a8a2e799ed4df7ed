// The SDK as a frontend team gets it: `npm pack` makes the tarball (prepack builds dist/), npm
// installs it into an empty project, and that project imports it by its package name through
// ESM and CommonJS, bundles it for a browser, and finds the files its manifest names.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageDir } from '../scripts/build.mjs';

const npm = (args: string[], cwd: string): string =>
  execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } });

describe('the packed SDK installs into an empty project', () => {
  const work = mkdtempSync(join(tmpdir(), 'taskflow-sdk-install-'));
  const app = join(work, 'app');
  let tarball = '';

  beforeAll(() => {
    const packed = JSON.parse(npm(['pack', '--json', '--pack-destination', work], packageDir)) as { filename: string; files: { path: string }[] }[];
    tarball = join(work, packed[0]!.filename);
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'sdk-consumer', version: '1.0.0', private: true }));
    // mqtt comes from npm's cache, filled by the repository's own install.
    npm(['install', '--prefer-offline', '--no-package-lock', tarball], app);
  }, 120_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('ships only dist, README and SPEC besides its manifest', () => {
    const listing = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).trim().split('\n');
    expect(listing.filter((f) => !/^package\/(dist\/|README\.md$|SPEC\.md$|package\.json$)/.test(f))).toEqual([]);
  });

  it('imports by package name through ESM and CommonJS', () => {
    const esm = execFileSync(process.execPath, ['--input-type=module', '-e', "import('@taskflow/realtime').then((m) => console.log(typeof m.createClient))"], { cwd: app, encoding: 'utf8' });
    expect(esm.trim()).toBe('function');
    const cjs = execFileSync(process.execPath, ['-e', "console.log(typeof require('@taskflow/realtime').createClient)"], { cwd: app, encoding: 'utf8' });
    expect(cjs.trim()).toBe('function');
  });

  it('bundles for a browser from the installed package', async () => {
    writeFileSync(join(app, 'main.js'), "import { createClient } from '@taskflow/realtime';\nwindow.client = createClient;\n");
    const result = await build({ entryPoints: [join(app, 'main.js')], bundle: true, platform: 'browser', format: 'iife', write: false, absWorkingDir: app, logLevel: 'silent' });
    expect(result.errors).toEqual([]);
    expect(result.outputFiles[0]!.text).toContain('createClient');
  });

  it('has every file its manifest points to', () => {
    const dir = join(app, 'node_modules', '@taskflow', 'realtime');
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
    const exportTargets = (value: unknown): unknown[] => (typeof value === 'object' && value !== null ? Object.values(value).flatMap(exportTargets) : [value]);
    const targets = new Set([manifest.main, manifest.module, manifest.types, manifest.unpkg, ...exportTargets(manifest.exports)]);
    expect(targets.size).toBe(7); // esm + cjs code and types, the two browser bundles, the manifest
    const missing = [...targets].filter((t): t is string => typeof t === 'string' && !existsSync(join(dir, t)));
    expect(missing).toEqual([]);
  });
});
