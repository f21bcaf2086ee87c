// Prints one closing line for the whole workspace — "tests: N passed, N failed, N skipped" —
// from each package's vitest JSON report, preceded by every failed test with the first
// lines of its failure (so that the tail of a CI log says what failed). With --clean,
// removes old reports first.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
// every workspace package: packages/*, apps/* and bench
const reports = ['packages', 'apps']
  .flatMap((d) => (existsSync(join(root, d)) ? readdirSync(join(root, d)).map((p) => join(root, d, p, '.vitest-report.json')) : []))
  .concat(join(root, 'bench', '.vitest-report.json'))
  .filter((f) => existsSync(f));

if (process.argv.includes('--clean')) {
  for (const f of reports) rmSync(f);
  process.exit(0);
}
let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];
for (const f of reports) {
  const r = JSON.parse(readFileSync(f, 'utf8'));
  for (const file of r.testResults ?? []) {
    const rel = file.name.startsWith(root) ? file.name.slice(root.length) : file.name;
    if (file.status === 'failed' && (file.assertionResults ?? []).every((a) => a.status !== 'failed')) {
      failed++; // a file that failed outside its tests (an import, a hook): not in numFailedTests
      failures.push(`${rel}: ${(file.message ?? 'the file failed').split('\n').slice(0, 6).join('\n    ')}`);
    }
    for (const a of file.assertionResults ?? []) {
      if (a.status !== 'failed') continue;
      const why = (a.failureMessages ?? []).join('\n').split('\n').filter((l) => l.trim() && !/^\s*at .*node_modules/.test(l)).slice(0, 8).map((l) => l.slice(0, 300));
      failures.push(`${rel} > ${a.fullName}\n    ${why.join('\n    ')}`);
    }
  }
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + r.numTodoTests;
}
if (failures.length > 0) console.log(`\nfailed tests:\n${failures.map((x) => `- ${x}`).join('\n')}`);
console.log(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
if (reports.length === 0) {
  console.log('no test reports found');
  process.exit(1);
}
