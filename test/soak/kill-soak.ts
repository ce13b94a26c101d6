/**
 * Soak: kill -9 trials for as long as asked, against a Kafka broker of its own, then the delivery
 * counts. Not part of CI.
 *
 *   npx tsx test/soak/kill-soak.ts --minutes 30
 */
import { parseArgs } from 'node:util';
import { runKillTrials } from '../harness/kill-trials.js';
import { startKafkaBroker } from '../harness/kafka-broker.js';

const { values } = parseArgs({ options: { minutes: { type: 'string' }, devices: { type: 'string' } } });
const minutes = Number(values.minutes ?? 10);
if (!(minutes > 0)) {
  process.stderr.write(`kill-soak: --minutes: expected a positive number, got ${JSON.stringify(values.minutes)}\n`);
  process.exit(2);
}

const broker = await startKafkaBroker();
try {
  const started = Date.now();
  const { trials, report } = await runKillTrials({
    bootstrap: broker.bootstrap,
    durationMs: minutes * 60_000,
    devices: Number(values.devices ?? 10),
    onTrial: (n) => {
      if (n % 10 === 0) process.stderr.write(`${n} kills, ${Math.round((Date.now() - started) / 1000)} s\n`);
    },
  });
  process.stdout.write(
    `${JSON.stringify({ minutes, trials, acknowledged: report.acknowledged, delivered: report.delivered, duplicated: report.duplicated, lost: report.lost })}\n`,
  );
  process.exitCode = report.lost === 0 && report.duplicated === 0 ? 0 : 1;
} finally {
  await broker.close();
}
