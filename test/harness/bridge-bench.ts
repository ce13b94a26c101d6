/**
 * Backlog drain through the bridge: a gateway in uplink mode mqtt stores a backlog while its bridge is
 * away (a ship out of coverage), then the bridge comes up and the backlog goes to Kafka in full
 * batches. Prints readings per second and bytes per reading on the link, per compression.
 *
 *   npx tsx test/harness/bridge-bench.ts [readings]      (default 20000; starts its own Kafka)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { resolveConfig } from '../../gateway/config.js';
import { startGateway } from '../../gateway/main.js';
import { createLogger } from '../../gateway/ops/logger.js';
import { startTestBridge } from './bridge-under-test.js';
import { startFaultLoad } from './fault-load.js';
import { freePort } from './free-port.js';
import { startKafkaBroker } from './kafka-broker.js';
import { readTopic } from './topic-reader.js';

const BATCH_SIZE = 1000;

async function drain(bootstrap: string, compression: 'brotli' | 'deflate' | 'none', readings: number): Promise<string> {
  const gatewayId = `bench-${randomUUID().slice(0, 6)}`;
  const topic = `bridge-bench-${randomUUID().slice(0, 8)}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'reefer-bridge-bench-'));
  const reader = await readTopic(bootstrap, topic);
  const [bridgePort, mqttPort] = await Promise.all([freePort(), freePort()]);
  const config = resolveConfig({
    file: {
      gatewayId,
      dataDir,
      http: { enabled: false },
      mqtt: { host: '127.0.0.1', port: mqttPort, auth: { allowAnonymous: true }, limits: { readingsPerSecond: 0 } },
      kafka: { brokers: ['127.0.0.1:1'], topic, deadLetterTopic: '' },
      uplink: {
        mode: 'mqtt',
        bridge: { urls: [`mqtt://127.0.0.1:${bridgePort}`], password: 'bench', compression, reconnectMinMs: 50, reconnectMaxMs: 100 },
        statusTopic: '',
        batchSize: BATCH_SIZE,
        // Short retries, so the drain starts when the bridge does rather than at the end of a long backoff.
        minBackoffMs: 50,
        maxBackoffMs: 100,
        liveFirst: false,
      },
      log: { level: 'silent' },
    },
  });
  const gateway = await startGateway(config, { logger: createLogger('silent') });
  try {
    const load = startFaultLoad({ mqttUrl: `mqtt://127.0.0.1:${mqttPort}`, devices: 50, ratePerSecond: 0, seed: 1 });
    while (load.acknowledged().length < readings) await new Promise((resolve) => setTimeout(resolve, 100));
    await load.stop();
    const count = load.acknowledged().length;
    const bridge = await startTestBridge(bootstrap, { logins: [{ username: gatewayId, password: 'bench' }], allow: [topic], port: bridgePort });
    try {
      while (!gateway.status().bridge?.connectedUrl) await new Promise((resolve) => setTimeout(resolve, 5));
      const startedMs = Date.now();
      await reader.waitFor(count, 300_000);
      const ms = Date.now() - startedMs;
      const stats = bridge.bridge.service.stats();
      return `${compression.padEnd(7)} ${count} readings in ${ms} ms: ${Math.round((count / ms) * 1000)} readings/s, ${(stats.commitBytes / stats.commitReadings).toFixed(1)} B/reading on the link (${stats.commits} batches)`;
    } finally {
      await bridge.close();
    }
  } finally {
    await gateway.close();
    await reader.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const readings = Number(process.argv[2] ?? 20_000);
  const kafka = await startKafkaBroker();
  try {
    process.stdout.write(`backlog drain through the bridge, batches of ${BATCH_SIZE}, gateway + bridge + Kafka on this machine:\n`);
    // A first, unreported round warms up Kafka's transaction coordinator and the JIT.
    await drain(kafka.bootstrap, 'none', Math.min(readings, 2000));
    for (const compression of ['brotli', 'deflate', 'none'] as const) process.stdout.write(`  ${await drain(kafka.bootstrap, compression, readings)}\n`);
  } finally {
    await kafka.close();
  }
}

void main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
