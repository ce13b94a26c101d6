import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createFleet } from '../../device-sim/fleet.js';
import { resolveConfig } from '../../gateway/config.js';
import { startGateway } from '../../gateway/main.js';
import { createLogger } from '../../gateway/ops/logger.js';
import type { ReeferReading } from '../../schemas/reefer-reading.js';
import { startTestBridge } from '../harness/bridge-under-test.js';
import { checkDelivery } from '../harness/delivery-check.js';
import { startKafkaBroker } from '../harness/kafka-broker.js';
import { readTopic } from '../harness/topic-reader.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe('bridge without Kafka', () => {
  it('never acknowledges a batch while its Kafka is down: the gateway keeps the readings and delivers them once Kafka is back', async () => {
    // A broker of this test's own, so stopping it leaves the other tests alone.
    const kafka = await startKafkaBroker();
    cleanups.push(() => kafka.close());
    const gatewayId = `bridge-out-${randomUUID().slice(0, 6)}`;
    const topic = `bridge-out-${randomUUID().slice(0, 8)}`;
    const login = { username: gatewayId, password: 'through the outage' };
    const reader = await readTopic(kafka.bootstrap, topic);
    cleanups.push(() => reader.close());
    const bridge = await startTestBridge(kafka.bootstrap, { logins: [login], allow: [topic, `${topic}-status`], createTopics: true });
    cleanups.push(() => bridge.close());
    const dataDir = mkdtempSync(join(tmpdir(), 'reefer-bridge-out-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const config = resolveConfig({
      file: {
        gatewayId,
        dataDir,
        http: { enabled: false },
        mqtt: { host: '127.0.0.1', port: 0, auth: { allowAnonymous: true }, limits: { readingsPerSecond: 0 } },
        kafka: { brokers: ['127.0.0.1:1'], topic, deadLetterTopic: '' },
        uplink: {
          mode: 'mqtt',
          bridge: { urls: [bridge.url], password: login.password, reconnectMinMs: 100, reconnectMaxMs: 500 },
          statusTopic: `${topic}-status`,
          minBackoffMs: 100,
          maxBackoffMs: 500,
          operationTimeoutMs: 3000,
          liveFirst: false,
        },
        log: { level: process.env.REEFER_TEST_LOG ?? 'silent' },
      },
    });
    const gateway = await startGateway(config, { logger: createLogger(config.log.level) });
    cleanups.push(() => gateway.close());
    const acknowledged: ReeferReading[] = [];
    const send = (countPerDevice: number, startTimeMs: number) =>
      createFleet({
        mqttUrl: `mqtt://127.0.0.1:${gateway.mqttPort()}`,
        devices: 5,
        countPerDevice,
        ratePerSecond: 0,
        seed: 5,
        qos: 1,
        form: 'canonical-json',
        startTimeMs,
        intervalMs: 1000,
        onSent: (reading) => acknowledged.push(reading),
      }).run();
    const startMs = Date.now() - 86_400_000;

    await send(40, startMs);
    await reader.waitFor(200, 20_000);

    await kafka.stop();
    await send(60, startMs + 3_600_000);
    expect(acknowledged).toHaveLength(500);
    // Held in the outbox while the bridge cannot reach Kafka: it refuses, and the uplink is down.
    await expect.poll(() => gateway.status().uplink, { timeout: 15_000 }).toBe('down');
    await expect.poll(() => bridge.bridge.service.stats().errors['kafka-unavailable'] ?? 0, { timeout: 15_000 }).toBeGreaterThan(0);
    const commitsWhileDown = bridge.bridge.service.stats().commits;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(bridge.bridge.service.stats().commits).toBe(commitsWhileDown);
    expect(gateway.status().outbox.count).toBe(300);
    expect(reader.records()).toHaveLength(200);

    await kafka.start();
    // A fresh read-committed consumer: one kept across the broker's restart may sit out its own
    // reconnection backoff, which says nothing about the gateway and the bridge.
    await reader.close();
    const after = await readTopic(kafka.bootstrap, topic);
    cleanups.push(() => after.close());
    await after.waitFor(500, 60_000).catch((error: unknown) => {
      const s = gateway.status();
      throw new Error(`${String(error)}; gateway uplink ${s.uplink}, outbox ${s.outbox.count}; bridge ${JSON.stringify(bridge.bridge.service.stats())}`);
    });
    const report = checkDelivery(acknowledged, await after.settle(1000));
    expect(report).toMatchObject({ acknowledged: 500, delivered: 500, duplicated: 0, lost: 0, unexpected: 0, outOfOrder: [] });
    await expect.poll(() => gateway.status().outbox.count, { timeout: 5000 }).toBe(0);
  });
});
