/**
 * Runs the decoder properties of test/harness/decoder-properties.ts with as many generated inputs as
 * asked, split over the properties as in CI:
 *
 *   npx tsx test/fuzz/fuzz-decoders.ts --runs 2000000
 *   npx tsx test/fuzz/fuzz-decoders.ts --property "tuple string" --runs 500000
 *   npx tsx test/fuzz/fuzz-decoders.ts --property "<full name>" --seed 123 --path "45:2:1"   # replays a failure
 *
 * Prints each property's inputs, time and rate, and on a failure fast-check's counterexample with
 * the seed and path that replay it; exits non-zero when any property failed.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { DECODER_PROPERTIES, runsPerProperty } from '../harness/decoder-properties.js';

const USAGE = 'usage: fuzz-decoders [--runs N] [--seed S] [--path P] [--property TEXT] [--list]';

function positiveInteger(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text.replace(/_/g, ''));
  if (!Number.isSafeInteger(n) || n < 1) {
    process.stderr.write(`fuzz-decoders: --${flag} ${JSON.stringify(text)}: expected a positive integer\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
}

function main(): number {
  let args;
  try {
    args = parseArgs({
      options: {
        runs: { type: 'string' },
        seed: { type: 'string' },
        path: { type: 'string' },
        property: { type: 'string' },
        list: { type: 'boolean' },
        help: { type: 'boolean' },
      },
      strict: true,
    }).values;
  } catch (error) {
    process.stderr.write(`fuzz-decoders: ${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n  --runs      generated inputs in total, split over the properties by weight (default 1000000)\n  --seed      fast-check seed (default: a fresh one, printed)\n  --path      replay path from a failure report (needs --seed and one --property)\n  --property  run only the properties whose name contains TEXT\n  --list      print the property names and exit\n`);
    return 0;
  }
  if (args.list) {
    for (const p of DECODER_PROPERTIES) process.stdout.write(`${p.name}\n`);
    return 0;
  }
  const total = positiveInteger('runs', args.runs, 1_000_000);
  const seed = args.seed === undefined ? Date.now() ^ (Math.random() * 0x1_0000_0000) : Number(args.seed);
  if (!Number.isInteger(seed)) {
    process.stderr.write(`fuzz-decoders: --seed ${JSON.stringify(args.seed)}: expected an integer\n`);
    return 2;
  }
  const filter = args.property;
  const chosen = DECODER_PROPERTIES.filter((p) => filter === undefined || p.name.includes(filter));
  if (chosen.length === 0) {
    process.stderr.write(`fuzz-decoders: no property name contains ${JSON.stringify(filter)}; --list shows them\n`);
    return 2;
  }
  if (args.path !== undefined && chosen.length !== 1) {
    process.stderr.write(`fuzz-decoders: --path replays one property; ${chosen.length} match ${JSON.stringify(filter)}\n`);
    return 2;
  }
  const runs = runsPerProperty(total, chosen);
  process.stdout.write(`fuzzing ${chosen.length} properties with ${runs.reduce((a, b) => a + b, 0)} inputs, seed ${seed}\n`);

  let failed = 0;
  let inputs = 0;
  const started = performance.now();
  chosen.forEach((p, i) => {
    const t0 = performance.now();
    const details = fc.check(p.build(), { numRuns: runs[i], seed, path: args.path });
    const ms = performance.now() - t0;
    inputs += details.numRuns;
    const rate = Math.round((details.numRuns / ms) * 1000);
    if (details.failed) {
      failed += 1;
      process.stdout.write(`FAIL  ${p.name}\n${fc.defaultReportMessage(details) ?? ''}\n`);
    } else {
      process.stdout.write(`ok    ${p.name}: ${details.numRuns} inputs (${details.numSkips} skipped) in ${(ms / 1000).toFixed(1)} s, ${rate}/s\n`);
    }
  });
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`${inputs} inputs in ${seconds.toFixed(1)} s (${Math.round(inputs / seconds)}/s), seed ${seed}: ${failed === 0 ? 'no failures' : `${failed} properties failed`}\n`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = main();
