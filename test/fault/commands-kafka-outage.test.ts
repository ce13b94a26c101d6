import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeviceCommandHandler } from '../../device-sim/device-commands.js';
import { connectDevice, type DeviceConnection } from '../../device-sim/mqtt-transport.js';
import { createReefer } from '../../device-sim/reefer-model.js';
import { createCommandTopics, publishCommands, readStatuses, testCommand } from '../harness/command-topics.js';
import { startTestGateway, type GatewayUnderTest } from '../harness/gateway-under-test.js';
import { startKafkaBroker, type KafkaBroker } from '../harness/kafka-broker.js';

// This test stops Kafka, so it has a broker of its own.
let broker: KafkaBroker;
let gw: GatewayUnderTest | undefined;
const devices: DeviceConnection[] = [];
beforeAll(async () => {
  broker = await startKafkaBroker();
});
afterAll(async () => {
  await Promise.all(devices.map((d) => d.close()));
  await gw?.close();
  await broker?.close();
});

async function obedientDevice(url: string, containerId: string) {
  const reefer = createReefer({ containerId, seed: 8, product: 'P04' });
  const handler = createDeviceCommandHandler(reefer);
  const connection = await connectDevice({ url, clientId: containerId, qos: 1 });
  devices.push(connection);
  connection.onMessage((_topic, payload) => {
    const ack = handler.handle(payload);
    if (ack) void connection.publish(`reefer/${containerId}/commands/ack`, ack);
  });
  await connection.subscribe(`reefer/${containerId}/commands`);
  return { reefer, handler };
}

describe('commands through a Kafka outage', () => {
  it('delivers a stored command to a device that arrives while Kafka is down, and reports its statuses once Kafka is back, each exactly once', async () => {
    const topics = await createCommandTopics(broker.bootstrap);
    const gatewayId = `gw-cmd-${randomUUID().slice(0, 8)}`;
    gw = await startTestGateway(broker.bootstrap, { gatewayId, commands: { enabled: true, topic: topics.commands, statusTopic: topics.status } });

    // Stored before the outage, for a device that is not there yet.
    const waiting = testCommand({ containerId: 'C-late', gatewayId, kind: 'setpoint', targetTemperature: 7 });
    await publishCommands(broker.bootstrap, topics.commands, [waiting]);
    // Its `stored` status reaches Kafka before the outage.
    const before = await readStatuses(broker.bootstrap, topics.status);
    try {
      await before.waitUntil((all) => all.some((s) => s.commandId === waiting.commandId && s.status === 'stored'), 20_000, 'stored');
    } finally {
      await before.close();
    }

    await broker.stop();
    await expect.poll(() => gw!.gateway.status().uplink, { timeout: 30_000 }).toBe('down');
    const late = await obedientDevice(gw.mqttUrl, 'C-late');
    await expect.poll(() => late.handler.handled(), { timeout: 10_000 }).toBe(1);
    expect(late.reefer.targetTemperature()).toBe(7);
    await expect.poll(() => gw!.gateway.status().commands?.applied ?? 0, { timeout: 10_000 }).toBe(1);

    await broker.start();
    const statuses = await readStatuses(broker.bootstrap, topics.status);
    try {
      await statuses.waitUntil((all) => all.some((s) => s.commandId === waiting.commandId && s.status === 'applied'), 60_000, 'applied after the outage');
      await delay(1500);
      const mine = statuses.statuses().filter((s) => s.commandId === waiting.commandId);
      expect(mine.map((s) => s.status).filter((s) => s !== 'delivered')).toEqual(['stored', 'applied']);
      expect(mine.filter((s) => s.status === 'delivered').length).toBeLessThanOrEqual(1);
      expect(late.handler.handled()).toBe(1);
    } finally {
      await statuses.close();
    }
  });
});
