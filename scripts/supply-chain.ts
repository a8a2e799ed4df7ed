// Supply-chain checks (docs/THREAT_MODEL.md, "CI and secrets"):
//   tsx scripts/supply-chain.ts audit             npm audit against the reviewed allowlist (counted by `npm test`)
//   tsx scripts/supply-chain.ts install-scripts   installed packages with install scripts vs package.json allowScripts
//   tsx scripts/supply-chain.ts sbom [--out DIR]  CycloneDX SBOMs of the services and of the SDK package (`npm run sbom`)
// The decisions are pure functions of their inputs, tested in scripts/supply-chain.test.ts.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const ALLOWLIST_FILE = join(ROOT, 'scripts', 'audit-allowlist.json');
const SDK_WORKSPACE = 'clients/web-sdk';

/** A reviewed exception: this advisory may stay unfixed until `expires`, for `reason`. */
export interface AllowlistEntry {
  advisory: string;
  package: string;
  reason: string;
  /** YYYY-MM-DD; from that day on the entry fails the check until it is reviewed again. */
  expires: string;
}

/** The part of `npm audit --json` (report version 2) this reads. */
export interface AuditReport {
  vulnerabilities?: Record<string, { severity: string; via: Array<string | { source?: number; url?: string; title?: string; severity?: string }> }>;
}

export interface Advisory {
  id: string;
  package: string;
  severity: string;
  title: string;
}

/** The advisory id of an npm audit finding: its GHSA id from the URL, else npm's source number. */
function advisoryId(via: { source?: number; url?: string }): string {
  return /GHSA-[\w-]+/.exec(via.url ?? '')?.[0] ?? String(via.source);
}

export function advisories(report: AuditReport): Advisory[] {
  const out = new Map<string, Advisory>();
  for (const [pkg, v] of Object.entries(report.vulnerabilities ?? {})) {
    for (const via of v.via) {
      if (typeof via === 'string') continue; // "via another package": reported under that package
      const id = advisoryId(via);
      out.set(`${id} ${pkg}`, { id, package: pkg, severity: via.severity ?? v.severity, title: via.title ?? '' });
    }
  }
  return [...out.values()];
}

/** Problems that fail the audit: advisories not allowlisted, expired or malformed entries. */
export function auditProblems(report: AuditReport, allowlist: readonly AllowlistEntry[], today: string): string[] {
  const problems: string[] = [];
  for (const e of allowlist) {
    if (!e.advisory || !e.package || !e.reason?.trim() || !/^\d{4}-\d{2}-\d{2}$/.test(e.expires ?? '')) {
      problems.push(`allowlist entry ${JSON.stringify(e)} needs advisory, package, reason and expires (YYYY-MM-DD)`);
    } else if (e.expires <= today) {
      problems.push(`allowlist entry ${e.advisory} (${e.package}) expired on ${e.expires}: fix it or review it again`);
    }
  }
  const allowed = new Set(allowlist.filter((e) => e.expires > today).map((e) => `${e.advisory} ${e.package}`));
  for (const a of advisories(report)) {
    if (!allowed.has(`${a.id} ${a.package}`)) problems.push(`${a.severity} ${a.id} in ${a.package}: ${a.title} (fix it, or allowlist it with a reason and an expiry in scripts/audit-allowlist.json)`);
  }
  return problems;
}

interface LockFile {
  packages: Record<string, { name?: string; hasInstallScript?: boolean }>;
}

function packageName(lockPath: string, entry: { name?: string }): string {
  return entry.name ?? lockPath.slice(lockPath.lastIndexOf('node_modules/') + 'node_modules/'.length);
}

/**
 * Packages that run install scripts and are installed must have a recorded decision in
 * package.json `allowScripts` (true: runs, false: reviewed and not needed); a decision about a
 * package that has no install script any more is stale.
 */
export function installScriptProblems(lock: LockFile, allowScripts: Record<string, boolean>, installed: (lockPath: string) => boolean): string[] {
  const withScripts = Object.entries(lock.packages).filter(([path, e]) => path !== '' && e.hasInstallScript);
  const problems = withScripts
    .filter(([path, e]) => installed(path) && !(packageName(path, e) in allowScripts))
    .map(([path, e]) => `${packageName(path, e)} (${path}) runs an install script that package.json allowScripts has no decision on`);
  const known = new Set(withScripts.map(([path, e]) => packageName(path, e)));
  for (const name of Object.keys(allowScripts)) if (!known.has(name)) problems.push(`allowScripts decides on ${name}, which has no install script in package-lock.json (stale entry)`);
  return problems;
}

function npm(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('npm', args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function runAudit(): number {
  const allowlist = JSON.parse(readFileSync(ALLOWLIST_FILE, 'utf8')) as AllowlistEntry[];
  const today = new Date().toISOString().slice(0, 10);
  const r = npm(['audit', '--json']);
  const report = JSON.parse(r.stdout || '{}') as AuditReport & { statusCode?: number; message?: string };
  if (!report.vulnerabilities) {
    // The registry did not answer with a report (offline, or a mirror without the advisory API).
    // Allowlist problems still fail; the unaudited tree is said loudly, and fails with AUDIT_REQUIRED=1.
    const problems = auditProblems({}, allowlist, today);
    for (const p of problems) console.log(`audit: ${p}`);
    console.log(`audit: NOT AUDITED — the registry gave no advisory report (${report.message ?? (r.stderr.trim().split('\n')[0] || `exit ${r.status}`)})`);
    return problems.length > 0 || process.env.AUDIT_REQUIRED === '1' ? 1 : 0;
  }
  const problems = auditProblems(report, allowlist, today);
  for (const p of problems) console.log(`audit: ${p}`);
  console.log(`audit: ${advisories(report).length} advisories, ${allowlist.length} allowlisted, ${problems.length} problems`);
  return problems.length > 0 ? 1 : 0;
}

function runInstallScripts(): number {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as LockFile;
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> };
  const problems = installScriptProblems(lock, pkg.allowScripts ?? {}, (path) => existsSync(join(ROOT, path, 'package.json')));
  for (const p of problems) console.log(`install scripts: ${p}`);
  return problems.length > 0 ? 1 : 0;
}

interface CycloneDx {
  metadata: { component: { 'bom-ref': string; name: string; purl?: string } };
  components?: Array<{ 'bom-ref': string; name: string; purl?: string }>;
  dependencies?: Array<{ ref: string; dependsOn?: string[] }>;
}

function sbom(args: string[]): CycloneDx {
  const r = npm(['sbom', '--sbom-format', 'cyclonedx', '--omit', 'dev', ...args]);
  if (r.status !== 0) throw new Error(`npm sbom ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as CycloneDx;
}

/** The SBOM of one package of the tree: it becomes the subject, keeping only what it depends on. */
function subjectOf(bom: CycloneDx, ref: string, name: string): CycloneDx {
  const component = bom.components?.find((c) => c['bom-ref'] === ref);
  if (!component) throw new Error(`npm sbom lists no component ${ref}`);
  const graph = new Map((bom.dependencies ?? []).map((d) => [d.ref, d.dependsOn ?? []]));
  const reachable = new Set<string>();
  const visit = (r: string): void => {
    for (const dep of graph.get(r) ?? []) {
      if (reachable.has(dep)) continue;
      reachable.add(dep);
      visit(dep);
    }
  };
  visit(ref);
  return {
    ...bom,
    metadata: { ...bom.metadata, component: { ...component, name } },
    components: (bom.components ?? []).filter((c) => reachable.has(c['bom-ref'])),
    dependencies: (bom.dependencies ?? []).filter((d) => d.ref === ref || reachable.has(d.ref)),
  };
}

/** Writes services.cdx.json (the services' production dependencies) and sdk.cdx.json (the SDK package's); returns their paths. */
export function writeSboms(outDir: string): { services: string; sdk: string } {
  mkdirSync(outDir, { recursive: true });
  const files = { services: join(outDir, 'services.cdx.json'), sdk: join(outDir, 'sdk.cdx.json') };
  const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string };
  const services = sbom(['--workspaces=false']);
  // npm names the subject after the checkout's folder; the package's name is what identifies it.
  services.metadata.component.name = root.name;
  writeFileSync(files.services, JSON.stringify(services, null, 2));
  const sdkManifest = JSON.parse(readFileSync(join(ROOT, SDK_WORKSPACE, 'package.json'), 'utf8')) as { name: string; version: string };
  writeFileSync(files.sdk, JSON.stringify(subjectOf(sbom(['--workspace', SDK_WORKSPACE]), `${sdkManifest.name}@${sdkManifest.version}`, sdkManifest.name), null, 2));
  return files;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { positionals, values } = parseArgs({ args: process.argv.slice(2), options: { out: { type: 'string', default: join(ROOT, '.taskflow', 'sbom') } }, allowPositionals: true });
  const command = positionals[0];
  if (command === 'audit') process.exitCode = runAudit();
  else if (command === 'install-scripts') process.exitCode = runInstallScripts();
  else if (command === 'sbom') {
    const files = writeSboms(resolve(values.out));
    console.log(`CycloneDX SBOMs: ${files.services} (services), ${files.sdk} (SDK package)`);
  } else {
    console.error('usage: tsx scripts/supply-chain.ts audit | install-scripts | sbom [--out DIR]');
    process.exitCode = 2;
  }
}
