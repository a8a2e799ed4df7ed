import { describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALLOWLIST_FILE, auditProblems, installScriptProblems, writeSboms, type AuditReport } from './supply-chain.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const report: AuditReport = {
  vulnerabilities: {
    leftpad: { severity: 'high', via: [{ source: 1, url: 'https://github.com/advisories/GHSA-aaaa-bbbb-cccc', title: 'prototype pollution', severity: 'high' }] },
    app: { severity: 'high', via: ['leftpad'] },
  },
};

describe('npm audit against the allowlist', () => {
  const entry = { advisory: 'GHSA-aaaa-bbbb-cccc', package: 'leftpad', reason: 'not reachable: only used by the bench', expires: '2027-01-31' };

  it('fails on an advisory nobody reviewed, once per advisory and package', () => {
    expect(auditProblems(report, [], '2026-12-02')).toEqual([expect.stringMatching(/^high GHSA-aaaa-bbbb-cccc in leftpad: prototype pollution/)]);
  });

  it('passes an allowlisted advisory until its entry expires, then fails naming the entry', () => {
    expect(auditProblems(report, [entry], '2026-12-02')).toEqual([]);
    const expired = auditProblems(report, [entry], '2027-01-31');
    expect(expired).toContainEqual(expect.stringMatching(/GHSA-aaaa-bbbb-cccc \(leftpad\) expired on 2027-01-31/));
    expect(expired).toContainEqual(expect.stringMatching(/^high GHSA-aaaa-bbbb-cccc in leftpad/));
  });

  it('refuses entries without a reason or a valid expiry', () => {
    expect(auditProblems({}, [{ ...entry, reason: ' ' }], '2026-12-02')).toEqual([expect.stringMatching(/needs advisory, package, reason and expires/)]);
    expect(auditProblems({}, [{ ...entry, expires: 'soon' }], '2026-12-02')).toHaveLength(1);
  });

  it('keeps the repository allowlist well-formed and unexpired', () => {
    const allowlist = JSON.parse(readFileSync(ALLOWLIST_FILE, 'utf8')) as never[];
    expect(auditProblems({}, allowlist, new Date().toISOString().slice(0, 10))).toEqual([]);
  });
});

describe('install scripts', () => {
  const lock = { packages: { '': {}, 'node_modules/a': { hasInstallScript: true }, 'node_modules/x/node_modules/b': { hasInstallScript: true }, 'node_modules/c': {} } };

  it('needs a recorded decision for every installed package that runs one, and no stale decisions', () => {
    expect(installScriptProblems(lock, { a: true, b: false }, () => true)).toEqual([]);
    expect(installScriptProblems(lock, { a: true }, () => true)).toEqual([expect.stringMatching(/^b \(node_modules\/x\/node_modules\/b\) runs an install script/)]);
    expect(installScriptProblems(lock, { a: true }, (p) => p !== 'node_modules/x/node_modules/b')).toEqual([]);
    expect(installScriptProblems(lock, { a: true, b: true, c: true }, () => true)).toEqual([expect.stringMatching(/^allowScripts decides on c, which has no install script/)]);
  });

  it('holds for this repository: installed packages with install scripts are exactly the approved list', () => {
    const lockFile = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as Parameters<typeof installScriptProblems>[0];
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { allowScripts: Record<string, boolean> };
    expect(installScriptProblems(lockFile, pkg.allowScripts, (p) => existsSync(join(root, p, 'package.json')))).toEqual([]);
    // The lock file's flags match what is really installed (a package.json with install hooks).
    const hooks = ['preinstall', 'install', 'postinstall'];
    const installedWithHooks: string[] = [];
    const visit = (dir: string): void => {
      for (const name of existsSync(dir) ? readdirSync(dir) : []) {
        if (name.startsWith('.')) continue;
        if (name.startsWith('@')) {
          visit(join(dir, name));
          continue;
        }
        const manifest = join(dir, name, 'package.json');
        if (!existsSync(manifest)) continue;
        const scripts = (JSON.parse(readFileSync(manifest, 'utf8')) as { scripts?: Record<string, string> }).scripts ?? {};
        if (hooks.some((h) => h in scripts)) installedWithHooks.push(join(dir, name).slice(root.length + 1));
        visit(join(dir, name, 'node_modules'));
      }
    };
    visit(join(root, 'node_modules'));
    for (const path of installedWithHooks) expect(`${path}: ${String(lockFile.packages[path]?.hasInstallScript)}`).toBe(`${path}: true`);
  });
});

describe('npm run sbom', () => {
  it('writes CycloneDX SBOMs of the services and of the SDK package', () => {
    const files = writeSboms(mkdtempSync(join(tmpdir(), 'sbom-')));
    const services = JSON.parse(readFileSync(files.services, 'utf8')) as { bomFormat: string; components: Array<{ name: string; version: string }> };
    const sdk = JSON.parse(readFileSync(files.sdk, 'utf8')) as { bomFormat: string; metadata: { component: { name: string } }; components?: Array<{ name: string }> };
    expect(services.bomFormat).toBe('CycloneDX');
    const names = services.components.map((c) => c.name);
    for (const dep of ['pg', 'pino', 'jose', 'mqtt']) expect(names).toContain(dep);
    expect(names).not.toContain('jest'); // production dependencies only
    expect(sdk.bomFormat).toBe('CycloneDX');
    expect(sdk.metadata.component.name).toBe('@taskflow/realtime');
    const sdkNames = (sdk.components ?? []).map((c) => c.name);
    expect(sdkNames).toContain('mqtt');
    for (const service of ['pg', 'pino', 'jose', 'web-sdk']) expect(sdkNames).not.toContain(service); // what the SDK ships, nothing else
  }, 60_000);
});
