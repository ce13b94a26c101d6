import { describe, expect, it } from 'vitest';
import { createFleet } from '../../device-sim/fleet.js';
import type { ReeferReading } from '../../schemas/reefer-reading.js';
import { checkDelivery } from '../harness/delivery-check.js';
import { ownBroker } from '../harness/own-broker.js';
import { connectDevice } from '../../device-sim/mqtt-transport.js';
import { readRawTopic, readTopic } from '../harness/topic-reader.js';

// This test stops Kafka, so it has a broker of its own.
const own = ownBroker();

describe('Kafka outage', () => {
  it('acknowledges and buffers 1,000 readings while Kafka is down, delivers all of them once, and reports its loss ledger with gaps on gateway-status', async () => {
    const broker = own.broker();
    const gw = await own.startGateway();
    // Let the gateway create its topic and connect before the outage.
    await expect.poll(() => gw.gateway.status().uplink, { timeout: 30_000 }).toBe('up');
    await broker.stop();

    const acked: ReeferReading[] = [];
    const fleet = createFleet({
      mqttUrl: gw.mqttUrl,
      devices: 10,
      countPerDevice: 100,
      ratePerSecond: 0,
      seed: 3,
      qos: 1,
      form: 'canonical-json',
      onSent: (r) => acked.push(r),
    });
    const summary = await fleet.run();
    await fleet.stop();
    expect(summary.errors).toBe(0);
    expect(acked).toHaveLength(1000);
    expect(gw.gateway.status().outbox.count).toBe(1000);
    await expect.poll(() => gw.gateway.status().uplink, { timeout: 30_000 }).toBe('down');

    // A container that skipped four readings, and one reading the gateway rejects: both for the ledger.
    const gappy = await connectDevice({ url: gw.mqttUrl, clientId: 'gappy', qos: 1 });
    for (const minute of [0, 5, 10, 15, 40]) {
      const t = new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString();
      await gappy.publish('reefer/G1/telemetry', Buffer.from(JSON.stringify({ container_id: 'G1', measurement_time: t, temperature: 4 })));
    }
    await gappy.publish('reefer/G1/telemetry', Buffer.from('{"container_id": "G1", "temperature": '));
    await gappy.close();

    await broker.start();
    const reader = await readTopic(broker.bootstrap, gw.topic);
    try {
      await reader.waitFor(1000, 90_000);
      const report = checkDelivery(acked, (await reader.settle(2000)).filter((r) => r.value.container_id !== 'G1'));
      expect(report).toMatchObject({ acknowledged: 1000, delivered: 1000, duplicated: 0, lost: 0, unexpected: 0 });
      expect(report.outOfOrder).toEqual([]);
      await expect.poll(() => gw.gateway.status().outbox.count).toBe(0);
      expect(gw.gateway.status().uplink).toBe('up');

      // When the link returned, the gateway reported its loss ledger and gaps on gateway-status.
      const status = await readRawTopic(broker.bootstrap, 'gateway-status');
      try {
        await expect
          .poll(() => status.records().filter((r) => r.key === gw.config.gatewayId).length, { timeout: 30_000 })
          .toBeGreaterThan(0);
        const latest = status.records().filter((r) => r.key === gw.config.gatewayId).pop()!;
        const body = JSON.parse(latest.value!.toString('utf8')) as { uplink: string; gaps: unknown[]; ledger: unknown[] };
        expect(body.gaps).toEqual([{ containerId: 'G1', reason: 'gap', count: 4 }]);
        expect(body.ledger).toContainEqual({ containerId: 'G1', reason: 'malformed-json', count: 1 });
      } finally {
        await status.close();
      }
    } finally {
      await reader.close();
    }
  });
});
