// Prints one closing line for the whole workspace — "tests: N passed, N failed, N skipped" —
// from each package's vitest JSON report. With --clean, removes old reports first.
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
for (const f of reports) {
  const r = JSON.parse(readFileSync(f, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests + (r.numFailedTestSuites ?? 0);
  skipped += r.numPendingTests + r.numTodoTests;
}
console.log(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
if (reports.length === 0) {
  console.log('no test reports found');
  process.exit(1);
}
