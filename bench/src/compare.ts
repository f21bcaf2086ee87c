// `pnpm compare`: the published 4.3 → 4.4 replicated-write comparison, side by side on
// this machine (or against deployments elsewhere, --urls). For every cluster size and key
// mode it starts clusters of plexus, nats per-write (the 4.3 shape) and nats batched, and
// runs rounds of the same load on each in turn, verifying that every node holds every
// record with one digest; it reports the plexus/nats ratios with their intervals and the
// CPU each path spends per write.
// stderr: a live progress line. stdout: the tables, then ONE JSON summary line (last).
// The pieces live in ./compare/: args (flags), plan (which configurations), execute
// (running them), aggregate (medians, ratios, intervals) and report (files and stdout).
import { stopAllClusters } from '@replica/cluster';
import { isParseArgsError, parseErrorMessage, versionOf } from '@replica/transport-api/cli';
import { parseCompareArgs, USAGE, UsageError } from './compare/args.js';
import { executePlan, localRunner, remoteRunner } from './compare/execute.js';
import { connectRemote, DeploymentError, type Deployment } from './deployment.js';
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
  let options = parsed.options;
  let runner = localRunner(options.maxLagMs === null ? {} : { MAX_REPLICATION_LAG_MS: String(options.maxLagMs) }, options.explain);
  let runId = '';
  if (options.urls.length > 0) {
    const deployments: Deployment[] = [];
    try {
      for (const urls of options.urls) deployments.push(await connectRemote(urls));
    } catch (err) {
      if (!(err instanceof DeploymentError)) throw err;
      process.stderr.write(`compare: ${err.message}\n`);
      return EXIT.usage;
    }
    const variants = deployments.map((d) => d.variant);
    if (new Set(variants).size !== variants.length) {
      process.stderr.write(`compare: two deployments run the same transport and mode (${variants.join(', ')}): give one per path\n`);
      return EXIT.usage;
    }
    options = Object.freeze({ ...options, transports: Object.freeze(variants) });
    runner = remoteRunner(deployments);
    // tables of this comparison stay apart from those of earlier ones on the same deployments
    runId = `x${Date.now().toString(36)}_`;
  }
  const plan = buildPlan(options);
  stopOnSignals();
  const startedAt = Date.now();
  const outcomes = await executePlan(plan, options, progressReporter(options.records), runner, runId);
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
