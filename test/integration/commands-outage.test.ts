import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import mqtt from 'mqtt';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { CommandStatus } from '../../cloud-bridge/commands.js';
import { createDeviceCommandHandler } from '../../device-sim/device-commands.js';
import { connectDevice, type DeviceConnection } from '../../device-sim/mqtt-transport.js';
import { createReefer } from '../../device-sim/reefer-model.js';
import { createCommandTopics, publishCommands, readStatuses, testCommand, type StatusReader } from '../harness/command-topics.js';
import { startTestGateway, type GatewayUnderTest } from '../harness/gateway-under-test.js';

const bootstrap = inject('kafkaBootstrap');

let gw: GatewayUnderTest | undefined;
let statuses: StatusReader | undefined;
let device: DeviceConnection | undefined;
let dataDir: string | undefined;

afterEach(async () => {
  await device?.close();
  await gw?.close();
  await statuses?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  device = gw = statuses = dataDir = undefined;
});

function statesOf(all: CommandStatus[], commandId: string): string[] {
  return all.filter((s) => s.commandId === commandId).map((s) => s.status);
}

describe('commands through a gateway outage', () => {
  it('delivers a command sent while the gateway was down once after the restart, through a lost acknowledgement and a reconnection; never delivers one whose expiry passed, whether it waited in Kafka or at the gateway, and reports it expired', async () => {
    const topics = await createCommandTopics(bootstrap);
    const gatewayId = `gw-cmd-${randomUUID().slice(0, 8)}`;
    dataDir = mkdtempSync(join(tmpdir(), 'reefer-commands-'));
    const overrides = { gatewayId, dataDir, commands: { enabled: true, topic: topics.commands, statusTopic: topics.status, expiryCheckIntervalMs: 100 } };
    statuses = await readStatuses(bootstrap, topics.status);
    const containerId = 'C-obeys';

    // A command for a device that never comes expires at the gateway.
    gw = await startTestGateway(bootstrap, overrides);
    const waitsAtGateway = testCommand({ containerId: 'C-away', gatewayId, kind: 'defrost' }, 1500);
    await publishCommands(bootstrap, topics.commands, [waitsAtGateway]);
    await statuses.waitUntil((all) => statesOf(all, waitsAtGateway.commandId).includes('expired'), 20_000, 'the unclaimed command expired');
    await gw.close();
    gw = undefined;

    // Sent while the gateway is down: one to deliver, one that expires before the gateway is back.
    const deliver = testCommand({ containerId, gatewayId, kind: 'setpoint', targetTemperature: -18 });
    const expires = testCommand({ containerId, gatewayId, kind: 'setpoint', targetTemperature: 12 }, 1000);
    await publishCommands(bootstrap, topics.commands, [deliver, expires]);
    await delay(1500);
    gw = await startTestGateway(bootstrap, overrides);
    await statuses.waitUntil(
      (all) => statesOf(all, deliver.commandId).includes('stored') && statesOf(all, expires.commandId).includes('expired'),
      20_000,
      'stored and expired statuses after the restart',
    );

    const reefer = createReefer({ containerId, seed: 3, product: 'P05' });
    const handler = createDeviceCommandHandler(reefer);
    const received: string[] = [];
    const open = async (sendAcks: boolean): Promise<DeviceConnection> => {
      const connection = await connectDevice({ url: gw!.mqttUrl, clientId: containerId, qos: 1, reconnectPeriodMs: 0 });
      connection.onMessage((_topic, payload) => {
        received.push((JSON.parse(payload.toString('utf8')) as { commandId: string }).commandId);
        const ack = handler.handle(payload);
        if (ack && sendAcks) void connection.publish(`reefer/${containerId}/commands/ack`, ack);
      });
      expect(await connection.subscribe(`reefer/${containerId}/commands`)).toBe(1);
      return connection;
    };

    // The first connection gets the command and applies it, but its acknowledgement is lost.
    device = await open(false);
    await statuses.waitUntil((all) => statesOf(all, deliver.commandId).includes('delivered'), 20_000, 'delivered');
    await device.close();
    // On reconnecting the device gets it again, recognises it and acknowledges it without applying it twice.
    device = await open(true);
    const all = await statuses.waitUntil((s) => statesOf(s, deliver.commandId).includes('applied'), 20_000, 'applied');
    await device.close();
    // A finished command is not sent again.
    device = await open(true);
    await delay(1000);

    expect(received).toEqual([deliver.commandId, deliver.commandId]);
    expect(handler.handled()).toBe(1);
    expect(reefer.targetTemperature()).toBe(-18);
    expect(statesOf(all, deliver.commandId)).toEqual(['stored', 'delivered', 'applied']);
    expect(statesOf(all, expires.commandId)).toEqual(['expired']);
    expect(statesOf(all, waitsAtGateway.commandId)).toEqual(['stored', 'expired']);
    expect(all.find((s) => s.commandId === expires.commandId)?.detail).toMatch(/expired at .* before it reached gateway/);
    expect(gw.gateway.status().commands).toMatchObject({ stored: 1, delivered: 1, applied: 1, expired: 1, pending: 0 });
    // Statuses are sent exactly once: a duplicate arriving during the last second would show up here.
    expect(statuses.statuses()).toHaveLength(all.length);
  });

  it('sends a device with a persistent session the commands that waited for it when it reconnects, without it subscribing again', async () => {
    const topics = await createCommandTopics(bootstrap);
    const gatewayId = `gw-cmd-${randomUUID().slice(0, 8)}`;
    gw = await startTestGateway(bootstrap, { gatewayId, commands: { enabled: true, topic: topics.commands, statusTopic: topics.status } });
    statuses = await readStatuses(bootstrap, topics.status);
    const containerId = 'C-persistent';
    const options = { clientId: containerId, clean: false, protocolVersion: 4 as const, resubscribe: false, reconnectPeriod: 0 };
    const connected = (client: mqtt.MqttClient) =>
      new Promise<{ sessionPresent: boolean }>((resolve, reject) => {
        client.once('connect', resolve);
        client.once('error', reject);
      });

    const first = mqtt.connect(gw.mqttUrl, options);
    await connected(first);
    await first.subscribeAsync(`reefer/${containerId}/commands`, { qos: 1 });
    await first.endAsync();

    const waiting = testCommand({ containerId, gatewayId, kind: 'defrost' });
    await publishCommands(bootstrap, topics.commands, [waiting]);
    await statuses.waitUntil((all) => statesOf(all, waiting.commandId).includes('stored'), 20_000, 'stored');

    const again = mqtt.connect(gw.mqttUrl, options);
    const reconnected = connected(again);
    const received: string[] = [];
    again.on('message', (_topic, payload) => {
      const { commandId } = JSON.parse(payload.toString('utf8')) as { commandId: string };
      received.push(commandId);
      again.publish(`reefer/${containerId}/commands/ack`, JSON.stringify({ commandId, status: 'applied' }), { qos: 1 });
    });
    try {
      expect((await reconnected).sessionPresent).toBe(true);
      const all = await statuses.waitUntil((s) => statesOf(s, waiting.commandId).includes('applied'), 20_000, 'applied');
      expect(received).toEqual([waiting.commandId]);
      expect(statesOf(all, waiting.commandId).filter((s) => s !== 'delivered')).toEqual(['stored', 'applied']);
    } finally {
      await again.endAsync();
    }
  });
});
