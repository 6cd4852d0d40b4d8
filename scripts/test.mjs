#!/usr/bin/env node
// The one test command (`npm test`, and `.ci/run` calls it): build, lint, typecheck, then every
// test tier (Vitest: unit, int, e2e) and the engine's native tests (ctest: sanitizers, fuzzer).
// It ends with one line `N passed, N failed`; a step that fails (build, lint, ...) counts as one
// failure and the run continues where the remaining steps still make sense.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';

const results = { passed: 0, failed: 0, skipped: 0 };
const failures = [];

function step(name, cmd, args, { env } = {}) {
  const started = Date.now();
  console.log(`\n=== ${name}: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  const ok = r.status === 0;
  console.log(`=== ${name}: ${ok ? 'ok' : `FAILED (exit ${r.status ?? r.signal})`} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (!ok) failures.push(name);
  return ok;
}

const onlyTests = process.argv.includes('--tests-only');
if (!onlyTests) {
  if (!step('build', 'npm', ['run', '--silent', 'build'])) results.failed += 1;
  if (!step('lint', 'npm', ['run', '--silent', 'lint'])) results.failed += 1;
  if (!step('typecheck', 'npm', ['run', '--silent', 'typecheck'])) results.failed += 1;
}

// Vitest, all tiers. The JSON report gives exact counts.
mkdirSync('.vitest-results', { recursive: true });
const report = '.vitest-results/report.json';
step('tests', 'npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`]);
if (existsSync(report)) {
  const j = JSON.parse(readFileSync(report, 'utf8'));
  results.passed += j.numPassedTests ?? 0;
  results.failed += (j.numFailedTests ?? 0) + (j.numRuntimeErrorTestSuites ?? 0);
  results.skipped += (j.numPendingTests ?? 0) + (j.numTodoTests ?? 0);
  // A test file that fails to load has no tests but must still fail the run.
  for (const f of j.testResults ?? []) if (f.status === 'failed' && (f.assertionResults ?? []).length === 0) results.failed += 1;
} else {
  results.failed += 1;
}

// Native engine tests (sanitizer build, parser tests, bounded fuzzing) through ctest.
if (existsSync('native/package.json') && JSON.parse(readFileSync('native/package.json', 'utf8')).scripts?.test) {
  const r = spawnSync('npm', ['run', '--silent', 'test', '--workspace', 'native'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  process.stdout.write(r.stdout ?? '');
  const m = /(\d+)% tests passed, (\d+) tests? failed out of (\d+)/.exec(r.stdout ?? '');
  if (m) {
    const failed = Number(m[2]);
    results.passed += Number(m[3]) - failed;
    results.failed += failed;
  }
  if (r.status !== 0 && !(m && Number(m[2]) > 0)) {
    results.failed += 1;
    failures.push('native tests');
  }
}

if (failures.length) console.log(`\nfailed steps: ${failures.join(', ')}`);
const skipped = results.skipped ? `, ${results.skipped} skipped` : '';
console.log(`\n${results.passed} passed, ${results.failed} failed${skipped}`);
process.exit(results.failed === 0 && results.passed > 0 ? 0 : 1);
