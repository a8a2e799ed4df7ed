// `npm test`: type-check, lint, then every jest layer (the projects of jest.config.js: unit,
// integration, e2e) in one run, ending with the line "N passed, N failed" derived from jest's --json report.
// Type-check, lint, audit and install-script failures count as one failed check each so the line never hides them;
// jest's own failures are counted from its report.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';

const extraArgs = process.argv.slice(2);
let failedChecks = 0;

function run(label, cmd, args, env = process.env) {
  console.log(`\n== ${label}: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env });
  if (r.status !== 0) console.log(`== ${label} failed (exit ${r.status ?? r.signal})`);
  return r.status === 0;
}

if (extraArgs.length === 0) {
  if (!run('type-check', 'npx', ['tsc', '--noEmit', '-p', 'tsconfig.json'])) failedChecks += 1;
  if (!run('lint', 'npx', ['eslint', '.'])) failedChecks += 1;
  // Supply chain (scripts/supply-chain.ts): known advisories against the reviewed allowlist, and
  // install scripts against package.json allowScripts.
  if (!run('npm audit', 'npx', ['tsx', 'scripts/supply-chain.ts', 'audit'])) failedChecks += 1;
  if (!run('install scripts', 'npx', ['tsx', 'scripts/supply-chain.ts', 'install-scripts'])) failedChecks += 1;
}

// One fast-check seed per commit, so CI's run of a commit reproduces exactly (test/setup/fast-check.mjs).
if (!process.env.FC_SEED) {
  const head = spawnSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' });
  process.env.FC_SEED = String(head.status === 0 ? parseInt(head.stdout.slice(0, 7), 16) : Date.now() % 2 ** 31);
}
console.log(`fast-check seed ${process.env.FC_SEED} (replay: FC_SEED=${process.env.FC_SEED} npm test -- <file>)`);

mkdirSync('.taskflow', { recursive: true });
const report = '.taskflow/jest-results.json';
rmSync(report, { force: true });
run('jest', 'npx', ['jest', '--json', `--outputFile=${report}`, ...extraArgs], {
  ...process.env,
  NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --experimental-vm-modules --no-warnings`.trim(),
});

let passed = 0;
let failed = failedChecks;
try {
  const results = JSON.parse(readFileSync(report, 'utf8'));
  passed += results.numPassedTests;
  failed += results.numFailedTests;
  // A suite that fails to load has no tests to count: count it as one failure.
  failed += results.testResults.filter((s) => s.status === 'failed' && s.assertionResults.length === 0).length;
} catch (err) {
  console.log(`no jest report (${err.message})`);
  failed += 1;
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
