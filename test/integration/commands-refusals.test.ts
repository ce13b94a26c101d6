import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { commandRecord, encodeCommand } from '../../cloud-bridge/commands.js';
import { createKafkaClient } from '../../cloud-bridge/kafka-client.js';
import { connectDevice, type DeviceConnection } from '../../device-sim/mqtt-transport.js';
import { createCommandTopics, readStatuses, testCommand, type StatusReader } from '../harness/command-topics.js';
import { startTestGateway, type GatewayUnderTest } from '../harness/gateway-under-test.js';

const bootstrap = inject('kafkaBootstrap');

let gw: GatewayUnderTest | undefined;
let statuses: StatusReader | undefined;
const devices: DeviceConnection[] = [];

afterEach(async () => {
  await Promise.all(devices.splice(0).map((d) => d.close()));
  await gw?.close();
  await statuses?.close();
  gw = statuses = undefined;
});

describe('commands the gateway refuses', () => {
  it('reports bad and excess commands rejected with the reason, drops repeats and other gateways\' commands silently, and lets no device publish commands', async () => {
    const topics = await createCommandTopics(bootstrap);
    const gatewayId = `gw-cmd-${randomUUID().slice(0, 8)}`;
    gw = await startTestGateway(bootstrap, { gatewayId, commands: { enabled: true, topic: topics.commands, statusTopic: topics.status, maxPending: 1 } });
    statuses = await readStatuses(bootstrap, topics.status);

    const first = testCommand({ containerId: 'C-away', gatewayId, kind: 'defrost' });
    const overLimit = testCommand({ containerId: 'C-away', gatewayId, kind: 'maintenance' });
    const tooHot = { ...testCommand({ containerId: 'C-away', gatewayId, kind: 'setpoint' }), targetTemperature: 99 };
    const wrongGateway = testCommand({ containerId: 'C-away', gatewayId: 'gw-elsewhere', kind: 'defrost' });
    const producer = createKafkaClient({ brokers: [bootstrap], clientId: 'test-refusals' }).producer();
    await producer.connect();
    await producer.send(topics.commands, [
      commandRecord(first),
      commandRecord(first),
      commandRecord(overLimit),
      { key: 'C-away', value: encodeCommand(tooHot), headers: { gateway_id: gatewayId } },
      // Header for this gateway, body for another: refused rather than delivered to the wrong site.
      { ...commandRecord(wrongGateway), headers: { gateway_id: gatewayId } },
      // Addressed to another gateway: not this gateway's business, no status.
      commandRecord(testCommand({ containerId: 'C-away', gatewayId: 'gw-elsewhere', kind: 'defrost' })),
      { key: 'C-away', value: Buffer.from('{not json'), headers: { gateway_id: gatewayId } },
    ]);
    await producer.close();

    const all = await statuses.waitUntil((s) => s.length >= 4, 20_000, 'four statuses');
    const byId = (id: string) => all.filter((s) => s.commandId === id).map((s) => `${s.status}: ${s.detail ?? ''}`);
    expect(byId(first.commandId)).toEqual(['stored: ']);
    expect(byId(overLimit.commandId)).toEqual([`rejected: gateway ${gatewayId} already holds 1 undelivered commands (commands.maxPending)`]);
    expect(byId(tooHot.commandId)).toEqual([`rejected: refused by gateway ${gatewayId}: targetTemperature: expected °C from -70 to 30 for a setpoint, got 99`]);
    expect(byId(wrongGateway.commandId)).toEqual([`rejected: refused by gateway ${gatewayId}: gatewayId: expected ${gatewayId} as in the gateway_id header, got gw-elsewhere`]);
    expect(gw.gateway.status().commands).toMatchObject({ stored: 1, duplicates: 1, refused: 1, invalid: 3, pending: 1 });

    // A device cannot send commands to another container's device, nor to its own.
    const victim = await connectDevice({ url: gw.mqttUrl, clientId: 'C-victim', qos: 1 });
    devices.push(victim);
    const received: string[] = [];
    victim.onMessage((topic) => received.push(topic));
    await victim.subscribe('reefer/C-victim/commands');
    const forger = await connectDevice({ url: gw.mqttUrl, clientId: 'C-forger', qos: 0, reconnectPeriodMs: 0 });
    devices.push(forger);
    await forger.publish('reefer/C-victim/commands', encodeCommand(testCommand({ containerId: 'C-victim', gatewayId, kind: 'defrost' }))).catch(() => undefined);
    await expect.poll(() => gw!.gateway.status().security.refused['publish-denied'] ?? 0, { timeout: 5000 }).toBeGreaterThanOrEqual(1);
    await delay(300);
    expect(received).toEqual([]);
    expect(statuses.statuses()).toHaveLength(4);
  });
});
