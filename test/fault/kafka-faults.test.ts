import { describe, expect, it } from 'vitest';
import { awaitDelivery } from '../harness/fault-report.js';
import { startFaultLoad } from '../harness/fault-load.js';
import type { GatewayUnderTest } from '../harness/gateway-under-test.js';
import { ownBroker } from '../harness/own-broker.js';
import { readTopic } from '../harness/topic-reader.js';

// These tests stop and freeze Kafka, so they share a broker of their own.
const OUTAGE_S = Number(process.env.REEFER_OUTAGE_S ?? 60);
const FREEZE_S = Number(process.env.REEFER_FREEZE_S ?? 30);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const own = ownBroker();

async function gatewayOn(): Promise<GatewayUnderTest> {
  const gw = await own.startGateway({
    uplink: { minBackoffMs: 100, maxBackoffMs: 2000, operationTimeoutMs: 4000, probeIntervalMs: 1000 },
  });
  await expect.poll(() => gw.gateway.status().uplink, { timeout: 30_000 }).toBe('up');
  return gw;
}

describe('Kafka faults under load', () => {
  it(`keeps every acknowledged reading through Kafka stopped for ${OUTAGE_S} s, and delivers each once`, async () => {
    const broker = own.broker();
    const gw = await gatewayOn();
    const load = startFaultLoad({ mqttUrl: gw.mqttUrl, devices: 10, ratePerSecond: 300, seed: 1 });
    await sleep(3000);
    await broker.stop();
    await sleep(OUTAGE_S * 1000);
    expect(gw.gateway.status().uplink).toBe('down');
    const buffered = gw.gateway.status().outbox.count;
    expect(buffered).toBeGreaterThan(0);
    await broker.start();
    await sleep(5000);
    await load.stop();

    const reader = await readTopic(broker.bootstrap, gw.topic);
    try {
      const report = await awaitDelivery(`Kafka stopped ${OUTAGE_S} s, ${buffered} buffered`, reader, load.acknowledged(), {
        timeoutMs: 90_000,
        quietMs: 2000,
        diagnose: () => gw.gateway.status(),
      });
      expect(report.lost).toBe(0);
      expect(report.duplicated).toBe(0);
      expect(report.altered).toEqual([]);
    } finally {
      await reader.close();
    }
  });

  it(`detects Kafka frozen (SIGSTOP) for ${FREEZE_S} s as down, keeps buffering, and delivers each acknowledged reading once after it resumes`, async () => {
    const broker = own.broker();
    const gw = await gatewayOn();
    const load = startFaultLoad({ mqttUrl: gw.mqttUrl, devices: 10, ratePerSecond: 300, seed: 2 });
    await sleep(3000);
    broker.freeze();
    try {
      // A hung broker refuses nothing; only timeouts and probes can tell.
      await expect.poll(() => gw.gateway.status().uplink, { timeout: 20_000, interval: 200 }).toBe('down');
      await sleep(FREEZE_S * 1000);
      expect(gw.gateway.status().uplink).toBe('down');
    } finally {
      broker.resume();
    }
    await expect.poll(() => gw.gateway.status().uplink, { timeout: 60_000, interval: 200 }).toBe('up');
    await sleep(3000);
    await load.stop();

    const reader = await readTopic(broker.bootstrap, gw.topic);
    try {
      const report = await awaitDelivery(`Kafka frozen ${FREEZE_S} s`, reader, load.acknowledged(), { timeoutMs: 90_000, quietMs: 2000, diagnose: () => gw.gateway.status() });
      expect(report.lost).toBe(0);
      expect(report.duplicated).toBe(0);
    } finally {
      await reader.close();
    }
  });
});
