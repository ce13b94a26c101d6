import { afterEach, describe, expect, inject, it } from 'vitest';
import { createFleet } from '../../device-sim/fleet.js';
import type { PayloadForm } from '../../device-sim/payload-forms.js';
import type { ReeferReading } from '../../schemas/reefer-reading.js';
import { checkDelivery } from '../harness/delivery-check.js';
import { startTestGateway, type GatewayUnderTest } from '../harness/gateway-under-test.js';
import { readTopic, type TopicReader } from '../harness/topic-reader.js';

const bootstrap = inject('kafkaBootstrap');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup(): Promise<{ gw: GatewayUnderTest; reader: TopicReader }> {
  const gw = await startTestGateway(bootstrap);
  cleanups.push(() => gw.close());
  const reader = await readTopic(bootstrap, gw.topic);
  cleanups.push(() => reader.close());
  return { gw, reader };
}

async function runFleet(gw: GatewayUnderTest, devices: number, count: number, form: PayloadForm, seed = 7): Promise<ReeferReading[]> {
  const acked: ReeferReading[] = [];
  const fleet = createFleet({
    mqttUrl: gw.mqttUrl,
    devices,
    countPerDevice: count,
    ratePerSecond: 0,
    seed,
    qos: 1,
    form,
    onSent: (reading) => acked.push(reading),
  });
  cleanups.push(() => fleet.stop());
  const summary = await fleet.run();
  expect(summary.errors).toBe(0);
  return acked;
}

describe('MQTT to Kafka', () => {
  it('delivers 100 reefers x 20 QoS 1 readings to Kafka exactly once, intact, keyed and in per-container order', async () => {
    const { gw, reader } = await setup();
    const acked = await runFleet(gw, 100, 20, 'canonical-json');
    expect(acked).toHaveLength(2000);

    await reader.waitFor(2000, 60_000);
    const delivered = await reader.settle(1500);
    const report = checkDelivery(acked, delivered);
    expect(report).toMatchObject({ acknowledged: 2000, delivered: 2000, duplicated: 0, lost: 0, unexpected: 0, wrongKey: 0 });
    expect(report.altered).toEqual([]);
    expect(report.outOfOrder).toEqual([]);

    const seqs = delivered.map((r) => r.value.seq);
    expect(new Set(seqs).size).toBe(2000);
    for (const r of delivered) {
      expect(r.value.gateway_id).toBe('gw-test');
      expect(r.value.transport).toBe('mqtt');
      expect(r.headers).toMatchObject({ gateway_id: 'gw-test', seq: String(r.value.seq) });
    }
    await expect.poll(() => gw.gateway.status().outbox.count).toBe(0);
  });

  it.each(['envelope-object', 'envelope-tuple', 'avro'] as const)('turns %s payloads into canonical records', async (form) => {
    const { gw, reader } = await setup();
    const acked = await runFleet(gw, 5, 10, form, 11);
    await reader.waitFor(50, 30_000);
    const report = checkDelivery(acked, await reader.settle(1000));
    expect(report).toMatchObject({ acknowledged: 50, delivered: 50, duplicated: 0, lost: 0, unexpected: 0 });
    expect(report.altered).toEqual([]);
  });
});
