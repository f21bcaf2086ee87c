// `pnpm compare`: the published 4.3 → 4.4 replicated-write comparison, side by side on
// this machine. For every cluster size and key mode it runs the same load on fresh
// clusters of plexus, nats per-write (the 4.3 shape) and nats batched, verifies that
// every node holds every record with one digest, and reports the plexus/nats ratios.
// stderr: a live progress line. stdout: the tables, then ONE JSON summary line (last).
// The pieces live in ./compare/: args (flags), plan (which runs), execute (running
// them), aggregate (medians and ratios) and report (files and stdout).
import { stopAllClusters } from '@replica/cluster';
import { isParseArgsError, parseErrorMessage, versionOf } from '@replica/transport-api/cli';
import { parseCompareArgs, USAGE, UsageError } from './compare/args.js';
import { executePlan } from './compare/execute.js';
import { buildPlan } from './compare/plan.js';
import { progressReporter } from './compare/progress.js';
import { buildReport, writeReport } from './compare/report.js';
import { machineInfo } from './env-info.js';

/** How `pnpm compare` exits. Any other failure (an unknown flag, a report that cannot be written) throws: code 1. */
const EXIT = {
  /** Every run finished with 0 errors and verified, or --help. */
  ok: 0,
  /** Some run failed, saw errors, or was not verified; the report shows which. */
  runFailed: 1,
  /** Bad options: the reason and the usage are on stderr. */
  usage: 2,
  /** SIGINT or SIGTERM: the running cluster was stopped. */
  interrupted: 130,
} as const;

async function main(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseCompareArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError) && !isParseArgsError(err)) throw err;
    process.stderr.write(`compare: ${parseErrorMessage(err)}\n${USAGE}\n`);
    return EXIT.usage;
  }
  if (parsed.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (parsed.version) {
    process.stdout.write(`compare ${versionOf(new URL('../package.json', import.meta.url))}\n`);
    return EXIT.ok;
  }
  const options = parsed.options;
  const plan = buildPlan(options);
  stopOnSignals();
  const startedAt = Date.now();
  const outcomes = await executePlan(plan, options, progressReporter(plan.length, options.records));
  const report = buildReport({ options, outcomes, info: machineInfo(), minutes: (Date.now() - startedAt) / 60_000 });
  writeReport(report);
  process.stdout.write(report.stdout);
  return outcomes.some((o) => o.errors > 0 || !o.verified) ? EXIT.runFailed : EXIT.ok;
}

/** On the first SIGINT or SIGTERM: stop the running cluster (15 s at most), then exit. */
function stopOnSignals(): void {
  let stopping = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`\ncompare: ${sig}, stopping the running cluster…\n`);
      const force = setTimeout(() => process.exit(EXIT.interrupted), 15_000);
      void stopAllClusters().finally(() => {
        clearTimeout(force);
        process.exit(EXIT.interrupted);
      });
    });
  }
}

process.exitCode = await main(process.argv.slice(2));
