/**
 * `npm run bench`: store-and-forward figures against a real Kafka broker on this machine.
 *  - durable ingest: MQTT QoS 1 readings acknowledged per second, each committed to the outbox
 *    (sync=full) before its PUBACK, while the uplink drains to Kafka;
 *  - backlog drain: readings per second delivered to Kafka (transactions, exactly once) after an
 *    outage left a backlog in the outbox;
 *  - outbox bytes per reading on disk.
 * Prints a table and writes bench-results.json. Options: --readings N (default 100000).
 */
import { mkdtempSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createFleet } from '../../device-sim/fleet.js';
import { resolveConfig } from '../../gateway/config.js';
import { startGateway, type Gateway } from '../../gateway/main.js';
import { createLogger } from '../../gateway/ops/logger.js';
import { KAFKA_VERSION, startKafkaBroker } from '../harness/kafka-broker.js';

const { values } = parseArgs({ options: { readings: { type: 'string' } } });
const READINGS = Number(values.readings ?? 100_000);
const DEVICES = 50;

function fileBytes(path: string): number {
  return existsSync(path) ? statSync(path).size : 0;
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function ingest(gateway: Gateway, readings: number, seed: number): Promise<{ rate: number; ms: number }> {
  const fleet = createFleet({
    mqttUrl: `mqtt://127.0.0.1:${gateway.mqttPort()}`,
    devices: DEVICES,
    countPerDevice: Math.ceil(readings / DEVICES),
    ratePerSecond: 0,
    maxInFlightPerDevice: 50,
    seed,
    qos: 1,
    form: 'canonical-json',
    startTimeMs: Date.now() - 60 * 86_400_000 + seed * 3_600_000,
    intervalMs: 1000,
  });
  const summary = await fleet.run();
  await fleet.stop();
  if (summary.errors > 0) throw new Error(`${summary.errors} publish errors`);
  return { rate: summary.sent / (summary.elapsedMs / 1000), ms: summary.elapsedMs };
}

async function main(): Promise<void> {
  const broker = await startKafkaBroker({ heapMb: 1024 });
  const dataDir = mkdtempSync(join(tmpdir(), 'reefer-bench-'));
  const config = resolveConfig({
    file: {
      gatewayId: 'bench',
      dataDir,
      // Measures the pipeline flat out, so no per-device rate limit.
      mqtt: { host: '127.0.0.1', port: 0, auth: { allowAnonymous: true }, limits: { readingsPerSecond: 0 } },
      http: { enabled: false },
      kafka: { brokers: [broker.bootstrap] },
      uplink: { batchSize: 5000, minBackoffMs: 100, maxBackoffMs: 500 },
      log: { level: 'error' },
    },
  });
  const gateway = await startGateway(config, { logger: createLogger(config.log.level) });
  try {
    await waitFor(() => gateway.status().uplink === 'up', 30_000);

    // 1. Durable ingest with Kafka up.
    const live = await ingest(gateway, READINGS, 1);
    await waitFor(() => gateway.status().outbox.count === 0, 120_000);

    // 2. Backlog: Kafka down while the same number of readings arrive, then time the drain.
    await broker.stop();
    await waitFor(() => gateway.status().uplink === 'down', 60_000).catch(() => undefined);
    const buffering = await ingest(gateway, READINGS, 2);
    const backlog = gateway.status().outbox;
    const dbPath = join(dataDir, 'outbox.db');
    const onDisk = fileBytes(dbPath) + fileBytes(`${dbPath}-wal`);
    await broker.start();
    const drainStart = Date.now();
    await waitFor(() => gateway.status().outbox.count === 0, 300_000);
    const drainMs = Date.now() - drainStart;

    const results = {
      machine: { cpus: (await import('node:os')).cpus().length, node: process.version, kafka: KAFKA_VERSION },
      readings: READINGS,
      durableIngestPerSecond: Math.round(live.rate),
      durableIngestWhileKafkaDownPerSecond: Math.round(buffering.rate),
      backlogReadings: backlog.count,
      backlogDrainPerSecond: Math.round(backlog.count / (drainMs / 1000)),
      backlogDrainIncludingReconnectMs: drainMs,
      outboxBytesPerReading: Math.round(onDisk / backlog.count),
      outboxValueBytesPerReading: Math.round(backlog.bytes / backlog.count),
    };
    const rows: [string, string][] = [
      ['durable ingest, Kafka up (QoS 1 acks/s, sync=full)', String(results.durableIngestPerSecond)],
      ['durable ingest, Kafka down (QoS 1 acks/s)', String(results.durableIngestWhileKafkaDownPerSecond)],
      [`backlog drain after outage (${results.backlogReadings} readings/s)`, String(results.backlogDrainPerSecond)],
      ['outbox bytes per reading on disk (db + wal)', String(results.outboxBytesPerReading)],
      ['outbox value bytes per reading (Avro + row overhead)', String(results.outboxValueBytesPerReading)],
    ];
    for (const [name, value] of rows) process.stdout.write(`${name.padEnd(60)} ${value.padStart(10)}\n`);
    writeFileSync('bench-results.json', `${JSON.stringify(results, null, 2)}\n`);
    process.stdout.write('wrote bench-results.json\n');
  } finally {
    await gateway.close();
    await broker.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
