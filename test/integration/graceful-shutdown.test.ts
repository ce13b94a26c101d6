import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { awaitDelivery } from '../harness/fault-report.js';
import { startFaultLoad, type FaultLoad } from '../harness/fault-load.js';
import { freePort } from '../harness/free-port.js';
import { createGatewayProcess, type GatewayProcess } from '../harness/gateway-process.js';
import { startKafkaBroker } from '../harness/kafka-broker.js';
import { readTopic } from '../harness/topic-reader.js';

const bootstrap = inject('kafkaBootstrap');
/** uplink.closeTimeoutMs in these tests. */
const CLOSE_TIMEOUT_MS = 3000;
/** A stop may take the close timeout, a second for Kafka connections, and the rest for a busy machine. */
const STOP_BOUND_MS = CLOSE_TIMEOUT_MS + 12_000;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup(kafka: string, uplink: Record<string, unknown> = {}): Promise<{ gateway: GatewayProcess; dataDir: string; topic: string; mqttUrl: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'reefer-stop-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const topic = `stop-${randomUUID().slice(0, 8)}`;
  const port = await freePort();
  const dataDir = join(dir, 'data');
  const gateway = createGatewayProcess({
    dir,
    config: {
      gatewayId: `gw-stop-${randomUUID().slice(0, 6)}`,
      dataDir,
      mqtt: { host: '127.0.0.1', port, auth: { allowAnonymous: true }, limits: { readingsPerSecond: 0 } },
      kafka: { brokers: [kafka], topic, requestTimeoutMs: 5000, connectionTimeoutMs: 1000 },
      uplink: { minBackoffMs: 100, maxBackoffMs: 1000, batchSize: 500, operationTimeoutMs: 4000, probeIntervalMs: 500, closeTimeoutMs: CLOSE_TIMEOUT_MS, ...uplink },
      log: { level: 'info' },
    },
  });
  cleanups.push(() => gateway.kill());
  return { gateway, dataDir, topic, mqttUrl: `mqtt://127.0.0.1:${port}` };
}

function load(mqttUrl: string, seed: number): FaultLoad {
  const l = startFaultLoad({ mqttUrl, devices: 10, ratePerSecond: 400, seed });
  cleanups.push(() => l.stop());
  return l;
}

/** SIGTERM; resolves with the exit code and how long the stop took. */
async function stop(gateway: GatewayProcess): Promise<{ code: number | null; ms: number }> {
  const started = Date.now();
  const code = await gateway.stop();
  return { code, ms: Date.now() - started };
}

describe('graceful shutdown', () => {
  it('stops on SIGTERM under load with exit 0, closes the outbox cleanly, and after a restart every acknowledged reading is in Kafka once', async () => {
    const { gateway, dataDir, topic, mqttUrl } = await setup(bootstrap);
    const reader = await readTopic(bootstrap, topic);
    cleanups.push(() => reader.close());
    await gateway.start();
    const fleet = load(mqttUrl, 31);
    await expect.poll(() => fleet.acknowledged().length, { timeout: 60_000 }).toBeGreaterThan(1000);

    const stopped = await stop(gateway);
    expect(stopped.code, gateway.logs().slice(-4000)).toBe(0);
    expect(stopped.ms).toBeLessThan(STOP_BOUND_MS);
    expect(gateway.logs()).toContain('"msg":"gateway stopped"');
    // SQLite removes the write-ahead log when the last connection closes cleanly.
    expect(existsSync(join(dataDir, 'outbox.db-wal'))).toBe(false);
    const acknowledgedBeforeStop = fleet.acknowledged().length;

    await gateway.start();
    await expect.poll(() => fleet.acknowledged().length, { timeout: 60_000 }).toBeGreaterThan(acknowledgedBeforeStop + 500);
    await fleet.stop();
    const report = await awaitDelivery(`SIGTERM under load, stopped in ${stopped.ms} ms`, reader, fleet.acknowledged(), { timeoutMs: 120_000, quietMs: 2000 });
    expect(report.lost).toBe(0);
    expect(report.duplicated).toBe(0);
    expect(report.unexpected).toBe(0);
    expect(report.altered).toEqual([]);
  });

  it('stops within its bound while Kafka hangs mid-transaction, and delivers everything once when both return', async () => {
    // This test freezes Kafka, so it has a broker of its own.
    const broker = await startKafkaBroker();
    cleanups.push(() => broker.close());
    // Kafka operations never time out on their own here: only the stop's bound ends the hung transaction.
    const { gateway, topic, mqttUrl } = await setup(broker.bootstrap, { operationTimeoutMs: 600_000 });
    await gateway.start();
    const fleet = load(mqttUrl, 32);
    await expect.poll(() => fleet.acknowledged().length, { timeout: 60_000 }).toBeGreaterThan(1000);

    broker.freeze();
    cleanups.push(async () => broker.resume());
    // Readings keep arriving, so the uplink has a transaction waiting on the frozen broker.
    const frozenAt = fleet.acknowledged().length;
    await expect.poll(() => fleet.acknowledged().length, { timeout: 60_000 }).toBeGreaterThan(frozenAt + 500);
    const stopped = await stop(gateway);
    expect(stopped.code, gateway.logs().slice(-4000)).toBe(0);
    expect(stopped.ms).toBeLessThan(STOP_BOUND_MS);
    expect(gateway.logs()).toContain('the restart recovers it');

    broker.resume();
    await gateway.start();
    const restartedAt = fleet.acknowledged().length;
    await expect.poll(() => fleet.acknowledged().length, { timeout: 60_000 }).toBeGreaterThan(restartedAt + 500);
    await fleet.stop();
    const reader = await readTopic(broker.bootstrap, topic);
    cleanups.push(() => reader.close());
    const report = await awaitDelivery(`SIGTERM with Kafka frozen, stopped in ${stopped.ms} ms`, reader, fleet.acknowledged(), { timeoutMs: 120_000, quietMs: 2000 });
    expect(report.lost).toBe(0);
    expect(report.duplicated).toBe(0);
    expect(report.unexpected).toBe(0);
  });
});
