import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFleet } from '../../device-sim/fleet.js';
import type { ReeferReading } from '../../schemas/reefer-reading.js';
import { checkDelivery } from '../harness/delivery-check.js';
import { startTestGateway, type GatewayUnderTest } from '../harness/gateway-under-test.js';
import { startKafkaBroker, type KafkaBroker } from '../harness/kafka-broker.js';
import { readTopic } from '../harness/topic-reader.js';

// This test stops Kafka, so it has a broker of its own.
let broker: KafkaBroker;
let gw: GatewayUnderTest | undefined;
beforeAll(async () => {
  broker = await startKafkaBroker();
});
afterAll(async () => {
  await gw?.close();
  await broker?.close();
});

describe('Kafka outage', () => {
  it('acknowledges and buffers 1,000 readings while Kafka is down, then delivers all of them once', async () => {
    gw = await startTestGateway(broker.bootstrap);
    // Let the gateway create its topic and connect before the outage.
    await expect.poll(() => gw!.gateway.status().uplink, { timeout: 30_000 }).toBe('up');
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
    await expect.poll(() => gw!.gateway.status().uplink, { timeout: 30_000 }).toBe('down');

    await broker.start();
    const reader = await readTopic(broker.bootstrap, gw.topic);
    try {
      await reader.waitFor(1000, 90_000);
      const report = checkDelivery(acked, await reader.settle(2000));
      expect(report).toMatchObject({ acknowledged: 1000, delivered: 1000, duplicated: 0, lost: 0, unexpected: 0 });
      expect(report.outOfOrder).toEqual([]);
      await expect.poll(() => gw!.gateway.status().outbox.count).toBe(0);
      expect(gw.gateway.status().uplink).toBe('up');
    } finally {
      await reader.close();
    }
  });
});
